/* gojson: JSON input checked the way Go's encoding/json checks it, so that nomad-local's 400
 * answers carry the texts Nomad's decoder produces ("invalid character '}' looking for
 * beginning of object key string", "unexpected EOF", ...), and a json-c parse of text that
 * passed the check. Two modes mirror Go's two entry points: a json.Decoder reading the first
 * value of a request body, and json.Unmarshal of a complete string (the exec command).
 */
#ifndef NL_GOJSON_H
#define NL_GOJSON_H

#include <json-c/json.h>
#include <stddef.h>

enum gojson_mode {
	GOJSON_DECODER,   /* first value; trailing data ignored; EOF texts "EOF"/"unexpected EOF" */
	GOJSON_UNMARSHAL, /* exactly one value; "unexpected end of JSON input" */
};

#define GOJSON_MAX_DEPTH 512

/* Parses s[0..n). Returns a new object (caller puts it), or NULL with Go's message in err.
 * A JSON null is returned as NULL with err[0] == '\0' and *is_null set. */
json_object *gojson_parse(const char *s, size_t n, enum gojson_mode mode, int *is_null, char *err, size_t cap);

/* Go's quoting of one offending byte in syntax errors ('x', '\'', '\n', '\x01'). */
void gojson_quote_char(unsigned char c, char out[16]);

#endif
