/* fuzz_error: the checks every parse failure must pass, shared by the request-body targets.
 * A failed parse has a known kind and a NUL-terminated message, and the message survives being
 * rendered as the API's error body ({"message": ...}) and parsed back unchanged. */
#ifndef POSEIDON_FUZZ_ERROR_H
#define POSEIDON_FUZZ_ERROR_H

#include <json-c/json.h>

#include "err.h"
#include "fuzz.h"
#include "model.h"

static inline void fuzz_check_error(const struct perr *e)
{
	FUZZ_CHECK(e->kind == PERR_BAD_REQUEST || e->kind == PERR_TOO_LARGE || e->kind == PERR_UNKNOWN);
	FUZZ_CHECK(memchr(e->msg, '\0', sizeof e->msg) != NULL);
	char *body = model_render_error(e->msg, NULL);
	FUZZ_CHECK(body != NULL);
	json_object *o = json_tokener_parse(body), *m;
	FUZZ_CHECK(o != NULL && json_object_object_get_ex(o, "message", &m));
	FUZZ_CHECK(strcmp(json_object_get_string(m), e->msg) == 0);
	json_object_put(o);
	free(body);
}

#endif
