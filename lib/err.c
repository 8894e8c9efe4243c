/* err: see err.h. Messages are bounded; a longer one is truncated, never overflowed. */
#include "err.h"

#include <stdio.h>
#include <string.h>

int perr_vset(struct perr *e, enum perr_kind kind, const char *fmt, va_list ap)
{
	if (!e)
		return -1;
	e->kind = kind;
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	return -1;
}

int perr_set(struct perr *e, enum perr_kind kind, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	perr_vset(e, kind, fmt, ap);
	va_end(ap);
	return -1;
}

int perr_wrap(struct perr *e, const char *prefix)
{
	char old[PERR_MSG_MAX];
	if (!e)
		return -1;
	memcpy(old, e->msg, sizeof old);
	snprintf(e->msg, sizeof e->msg, "%s: %s", prefix, old);
	return -1;
}

const char *perr_kind_name(enum perr_kind kind)
{
	switch (kind) {
	case PERR_OK: return "ok";
	case PERR_BAD_REQUEST: return "bad_request";
	case PERR_NOT_FOUND: return "not_found";
	case PERR_GONE: return "gone";
	case PERR_TOO_LARGE: return "too_large";
	case PERR_FAILED_DEPENDENCY: return "failed_dependency";
	case PERR_NOMAD_UNREACHABLE: return "nomad_unreachable";
	case PERR_NOMAD_OVERLOAD: return "nomad_overload";
	case PERR_NOMAD_INTERNAL: return "nomad_internal";
	case PERR_STORE: return "store";
	case PERR_UNKNOWN: return "unknown";
	}
	return "unknown";
}
