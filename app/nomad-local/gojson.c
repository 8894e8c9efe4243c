/* gojson: see gojson.h. A recursive-descent validator whose error texts follow Go's scanner
 * state by state (facts taken from encoding/json: which context each message names); once the
 * text is known to be valid JSON, json-c builds the object. */
#include "gojson.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct scan {
	const char *s;
	size_t n, i;
	int depth;
	char *err;
	size_t cap;
	enum gojson_mode mode;
	int eof; /* the error is an end-of-input one */
};

void gojson_quote_char(unsigned char c, char out[16])
{
	if (c == '\'') {
		snprintf(out, 16, "'\\''");
		return;
	}
	if (c == '"') {
		snprintf(out, 16, "'\"'");
		return;
	}
	switch (c) {
	case '\a': snprintf(out, 16, "'\\a'"); return;
	case '\b': snprintf(out, 16, "'\\b'"); return;
	case '\f': snprintf(out, 16, "'\\f'"); return;
	case '\n': snprintf(out, 16, "'\\n'"); return;
	case '\r': snprintf(out, 16, "'\\r'"); return;
	case '\t': snprintf(out, 16, "'\\t'"); return;
	case '\v': snprintf(out, 16, "'\\v'"); return;
	case '\\': snprintf(out, 16, "'\\\\'"); return;
	default: break;
	}
	if (c < 0x20 || c == 0x7f)
		snprintf(out, 16, "'\\x%02x'", c);
	else if (c < 0x80)
		snprintf(out, 16, "'%c'", c);
	else if (c < 0xa0 || c == 0xad)
		snprintf(out, 16, "'\\u00%02x'", c);
	else
		snprintf(out, 16, "'%c%c'", 0xc0 | (c >> 6), 0x80 | (c & 0x3f));
}

static int fail(struct scan *sc, const char *context)
{
	char q[16];
	if (sc->i >= sc->n) {
		sc->eof = 1;
		snprintf(sc->err, sc->cap, "%s",
			 sc->mode == GOJSON_DECODER ? "unexpected EOF" : "unexpected end of JSON input");
		return -1;
	}
	gojson_quote_char((unsigned char)sc->s[sc->i], q);
	snprintf(sc->err, sc->cap, "invalid character %s %s", q, context);
	return -1;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static void skip_ws(struct scan *sc)
{
	while (sc->i < sc->n && is_space(sc->s[sc->i]))
		sc->i++;
}

static int hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

static int scan_string(struct scan *sc)
{
	sc->i++; /* opening quote */
	while (sc->i < sc->n) {
		unsigned char c = (unsigned char)sc->s[sc->i];
		if (c == '"') {
			sc->i++;
			return 0;
		}
		if (c < 0x20)
			return fail(sc, "in string literal");
		if (c == '\\') {
			sc->i++;
			if (sc->i >= sc->n)
				return fail(sc, "");
			char e = sc->s[sc->i];
			if (e == 'u') {
				for (int k = 0; k < 4; k++) {
					sc->i++;
					if (sc->i >= sc->n)
						return fail(sc, "");
					if (!hex(sc->s[sc->i]))
						return fail(sc, "in \\u hexadecimal character escape");
				}
			} else if (!strchr("\"\\/bfnrt", e) || e == '\0') {
				return fail(sc, "in string escape code");
			}
		}
		sc->i++;
	}
	return fail(sc, "");
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int scan_number(struct scan *sc)
{
	if (sc->s[sc->i] == '-') {
		sc->i++;
		if (sc->i >= sc->n)
			return fail(sc, "");
		if (!is_digit(sc->s[sc->i]))
			return fail(sc, "in numeric literal");
	}
	if (sc->s[sc->i] == '0') {
		sc->i++;
	} else {
		while (sc->i < sc->n && is_digit(sc->s[sc->i]))
			sc->i++;
	}
	if (sc->i < sc->n && sc->s[sc->i] == '.') {
		sc->i++;
		if (sc->i >= sc->n)
			return fail(sc, "");
		if (!is_digit(sc->s[sc->i]))
			return fail(sc, "after decimal point in numeric literal");
		while (sc->i < sc->n && is_digit(sc->s[sc->i]))
			sc->i++;
	}
	if (sc->i < sc->n && (sc->s[sc->i] == 'e' || sc->s[sc->i] == 'E')) {
		sc->i++;
		if (sc->i < sc->n && (sc->s[sc->i] == '+' || sc->s[sc->i] == '-'))
			sc->i++;
		if (sc->i >= sc->n)
			return fail(sc, "");
		if (!is_digit(sc->s[sc->i]))
			return fail(sc, "in exponent of numeric literal");
		while (sc->i < sc->n && is_digit(sc->s[sc->i]))
			sc->i++;
	}
	return 0;
}

static int scan_literal(struct scan *sc, const char *lit)
{
	char ctx[64];
	sc->i++;
	for (const char *p = lit + 1; *p; p++) {
		if (sc->i >= sc->n)
			return fail(sc, "");
		if (sc->s[sc->i] != *p) {
			snprintf(ctx, sizeof ctx, "in literal %s (expecting '%c')", lit, *p);
			return fail(sc, ctx);
		}
		sc->i++;
	}
	return 0;
}

static int scan_value(struct scan *sc);

static int scan_object(struct scan *sc)
{
	sc->i++;
	if (++sc->depth > GOJSON_MAX_DEPTH) {
		snprintf(sc->err, sc->cap, "exceeded max depth");
		return -1;
	}
	skip_ws(sc);
	if (sc->i < sc->n && sc->s[sc->i] == '}') {
		sc->i++;
		sc->depth--;
		return 0;
	}
	for (;;) {
		skip_ws(sc);
		if (sc->i >= sc->n || sc->s[sc->i] != '"')
			return fail(sc, "looking for beginning of object key string");
		if (scan_string(sc) < 0)
			return -1;
		skip_ws(sc);
		if (sc->i >= sc->n || sc->s[sc->i] != ':')
			return fail(sc, "after object key");
		sc->i++;
		if (scan_value(sc) < 0)
			return -1;
		skip_ws(sc);
		if (sc->i >= sc->n)
			return fail(sc, "");
		if (sc->s[sc->i] == ',') {
			sc->i++;
			continue;
		}
		if (sc->s[sc->i] == '}') {
			sc->i++;
			sc->depth--;
			return 0;
		}
		return fail(sc, "after object key:value pair");
	}
}

static int scan_array(struct scan *sc)
{
	sc->i++;
	if (++sc->depth > GOJSON_MAX_DEPTH) {
		snprintf(sc->err, sc->cap, "exceeded max depth");
		return -1;
	}
	skip_ws(sc);
	if (sc->i < sc->n && sc->s[sc->i] == ']') {
		sc->i++;
		sc->depth--;
		return 0;
	}
	for (;;) {
		if (scan_value(sc) < 0)
			return -1;
		skip_ws(sc);
		if (sc->i >= sc->n)
			return fail(sc, "");
		if (sc->s[sc->i] == ',') {
			sc->i++;
			continue;
		}
		if (sc->s[sc->i] == ']') {
			sc->i++;
			sc->depth--;
			return 0;
		}
		return fail(sc, "after array element");
	}
}

static int scan_value(struct scan *sc)
{
	skip_ws(sc);
	if (sc->i >= sc->n)
		return fail(sc, "");
	char c = sc->s[sc->i];
	switch (c) {
	case '{': return scan_object(sc);
	case '[': return scan_array(sc);
	case '"': return scan_string(sc);
	case 't': return scan_literal(sc, "true");
	case 'f': return scan_literal(sc, "false");
	case 'n': return scan_literal(sc, "null");
	default:
		if (c == '-' || is_digit(c))
			return scan_number(sc);
		return fail(sc, "looking for beginning of value");
	}
}

json_object *gojson_parse(const char *s, size_t n, enum gojson_mode mode, int *is_null, char *err, size_t cap)
{
	struct scan sc = {.s = s, .n = n, .err = err, .cap = cap, .mode = mode};
	*is_null = 0;
	err[0] = '\0';
	skip_ws(&sc);
	if (sc.i >= n) {
		snprintf(err, cap, "%s", mode == GOJSON_DECODER ? "EOF" : "unexpected end of JSON input");
		return NULL;
	}
	size_t start = sc.i;
	if (scan_value(&sc) < 0)
		return NULL;
	size_t end = sc.i;
	if (mode == GOJSON_UNMARSHAL) {
		skip_ws(&sc);
		if (sc.i < n) {
			fail(&sc, "after top-level value");
			return NULL;
		}
	}
	if (end - start == 4 && memcmp(s + start, "null", 4) == 0) {
		*is_null = 1;
		return NULL;
	}
	json_tokener *tok = json_tokener_new_ex(GOJSON_MAX_DEPTH + 2);
	if (!tok) {
		snprintf(err, cap, "out of memory");
		return NULL;
	}
	/* hand json-c the value with a terminating NUL so that a bare number ends cleanly */
	char *copy = malloc(end - start + 1);
	if (!copy) {
		json_tokener_free(tok);
		snprintf(err, cap, "out of memory");
		return NULL;
	}
	memcpy(copy, s + start, end - start);
	copy[end - start] = '\0';
	json_object *o = json_tokener_parse_ex(tok, copy, (int)(end - start + 1));
	free(copy);
	if (!o)
		snprintf(err, cap, "%s", json_tokener_error_desc(json_tokener_get_error(tok)));
	json_tokener_free(tok);
	return o;
}
