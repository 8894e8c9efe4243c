/* fuzz_json: a Nomad response body turned into json-c objects exactly as lib/nomad's parse()
 * does it (the body as a C string, a bare value completed by its end), for the targets that
 * fuzz what lib/ does with Nomad's JSON. */
#ifndef POSEIDON_FUZZ_JSON_H
#define POSEIDON_FUZZ_JSON_H

#include <json-c/json.h>

#include "fuzz.h"

/* The parsed value (caller puts), or NULL when lib/nomad would call it invalid JSON. */
static inline json_object *fuzz_parse_nomad_body(const uint8_t *data, size_t size)
{
	char *text = fuzz_strdup(data, size);
	FUZZ_CHECK(text);
	json_tokener *tok = json_tokener_new_ex(JSON_TOKENER_DEFAULT_DEPTH);
	FUZZ_CHECK(tok);
	json_object *o = json_tokener_parse_ex(tok, text, (int)strlen(text));
	if (json_tokener_get_error(tok) == json_tokener_continue)
		o = json_tokener_parse_ex(tok, "", 1);
	if (json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	free(text);
	return o;
}

#endif
