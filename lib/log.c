/* log: see log.h. The logger is process-global and needs no initialisation: the level defaults
 * to info. Every line is rendered into one bounded buffer (LOG_LINE_MAX, longer lines are cut
 * and end in "...") and handed to write(2) once. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096
#define LOG_MAX_SECRETS 8
#define LOG_MAX_PAIRS 32
#define LOG_SECRET_MAX 512

static enum log_level min_level = LOG_LEVEL_INFO;
static const char *program;
static char secrets[LOG_MAX_SECRETS][LOG_SECRET_MAX];
static int nsecrets;

static const char *level_names[] = {"debug", "info", "warn", "error"};

int log_parse_level(const char *name, enum log_level *out)
{
	if (!name)
		return -1;
	for (int i = 0; i < 4; i++) {
		if (strcasecmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcasecmp(name, "warning") == 0) {
		*out = LOG_LEVEL_WARN;
		return 0;
	}
	if (strcasecmp(name, "fatal") == 0 || strcasecmp(name, "panic") == 0) {
		*out = LOG_LEVEL_ERROR;
		return 0;
	}
	return -1;
}

void log_set_level(enum log_level level) { min_level = level; }
enum log_level log_get_level(void) { return min_level; }
void log_set_program(const char *name) { program = name; }

void log_add_secret(const char *secret)
{
	if (!secret || !*secret || nsecrets >= LOG_MAX_SECRETS || strlen(secret) >= LOG_SECRET_MAX)
		return;
	for (int i = 0; i < nsecrets; i++)
		if (strcmp(secrets[i], secret) == 0)
			return;
	snprintf(secrets[nsecrets++], LOG_SECRET_MAX, "%s", secret);
}

const char *log_int(char buf[24], long long v)
{
	snprintf(buf, 24, "%lld", v);
	return buf;
}

struct out {
	char *buf;
	int cap, len;
};

static void put(struct out *o, const char *s, size_t n)
{
	/* keep room for "...\n\0" */
	for (size_t i = 0; i < n; i++) {
		if (o->len >= o->cap - 5)
			return;
		o->buf[o->len++] = s[i];
	}
}

static void puts_(struct out *o, const char *s) { put(o, s, strlen(s)); }

/* Appends s, with every registered secret replaced, quoted and escaped when needed. */
static void put_value(struct out *o, const char *s)
{
	if (!s)
		s = "";
	int quote = *s == '\0';
	for (const char *p = s; *p && !quote; p++)
		if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f)
			quote = 1;
	if (quote)
		put(o, "\"", 1);
	while (*s) {
		int hit = 0;
		for (int i = 0; i < nsecrets; i++) {
			size_t n = strlen(secrets[i]);
			if (strncmp(s, secrets[i], n) == 0) {
				puts_(o, "[redacted]");
				s += n;
				hit = 1;
				break;
			}
		}
		if (hit)
			continue;
		unsigned char c = (unsigned char)*s++;
		char esc[8];
		switch (c) {
		case '"': puts_(o, "\\\""); break;
		case '\\': puts_(o, "\\\\"); break;
		case '\n': puts_(o, "\\n"); break;
		case '\r': puts_(o, "\\r"); break;
		case '\t': puts_(o, "\\t"); break;
		default:
			if (c < 0x20 || c == 0x7f) {
				snprintf(esc, sizeof esc, "\\x%02x", c);
				puts_(o, esc);
			} else {
				put(o, (const char *)&c, 1);
			}
		}
	}
	if (quote)
		put(o, "\"", 1);
}

int log_format(char *buf, int cap, enum log_level level, const char *msg, const char *const *kv,
	       int nkv)
{
	struct out o = {buf, cap, 0};
	struct timeval tv;
	struct tm tm;
	char ts[64];

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(ts, sizeof ts, "time=%04d-%02d-%02dT%02d:%02d:%02d.%03dZ level=", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
	puts_(&o, ts);
	puts_(&o, level_names[level]);
	if (program) {
		puts_(&o, " prog=");
		put_value(&o, program);
	}
	puts_(&o, " msg=");
	put_value(&o, msg);
	for (int i = 0; i + 1 < nkv; i += 2) {
		put(&o, " ", 1);
		puts_(&o, kv[i]);
		put(&o, "=", 1);
		put_value(&o, kv[i + 1]);
	}
	if (o.len >= o.cap - 5) { /* put() kept room for this */
		memcpy(o.buf + o.len, "...", 3);
		o.len += 3;
	}
	o.buf[o.len++] = '\n';
	o.buf[o.len] = '\0';
	return o.len;
}

void log_at(enum log_level level, const char *msg, ...)
{
	const char *kv[LOG_MAX_PAIRS * 2];
	int n = 0;
	char line[LOG_LINE_MAX];
	va_list ap;

	if (level < min_level)
		return;
	va_start(ap, msg);
	for (;;) {
		const char *k = va_arg(ap, const char *);
		if (!k)
			break;
		const char *v = va_arg(ap, const char *);
		if (n < LOG_MAX_PAIRS * 2) {
			kv[n++] = k;
			kv[n++] = v;
		}
	}
	va_end(ap);
	int len = log_format(line, sizeof line, level, msg, kv, n);
	ssize_t w = write(STDERR_FILENO, line, (size_t)len);
	(void)w;
}
