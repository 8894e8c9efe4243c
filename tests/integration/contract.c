/* contract: see contract.h. Only the recording lives here; what is checked against
 * api/openapi.yaml and api/websocket.schema.json is tests/contract/validate.mjs's business. */
#include "contract.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <json-c/json.h>

#include "harness.h"

/* A body that is not JSON and longer than this is recorded cut (with "truncated":true):
 * downloads of many MiB say nothing more about the contract than their status and headers.
 * JSON bodies (a listing of 100 000 files among them) are always recorded whole, to be validated. */
#define BODY_MAX (1u << 20)

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int log_fd = -1;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void open_log(void)
{
	const char *f = getenv("POSEIDON_CONTRACT_LOG");
	if (f && *f)
		log_fd = open(f, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

/* The path (with query) of a path or an http(s)://host[:port]/... URL. */
static const char *path_of(const char *s)
{
	if (!s)
		return "";
	const char *p = strstr(s, "://");
	if (!p)
		return s;
	p = strchr(p + 3, '/');
	return p ? p : "/";
}

int contract_wanted(const char *path_or_url)
{
	pthread_once(&once, open_log);
	if (log_fd < 0)
		return 0;
	const char *p = path_of(path_or_url);
	return strncmp(p, "/api/v1", 7) == 0 && (p[7] == '\0' || p[7] == '/' || p[7] == '?');
}

static void write_line(json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	size_t n = strlen(s);
	char *line = malloc(n + 2);
	if (line) {
		memcpy(line, s, n);
		line[n] = '\n';
		pthread_mutex_lock(&lock);
		size_t off = 0;
		while (off < n + 1) {
			ssize_t w = write(log_fd, line + off, n + 1 - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				break;
			off += (size_t)w;
		}
		pthread_mutex_unlock(&lock);
		free(line);
	}
	json_object_put(o);
}

static void add_base64(json_object *o, const char *key, const void *data, size_t len)
{
	char *b = h_base64(data ? data : "", len);
	json_object_object_add(o, key, json_object_new_string(b ? b : ""));
	free(b);
}

/* The Content-Type of the last header block in headers, into out ("" when none). */
static void content_type(const char *headers, char *out, size_t cap)
{
	const char *block = headers, *p;
	out[0] = '\0';
	if (!headers)
		return;
	for (p = headers; (p = strstr(p, "HTTP/")); p++)
		if (p == headers || p[-1] == '\n')
			block = p;
	for (const char *line = block; line && *line;) {
		const char *end = strstr(line, "\r\n");
		size_t l = end ? (size_t)(end - line) : strlen(line);
		if (l > 13 && strncasecmp(line, "Content-Type:", 13) == 0) {
			const char *v = line + 13;
			while (*v == ' ' || *v == '\t')
				v++;
			size_t vl = (size_t)(line + l - v);
			if (vl >= cap)
				vl = cap - 1;
			memcpy(out, v, vl);
			out[vl] = '\0';
			return;
		}
		if (l == 0)
			return; /* end of that head */
		line = end ? end + 2 : NULL;
	}
}

static const char *test_name(void)
{
	extern char *program_invocation_short_name;
	return program_invocation_short_name;
}

void contract_http(const char *method, const char *path_or_url, long status, const char *headers,
                   const void *body, size_t len)
{
	if (!contract_wanted(path_or_url))
		return;
	char ct[256];
	content_type(headers, ct, sizeof ct);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "kind", json_object_new_string("http"));
	json_object_object_add(o, "test", json_object_new_string(test_name()));
	json_object_object_add(o, "method", json_object_new_string(method));
	json_object_object_add(o, "path", json_object_new_string(path_of(path_or_url)));
	json_object_object_add(o, "status", json_object_new_int64(status));
	json_object_object_add(o, "contentType", ct[0] ? json_object_new_string(ct) : NULL);
	size_t keep = strncasecmp(ct, "application/json", 16) == 0 || len <= BODY_MAX ? len : BODY_MAX;
	add_base64(o, "body64", body, keep);
	if (keep < len)
		json_object_object_add(o, "truncated", json_object_new_boolean(1));
	write_line(o);
}

void contract_ws(const char *path, const void *data, size_t len)
{
	if (!contract_wanted(path))
		return;
	json_object *o = json_object_new_object();
	json_object_object_add(o, "kind", json_object_new_string("ws"));
	json_object_object_add(o, "test", json_object_new_string(test_name()));
	json_object_object_add(o, "path", json_object_new_string(path_of(path)));
	add_base64(o, "data64", data, len);
	write_line(o);
}
