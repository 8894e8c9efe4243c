/* err: the one error type of lib/.
 *
 * Every lib/ function that can fail fills a struct perr: a kind that says what
 * went wrong in terms the API understands, and a human message that names the
 * cause. Nothing below the HTTP layer prints errors or picks status codes;
 * lib/http maps kinds to status and errorCode in one table (http_status_of).
 */
#ifndef POSEIDON_ERR_H
#define POSEIDON_ERR_H

#include <stdarg.h>

enum perr_kind {
	PERR_OK = 0,
	PERR_BAD_REQUEST,       /* 400 {"message"} */
	PERR_NOT_FOUND,         /* 404 */
	PERR_GONE,              /* 410: runner unknown or destroyed */
	PERR_TOO_LARGE,         /* 413: request body over the limit */
	PERR_FAILED_DEPENDENCY, /* 424: file missing or unreadable */
	PERR_NOMAD_UNREACHABLE, /* 500 NOMAD_UNREACHABLE */
	PERR_NOMAD_OVERLOAD,    /* 500 NOMAD_OVERLOAD (also: empty pool) */
	PERR_NOMAD_INTERNAL,    /* 500 NOMAD_INTERNAL_SERVER_ERROR */
	PERR_STORE,             /* 500 UNKNOWN: Redis unreachable or refused */
	PERR_UNKNOWN,           /* 500 UNKNOWN */
};

#define PERR_MSG_MAX 1024

struct perr {
	enum perr_kind kind;
	char msg[PERR_MSG_MAX];
};

/* Sets kind and a printf-formatted message (truncated to PERR_MSG_MAX). Returns -1 so that
 * callers can write `return perr_set(e, ...);`. e may be NULL. */
int perr_set(struct perr *e, enum perr_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int perr_vset(struct perr *e, enum perr_kind kind, const char *fmt, va_list ap);

/* Prefixes the existing message with "<prefix>: ", keeping the kind. Returns -1. */
int perr_wrap(struct perr *e, const char *prefix);

static inline void perr_clear(struct perr *e)
{
	if (e) {
		e->kind = PERR_OK;
		e->msg[0] = '\0';
	}
}

const char *perr_kind_name(enum perr_kind kind);

#endif
