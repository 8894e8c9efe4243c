/* wsmsg and wsreq: the gateway's messages byte for byte (WS-4, WS-21), valid UTF-8 across chunk
 * boundaries with U+FFFD for bad bytes (WS-26), no empty output message, the route match and
 * gorilla's same-origin rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsmsg.h"
#include "wsreq.h"

#define FFFD "\xEF\xBF\xBD"

/* renders one output message for data and returns it NUL-terminated (static buffer), "" for none */
static const char *out_msg(enum wsmsg_stream s, struct wsmsg_utf8 *u, const char *data, size_t len)
{
	static char buf[65536];
	size_t n = wsmsg_output(buf, sizeof buf, s, u, data, len);
	buf[n] = '\0';
	return buf;
}

/* the data of an output message, decoded by json-c (so the message is valid JSON) */
static char *data_of(const char *msg)
{
	json_object *o = json_tokener_parse(msg), *d, *t;
	assert_non_null(o);
	assert_int_equal(json_object_object_length(o), 2);
	assert_true(json_object_object_get_ex(o, "type", &t));
	assert_true(json_object_object_get_ex(o, "data", &d));
	char *s = strdup(json_object_get_string(d));
	json_object_put(o);
	return s;
}

static void test_control_messages_are_exact(void **state)
{
	(void)state;
	char b[WSMSG_CONTROL_MAX + 1];
	size_t n = wsmsg_start(b, sizeof b);
	b[n] = '\0';
	assert_string_equal(b, "{\"type\":\"start\"}");
	n = wsmsg_timeout(b, sizeof b);
	b[n] = '\0';
	assert_string_equal(b, "{\"type\":\"timeout\"}");
	n = wsmsg_exit(b, sizeof b, 0);
	b[n] = '\0';
	assert_string_equal(b, "{\"type\":\"exit\",\"data\":0}");
	n = wsmsg_exit(b, sizeof b, 255);
	b[n] = '\0';
	assert_string_equal(b, "{\"type\":\"exit\",\"data\":255}");
	n = wsmsg_exit(b, sizeof b, 256 + 21); /* uint8, as the reference converts */
	b[n] = '\0';
	assert_string_equal(b, "{\"type\":\"exit\",\"data\":21}");
	n = wsmsg_exit(b, sizeof b, -1);
	b[n] = '\0';
	assert_string_equal(b, "{\"type\":\"exit\",\"data\":255}");
}

static void test_error_messages_are_exact(void **state)
{
	(void)state;
	char b[512];
	size_t n = wsmsg_error(b, sizeof b, WSMSG_ERR_OOM);
	b[n] = '\0';
	assert_string_equal(b, "{\"type\":\"error\",\"data\":\"the allocation was OOM Killed\"}");
	n = wsmsg_error(b, sizeof b, WSMSG_ERR_STOPPED);
	b[n] = '\0';
	assert_string_equal(b, "{\"type\":\"error\",\"data\":\"the allocation stopped as expected\"}");
	n = wsmsg_error(b, sizeof b, WSMSG_ERR_GENERIC);
	b[n] = '\0';
	assert_string_equal(b, "{\"type\":\"error\",\"data\":\"Error executing the request\"}");
	assert_int_equal(wsmsg_error(b, 10, WSMSG_ERR_GENERIC), 0); /* too small: nothing */
}

static void test_output_messages_and_escaping(void **state)
{
	(void)state;
	struct wsmsg_utf8 u = {0};
	assert_string_equal(out_msg(WSMSG_STDOUT, &u, "testStdOut", 10),
	                    "{\"type\":\"stdout\",\"data\":\"testStdOut\"}");
	assert_string_equal(out_msg(WSMSG_STDERR, &u, "testStdErr", 10),
	                    "{\"type\":\"stderr\",\"data\":\"testStdErr\"}");
	assert_string_equal(out_msg(WSMSG_STDOUT, &u, "a\"b\\c\r\n\t\x01\x1f\x7f", 11),
	                    "{\"type\":\"stdout\",\"data\":\"a\\\"b\\\\c\\r\\n\\t\\u0001\\u001f\x7f\"}");
	/* NUL bytes are data too */
	char *d = data_of(out_msg(WSMSG_STDOUT, &u, "x\0y", 3));
	assert_int_equal(strlen(d), 1); /* json-c stops at the NUL; the escape is there: */
	free(d);
	assert_non_null(strstr(out_msg(WSMSG_STDOUT, &u, "x\0y", 3), "x\\u0000y"));
	/* never an empty message */
	assert_int_equal(wsmsg_output((char[64]){0}, 64, WSMSG_STDOUT, &u, "", 0), 0);
}

static void test_valid_utf8_passes_unchanged(void **state)
{
	(void)state;
	struct wsmsg_utf8 u = {0};
	const char *s = "äöü€😀\r\n";
	char *d = data_of(out_msg(WSMSG_STDOUT, &u, s, strlen(s)));
	assert_string_equal(d, s);
	free(d);
	assert_int_equal(u.n, 0);
}

static void test_split_character_is_carried_to_the_next_chunk(void **state)
{
	(void)state;
	const char *s = "a€b😀c"; /* € is 3 bytes, 😀 4 */
	size_t len = strlen(s);
	/* every way of cutting the text in two and in three gives the text back, with no U+FFFD */
	for (size_t i = 0; i <= len; i++) {
		for (size_t j = i; j <= len; j++) {
			struct wsmsg_utf8 u = {0};
			char all[256] = "";
			const size_t cuts[4] = {0, i, j, len};
			for (int k = 0; k < 3; k++) {
				const char *m = out_msg(WSMSG_STDOUT, &u, s + cuts[k], cuts[k + 1] - cuts[k]);
				if (!*m)
					continue; /* nothing to send: no empty message */
				char *d = data_of(m);
				assert_true(strlen(d) > 0);
				size_t al = strlen(all);
				snprintf(all + al, sizeof all - al, "%s", d);
				free(d);
			}
			char tail[64];
			size_t n = wsmsg_output_flush(tail, sizeof tail, WSMSG_STDOUT, &u);
			assert_int_equal(n, 0);
			assert_string_equal(all, s);
		}
	}
	/* a chunk that is only the first byte of a character sends nothing */
	struct wsmsg_utf8 u = {0};
	assert_string_equal(out_msg(WSMSG_STDOUT, &u, "\xE2", 1), "");
	assert_string_equal(out_msg(WSMSG_STDOUT, &u, "\x82", 1), "");
	char *d = data_of(out_msg(WSMSG_STDOUT, &u, "\xAC!", 2));
	assert_string_equal(d, "€!");
	free(d);
}

static void test_invalid_bytes_become_replacement_characters(void **state)
{
	(void)state;
	struct {
		const char *in;
		size_t len;
		const char *want;
	} cases[] = {
	    {"\xff", 1, FFFD},
	    {"a\x80z", 3, "a" FFFD "z"},
	    {"\xC0\xAF", 2, FFFD FFFD},                   /* overlong '/' */
	    {"\xE0\x80\x80", 3, FFFD FFFD FFFD},          /* overlong NUL */
	    {"\xED\xA0\x80", 3, FFFD FFFD FFFD},          /* surrogate */
	    {"\xF4\x90\x80\x80", 4, FFFD FFFD FFFD FFFD}, /* above U+10FFFF */
	    {"\xF5x", 2, FFFD "x"},
	    {"\xE2\x82x", 3, FFFD FFFD "x"}, /* a character cut short inside one chunk */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct wsmsg_utf8 u = {0};
		char *d = data_of(out_msg(WSMSG_STDERR, &u, cases[i].in, cases[i].len));
		assert_string_equal(d, cases[i].want);
		free(d);
	}
	/* a carried start that the next chunk does not complete */
	struct wsmsg_utf8 u = {0};
	assert_string_equal(out_msg(WSMSG_STDOUT, &u, "ok\xF0\x9F", 4),
	                    "{\"type\":\"stdout\",\"data\":\"ok\"}");
	char *d = data_of(out_msg(WSMSG_STDOUT, &u, "x", 1));
	assert_string_equal(d, FFFD FFFD "x");
	free(d);
	/* and one left at the end of the stream */
	assert_string_equal(out_msg(WSMSG_STDOUT, &u, "\xE2\x82", 2), "");
	char tail[64];
	size_t n = wsmsg_output_flush(tail, sizeof tail, WSMSG_STDOUT, &u);
	tail[n] = '\0';
	assert_string_equal(tail, "{\"type\":\"stdout\",\"data\":\"" FFFD FFFD "\"}");
	assert_int_equal(wsmsg_output_flush(tail, sizeof tail, WSMSG_STDOUT, &u), 0);
}

static void test_random_bytes_always_give_valid_json(void **state)
{
	(void)state;
	static char msg[6 * 1100 + 64];
	unsigned seed = 12345;
	struct wsmsg_utf8 u = {0};
	for (int round = 0; round < 2000; round++) {
		unsigned char data[1024];
		size_t len = (size_t)(rand_r(&seed) % sizeof data);
		for (size_t i = 0; i < len; i++)
			data[i] = (unsigned char)rand_r(&seed);
		assert_true(wsmsg_output_cap(len) <= sizeof msg);
		size_t n = wsmsg_output(msg, sizeof msg, round % 2 ? WSMSG_STDERR : WSMSG_STDOUT, &u,
		                        (char *)data, len);
		assert_true(n < sizeof msg);
		if (!n)
			continue;
		msg[n] = '\0';
		json_tokener *tok = json_tokener_new();
		json_object *o = json_tokener_parse_ex(tok, msg, (int)n);
		assert_int_equal(json_tokener_get_error(tok), json_tokener_success);
		json_tokener_free(tok);
		json_object *d;
		assert_true(json_object_object_get_ex(o, "data", &d));
		assert_true(json_object_get_string_len(d) > 0);
		json_object_put(o);
	}
}

static void test_route_match(void **state)
{
	(void)state;
	char id[64];
	assert_int_equal(wsreq_runner_from_path("/api/v1/runners/0-abc/websocket", id, sizeof id), 1);
	assert_string_equal(id, "0-abc");
	assert_int_equal(wsreq_runner_from_path("/api/v1/runners//websocket", id, sizeof id), 0);
	assert_int_equal(wsreq_runner_from_path("/api/v1/runners/a/b/websocket", id, sizeof id), 0);
	assert_int_equal(wsreq_runner_from_path("/api/v1/runners/a/websocket/", id, sizeof id), 0);
	assert_int_equal(wsreq_runner_from_path("/api/v1/runners/a/websockets", id, sizeof id), 0);
	assert_int_equal(wsreq_runner_from_path("/api/v1/runners/a", id, sizeof id), 0);
	assert_int_equal(wsreq_runner_from_path("/api/v2/runners/a/websocket", id, sizeof id), 0);
	assert_int_equal(wsreq_runner_from_path("/api/v1/runners/0123456789/websocket", id, 5), 0);
	assert_int_equal(wsreq_runner_from_path(NULL, id, sizeof id), 0);
}

static void test_same_origin_like_gorilla(void **state)
{
	(void)state;
	assert_int_equal(wsreq_same_origin(NULL, "example.org"), 1);
	assert_int_equal(wsreq_same_origin("", "example.org"), 1);
	assert_int_equal(wsreq_same_origin("http://example.org", "example.org"), 1);
	assert_int_equal(wsreq_same_origin("https://EXAMPLE.org/path?q", "example.ORG"), 1);
	assert_int_equal(wsreq_same_origin("http://127.0.0.1:7200", "127.0.0.1:7200"), 1);
	assert_int_equal(wsreq_same_origin("http://user@example.org", "example.org"), 1);
	assert_int_equal(wsreq_same_origin("http://127.0.0.1:7201", "127.0.0.1:7200"), 0);
	assert_int_equal(wsreq_same_origin("http://evil.example", "example.org"), 0);
	assert_int_equal(wsreq_same_origin("null", "example.org"), 0);
	assert_int_equal(wsreq_same_origin("example.org", "example.org"), 0);
	assert_int_equal(wsreq_same_origin("http://example.org", NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_control_messages_are_exact),
	    cmocka_unit_test(test_error_messages_are_exact),
	    cmocka_unit_test(test_output_messages_and_escaping),
	    cmocka_unit_test(test_valid_utf8_passes_unchanged),
	    cmocka_unit_test(test_split_character_is_carried_to_the_next_chunk),
	    cmocka_unit_test(test_invalid_bytes_become_replacement_characters),
	    cmocka_unit_test(test_random_bytes_always_give_valid_json),
	    cmocka_unit_test(test_route_match),
	    cmocka_unit_test(test_same_origin_like_gorilla),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
