/* nomad_exec's pure parts: the request path and its query escaping, the client frames, the
 * server frames of docs/nomad-api.md (data, close, exit with and without
 * exit_code, heartbeats, garbage), and the errors for non-101 answers and close frames. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <json-c/json.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nomad_exec.h"

#define ALLOC "d3c4b5a6-7e8f-4091-a2b3-c4d5e6f7a8b9"

/* The reverse of query escaping as Go's url.QueryUnescape does it. */
static size_t query_unescape(char *out, const char *s, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '+') {
			out[k++] = ' ';
		} else if (s[i] == '%') {
			unsigned v;
			assert_true(i + 2 < n);
			assert_int_equal(sscanf(s + i + 1, "%2X", &v), 1);
			out[k++] = (char)v;
			i += 2;
		} else {
			out[k++] = s[i];
		}
	}
	out[k] = '\0';
	return k;
}

/* Value of key in the query part of path, unescaped into out. */
static void query_value(const char *path, const char *key, char *out)
{
	const char *q = strchr(path, '?');
	assert_non_null(q);
	size_t kl = strlen(key);
	for (const char *p = q + 1; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
		if (!strncmp(p, key, kl) && p[kl] == '=') {
			const char *v = p + kl + 1;
			const char *end = strchr(v, '&');
			query_unescape(out, v, end ? (size_t)(end - v) : strlen(v));
			return;
		}
	}
	fail_msg("no %s in %s", key, path);
}

static void test_query_escape_keeps_only_safe_bytes(void **state)
{
	(void)state;
	char out[256];
	assert_int_equal(nomad_exec_query_escape(out, sizeof out, "a b&c=d+e%f#g;h?i"), 31);
	assert_string_equal(out, "a+b%26c%3Dd%2Be%25f%23g%3Bh%3Fi");
	assert_int_equal(nomad_exec_query_escape(out, sizeof out, "/bin/bash,-_.~!$'()*:@"), 22);
	assert_string_equal(out, "/bin/bash,-_.~!$'()*:@");
	assert_int_equal(nomad_exec_query_escape(out, sizeof out, "[\"\\\x01\xc3\xa4]"), 21);
	assert_string_equal(out, "%5B%22%5C%01%C3%A4%5D");
	/* too small: reports the length it needs and stays terminated */
	assert_int_equal(nomad_exec_query_escape(out, 4, "[[[["), 12);
	assert_int_equal(strlen(out), 3);

	/* every byte survives the round trip */
	char all[256], esc[1024], back[256];
	for (int i = 1; i < 256; i++)
		all[i - 1] = (char)i;
	all[255] = '\0';
	size_t n = nomad_exec_query_escape(esc, sizeof esc, all);
	assert_true(n < sizeof esc);
	for (size_t i = 0; i < n; i++) {
		assert_true(esc[i] > ' ' && esc[i] < 127);
		assert_null(strchr("&=#;?\"[]{}\\ ", esc[i]));
	}
	assert_int_equal(query_unescape(back, esc, n), 255);
	assert_memory_equal(back, all, 255);
}

static void test_request_path_for_the_sample_listing(void **state)
{
	(void)state;
	const char *argv[] = {"/bin/bash", "-c", "ls -l --time-style=+%s -1 --literal ./", NULL};
	struct nomad_exec_opts o = {.alloc_id = ALLOC, .argv = argv};
	char path[NOMAD_EXEC_PATH_MAX];
	struct perr e;
	int n = nomad_exec_request_path(path, sizeof path, "default", &o, &e);
	const char *want = "/v1/client/allocation/" ALLOC "/exec?command=%5B%22/bin/bash%22,%22-c%22,"
	                   "%22ls+-l+--time-style%3D%2B%25s+-1+--literal+./%22%5D&namespace=default"
	                   "&task=default-task&tty=false";
	assert_string_equal(path, want);
	assert_int_equal(n, (int)strlen(want));

	/* the command parameter decodes to the JSON array of argv */
	char cmd[512];
	query_value(path, "command", cmd);
	assert_string_equal(cmd, "[\"/bin/bash\",\"-c\",\"ls -l --time-style=+%s -1 --literal ./\"]");
}

static void test_request_path_options(void **state)
{
	(void)state;
	const char *argv[] = {"sh", "-c", "echo \"a\\b\" & echo 'c' # ; x=1 \xc3\xa4\t", NULL};
	struct nomad_exec_opts o = {.alloc_id = ALLOC, .argv = argv, .tty = 1, .task = "other task"};
	char path[NOMAD_EXEC_PATH_MAX], v[1024];
	assert_true(nomad_exec_request_path(path, sizeof path, "team-a", &o, NULL) > 0);
	query_value(path, "namespace", v);
	assert_string_equal(v, "team-a");
	query_value(path, "task", v);
	assert_string_equal(v, "other task");
	query_value(path, "tty", v);
	assert_string_equal(v, "true");
	query_value(path, "command", v);
	json_object *arr = json_tokener_parse(v);
	assert_non_null(arr);
	assert_int_equal(json_object_array_length(arr), 3);
	for (size_t i = 0; i < 3; i++)
		assert_string_equal(json_object_get_string(json_object_array_get_idx(arr, i)), argv[i]);
	json_object_put(arr);

	/* no namespace means "default" */
	o.task = NULL;
	assert_true(nomad_exec_request_path(path, sizeof path, "", &o, NULL) > 0);
	assert_non_null(strstr(path, "&namespace=default&task=default-task&tty=true"));
}

static void test_request_path_rejects_what_cannot_be_sent(void **state)
{
	(void)state;
	char path[NOMAD_EXEC_PATH_MAX];
	struct perr e;
	const char *argv[] = {"true", NULL};
	const char *none[] = {NULL};
	struct nomad_exec_opts o = {.alloc_id = ALLOC, .argv = argv};

	o.alloc_id = "../../v1/jobs";
	assert_int_equal(nomad_exec_request_path(path, sizeof path, NULL, &o, &e), -1);
	assert_int_equal(e.kind, PERR_BAD_REQUEST);
	o.alloc_id = "";
	assert_int_equal(nomad_exec_request_path(path, sizeof path, NULL, &o, &e), -1);
	o.alloc_id = ALLOC;
	o.argv = none;
	assert_int_equal(nomad_exec_request_path(path, sizeof path, NULL, &o, &e), -1);
	assert_int_equal(e.kind, PERR_BAD_REQUEST);
	assert_non_null(strstr(e.msg, "empty command"));
	o.argv = NULL;
	assert_int_equal(nomad_exec_request_path(path, sizeof path, NULL, &o, &e), -1);

	/* exactly at the limit fits, one more byte does not: measure with an empty second argument,
	 * then fill it with bytes that need no escaping */
	char empty[1] = "";
	const char *argv2[] = {"true", empty, NULL};
	o.argv = argv2;
	int base = nomad_exec_request_path(path, sizeof path, NULL, &o, &e);
	assert_true(base > 0);
	size_t fill = (size_t)(NOMAD_EXEC_PATH_MAX - 1 - base);
	char *big = malloc(fill + 2);
	memset(big, 'x', fill + 1);
	big[fill] = '\0';
	argv2[1] = big;
	assert_int_equal(nomad_exec_request_path(path, sizeof path, NULL, &o, &e), NOMAD_EXEC_PATH_MAX - 1);
	assert_int_equal(strlen(path), NOMAD_EXEC_PATH_MAX - 1);
	big[fill] = 'x';
	big[fill + 1] = '\0';
	e.kind = PERR_OK;
	assert_int_equal(nomad_exec_request_path(path, sizeof path, NULL, &o, &e), -1);
	assert_int_equal(e.kind, PERR_BAD_REQUEST);
	/* the error names the limit and where it comes from */
	char limit[64];
	snprintf(limit, sizeof limit, "more than the %d an exec request can carry", NOMAD_EXEC_PATH_MAX - 1);
	if (!strstr(e.msg, limit) || !strstr(e.msg, "NOMAD_EXEC_PATH_MAX"))
		fail_msg("unclear: %s", e.msg);
	free(big);
}

static void test_client_frames(void **state)
{
	(void)state;
	char buf[NOMAD_EXEC_STDIN_FRAME_MAX];
	assert_int_equal(nomad_exec_frame_stdin(buf, sizeof buf, "print(1)\n", 9), 33);
	assert_string_equal(buf, "{\"stdin\":{\"data\":\"cHJpbnQoMSkK\"}}");
	nomad_exec_frame_stdin(buf, sizeof buf, "\x1c", 1);
	assert_string_equal(buf, "{\"stdin\":{\"data\":\"HA==\"}}");
	nomad_exec_frame_stdin(buf, sizeof buf, "", 0);
	assert_string_equal(buf, "{\"stdin\":{\"data\":\"\"}}");

	/* a full chunk fits the declared maximum and decodes back */
	unsigned char raw[NOMAD_EXEC_STDIN_CHUNK + 1];
	for (size_t i = 0; i < sizeof raw; i++)
		raw[i] = (unsigned char)(i * 7 + 3);
	int n = nomad_exec_frame_stdin(buf, sizeof buf, raw, NOMAD_EXEC_STDIN_CHUNK);
	assert_true(n > 0 && (size_t)n < sizeof buf);
	json_object *o = json_tokener_parse(buf), *in, *d;
	assert_true(json_object_object_get_ex(o, "stdin", &in));
	assert_true(json_object_object_get_ex(in, "data", &d));
	char dec[NOMAD_EXEC_STDIN_CHUNK + 8];
	assert_int_equal(lws_b64_decode_string_len(json_object_get_string(d), json_object_get_string_len(d),
	                                           dec, sizeof dec),
	                 NOMAD_EXEC_STDIN_CHUNK);
	assert_memory_equal(dec, raw, NOMAD_EXEC_STDIN_CHUNK);
	json_object_put(o);
	assert_int_equal(nomad_exec_frame_stdin(buf, sizeof buf, raw, NOMAD_EXEC_STDIN_CHUNK + 1), -1);
	assert_int_equal(nomad_exec_frame_stdin(buf, 30, "print(1)\n", 9), -1);

	assert_int_equal(nomad_exec_frame_stdin_close(buf, sizeof buf), 24);
	assert_string_equal(buf, "{\"stdin\":{\"close\":true}}");
	assert_int_equal(nomad_exec_frame_stdin_close(buf, 24), -1);
	assert_int_equal(nomad_exec_frame_heartbeat(buf, sizeof buf), 2);
	assert_string_equal(buf, "{}");
	nomad_exec_frame_tty_size(buf, sizeof buf, 24, 80);
	assert_string_equal(buf, "{\"tty_size\":{\"height\":24,\"width\":80}}");
	nomad_exec_frame_tty_size(buf, sizeof buf, 0, 80);
	assert_string_equal(buf, "{\"tty_size\":{\"width\":80}}");
	nomad_exec_frame_tty_size(buf, sizeof buf, 24, 0);
	assert_string_equal(buf, "{\"tty_size\":{\"height\":24}}");
	assert_int_equal(nomad_exec_frame_tty_size(buf, 10, 24, 80), -1);
}

static int parse(const char *s, struct nomad_exec_frame *f, char *buf, size_t cap, struct perr *e)
{
	return nomad_exec_parse_frame(s, strlen(s), f, buf, cap, e);
}

static void test_server_frames_from_the_samples(void **state)
{
	(void)state;
	struct nomad_exec_frame f;
	struct perr e;
	char buf[512];

	assert_int_equal(parse("{\"stdout\":{\"data\":\"aGVsbG8NCg==\"}}", &f, buf, sizeof buf, &e), 0);
	assert_int_equal(f.out_len, 7);
	assert_memory_equal(f.out, "hello\r\n", 7);
	assert_null(f.err);
	assert_false(f.exited);

	assert_int_equal(
	    parse("{\"stderr\":{\"data\":\"bHM6IGNhbm5vdCBhY2Nlc3MgJ25vcGUnOiBObyBzdWNoIGZpbGUgb3Ig"
	          "ZGlyZWN0b3J5Cg==\"}}",
	          &f, buf, sizeof buf, &e),
	    0);
	assert_null(f.out);
	assert_int_equal(f.err_len, strlen("ls: cannot access 'nope': No such file or directory\n"));
	assert_memory_equal(f.err, "ls: cannot access 'nope': No such file or directory\n", f.err_len);

	const char *quiet[] = {"{\"stdout\":{\"close\":true}}",
	                       "{\"stderr\":{\"close\":true}}",
	                       "{}",
	                       "{\"unknown\":{\"data\":\"aGk=\"}}",
	                       "{\"exited\":false}",
	                       " {} \n"};
	for (size_t i = 0; i < sizeof quiet / sizeof *quiet; i++) {
		assert_int_equal(parse(quiet[i], &f, buf, sizeof buf, &e), 0);
		assert_null(f.out);
		assert_null(f.err);
		assert_false(f.exited);
	}

	assert_int_equal(parse("{\"exited\":true,\"result\":{}}", &f, buf, sizeof buf, &e), 0);
	assert_true(f.exited);
	assert_int_equal(f.exit_code, 0);
	assert_int_equal(parse("{\"exited\":true,\"result\":{\"exit_code\":2}}", &f, buf, sizeof buf, &e), 0);
	assert_true(f.exited);
	assert_int_equal(f.exit_code, 2);
	assert_int_equal(parse("{\"exited\":true}", &f, buf, sizeof buf, &e), 0);
	assert_true(f.exited);
	assert_int_equal(f.exit_code, 0);
	assert_int_equal(
	    parse("{\"exited\":true,\"result\":{\"exit_code\":137,\"signal\":9,\"oom_killed\":true}}", &f,
	          buf, sizeof buf, &e),
	    0);
	assert_int_equal(f.exit_code, 137);

	/* empty data is no output */
	assert_int_equal(parse("{\"stdout\":{\"data\":\"\"}}", &f, buf, sizeof buf, &e), 0);
	assert_int_equal(f.out_len, 0);
}

static void test_garbage_frames_are_errors(void **state)
{
	(void)state;
	struct nomad_exec_frame f;
	struct perr e;
	char buf[64];
	const char *bad[] = {
	    "", "not json", "[1,2]", "\"str\"", "{\"stdout\":", "{} {}", "{}x",
	    "{\"stdout\":{\"data\":\"a$==\"}}", "{\"stdout\":{\"data\":\"aGk\"}}",
	    "{\"stdout\":{\"data\":\"a=Gk\"}}", "{\"stdout\":{\"data\":\"aG===\"}}",
	    "{\"stderr\":{\"data\":42}}",
	    /* decodes to more than buf holds */
	    "{\"stdout\":{\"data\":\"QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
	    "QUFBQUFBQUFBQUFBQUFBQUFB\"}}"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		e.kind = PERR_OK;
		assert_int_equal(parse(bad[i], &f, buf, sizeof buf, &e), -1);
		assert_true(e.kind == PERR_NOMAD_INTERNAL);
		assert_null(f.out);
	}
	/* a frame cut short by its length is not accepted either */
	assert_int_equal(nomad_exec_parse_frame("{\"exited\":true}", 8, &f, buf, sizeof buf, &e), -1);
}

static void test_data_of_every_length_round_trips(void **state)
{
	(void)state;
	char raw[3000], b64[4100], frame[4200];
	for (size_t i = 0; i < sizeof raw; i++)
		raw[i] = (char)(i * 31 + 11);
	for (size_t len = 0; len <= sizeof raw; len += (len < 64 ? 1 : 97)) {
		int k = len ? lws_b64_encode_string(raw, (int)len, b64, sizeof b64) : 0;
		b64[k < 0 ? 0 : k] = '\0';
		int n = snprintf(frame, sizeof frame, "{\"stderr\":{\"data\":\"%s\"}}", b64);
		/* exactly the buffer the module promises is enough */
		size_t cap = nomad_exec_decode_cap((size_t)n);
		char *buf = malloc(cap);
		struct nomad_exec_frame f;
		assert_int_equal(nomad_exec_parse_frame(frame, (size_t)n, &f, buf, cap, NULL), 0);
		assert_int_equal(f.err_len, len);
		if (len)
			assert_memory_equal(f.err, raw, len);
		free(buf);
	}
}

static void test_http_and_close_errors(void **state)
{
	(void)state;
	struct perr e;
	nomad_exec_http_error(&e, 429);
	assert_int_equal(e.kind, PERR_NOMAD_OVERLOAD);
	nomad_exec_http_error(&e, 503);
	assert_int_equal(e.kind, PERR_NOMAD_OVERLOAD);
	nomad_exec_http_error(&e, 500);
	assert_int_equal(e.kind, PERR_NOMAD_OVERLOAD);
	assert_non_null(strstr(e.msg, "500"));
	nomad_exec_http_error(&e, 404);
	assert_int_equal(e.kind, PERR_NOMAD_INTERNAL);
	assert_non_null(strstr(e.msg, "404"));
	nomad_exec_http_error(&e, 403);
	assert_int_equal(e.kind, PERR_NOMAD_INTERNAL);

	const char unknown[] = "\x03\xf0Unknown allocation \"" ALLOC "\"";
	nomad_exec_close_error(&e, (const unsigned char *)unknown, sizeof unknown - 1);
	assert_int_equal(e.kind, PERR_NOMAD_INTERNAL);
	assert_non_null(strstr(e.msg, "Unknown allocation \"" ALLOC "\""));
	assert_non_null(strstr(e.msg, "1008"));
	const char denied[] = "\x03\xf3Permission denied";
	nomad_exec_close_error(&e, (const unsigned char *)denied, sizeof denied - 1);
	assert_int_equal(e.kind, PERR_NOMAD_INTERNAL);
	assert_non_null(strstr(e.msg, "1011"));
	assert_non_null(strstr(e.msg, "Permission denied"));
	nomad_exec_close_error(&e, (const unsigned char *)"\x03\xe8", 2);
	assert_non_null(strstr(e.msg, "1000"));
	assert_non_null(strstr(e.msg, "before the exit code"));
	nomad_exec_close_error(&e, NULL, 0);
	assert_int_equal(e.kind, PERR_NOMAD_INTERNAL);
	assert_non_null(strstr(e.msg, "before the exit code"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_query_escape_keeps_only_safe_bytes),
	    cmocka_unit_test(test_request_path_for_the_sample_listing),
	    cmocka_unit_test(test_request_path_options),
	    cmocka_unit_test(test_request_path_rejects_what_cannot_be_sent),
	    cmocka_unit_test(test_client_frames),
	    cmocka_unit_test(test_server_frames_from_the_samples),
	    cmocka_unit_test(test_garbage_frames_are_errors),
	    cmocka_unit_test(test_data_of_every_length_round_trips),
	    cmocka_unit_test(test_http_and_close_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
