/* log: leveled logfmt lines on stderr.
 *
 *   time=2026-11-27T18:00:00.123Z level=info msg="runner claimed" runner=0-6f1c... env=0
 *
 * One line per call, written with a single write(2) so lines of concurrent processes do not
 * interleave. Values are quoted when they need it. Secrets registered with log_add_secret()
 * (the API token, the Nomad token, the Redis password) are replaced by "[redacted]" wherever
 * they appear, so no call site can leak one by accident.
 */
#ifndef POSEIDON_LOG_H
#define POSEIDON_LOG_H

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

/* Parses "debug", "info", "warn"/"warning", "error" (any case; "fatal" means error).
 * Returns 0 and sets *out, or -1. */
int log_parse_level(const char *name, enum log_level *out);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Adds a program name field (prog=...) to every line. The string must outlive the logger. */
void log_set_program(const char *name);
/* Registers a secret to redact. Empty strings are ignored; at most 8 are kept. The string is copied. */
void log_add_secret(const char *secret);

/* Logs msg with key/value pairs: the variadic part is (const char *key, const char *value)*
 * terminated by NULL. A NULL value prints as an empty string. */
void log_at(enum log_level level, const char *msg, ...) __attribute__((sentinel));

#define log_debug(...) log_at(LOG_LEVEL_DEBUG, __VA_ARGS__, (char *)0)
#define log_info(...) log_at(LOG_LEVEL_INFO, __VA_ARGS__, (char *)0)
#define log_warn(...) log_at(LOG_LEVEL_WARN, __VA_ARGS__, (char *)0)
#define log_error(...) log_at(LOG_LEVEL_ERROR, __VA_ARGS__, (char *)0)

/* Formats a number for a log value in a caller-provided buffer; returns buf. */
const char *log_int(char buf[24], long long v);

/* Renders one line into buf (NUL-terminated, newline included) without writing it; returns
 * its length. For tests and for programs that ship logs elsewhere. */
int log_format(char *buf, int cap, enum log_level level, const char *msg, const char *const *kv,
	       int nkv);

#endif
