/* http: route patterns (GEN-1/3), query parsing, percent-decoding, token comparison (AUTH-4/5)
 * and the one error-to-status table (docs/api.md section 2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "http.h"

static void test_literal_and_param_routes(void **state)
{
	(void)state;
	struct http_params p;
	assert_true(http_match("/api/v1/health", "/api/v1/health", &p));
	assert_false(http_match("/api/v1/health", "/api/v1/health/", &p));
	assert_false(http_match("/api/v1/health", "/api/v1/healthz", &p));
	assert_false(http_match("/api/v1/runners", "/api/v1/runners/", &p)); /* GEN-1: trailing slash */
	assert_true(http_match("/api/v1/runners/{runnerId}/files", "/api/v1/runners/0-abc/files", &p));
	assert_string_equal(http_get_param(&p, "runnerId"), "0-abc");
	assert_false(http_match("/api/v1/runners/{runnerId}/files", "/api/v1/runners//files", &p));
	assert_false(http_match("/api/v1/runners/{runnerId}", "/api/v1/runners/a/b", &p));
	assert_true(http_match("/api/v1/runners/{runnerId}", "/api/v1/runners/a%2Db", &p));
	assert_string_equal(http_get_param(&p, "runnerId"), "a-b");
	assert_null(http_get_param(&p, "nope"));
}

static void test_int_params_are_digits_only(void **state)
{
	(void)state;
	struct http_params p;
	const char *pat = "/api/v1/execution-environments/{id:int}";
	assert_true(http_match(pat, "/api/v1/execution-environments/0", &p));
	assert_string_equal(http_get_param(&p, "id"), "0");
	assert_true(http_match(pat, "/api/v1/execution-environments/92233720368547758070", &p));
	/* GEN-3 */
	assert_false(http_match(pat, "/api/v1/execution-environments/invalid-id", &p));
	assert_false(http_match(pat, "/api/v1/execution-environments/-1", &p));
	assert_false(http_match(pat, "/api/v1/execution-environments/1.5", &p));
	assert_false(http_match(pat, "/api/v1/execution-environments/", &p));
}

static void test_bad_escapes_do_not_match(void **state)
{
	(void)state;
	struct http_params p;
	assert_false(http_match("/r/{id}", "/r/a%zz", &p));
	assert_false(http_match("/r/{id}", "/r/a%00b", &p));
	assert_false(http_match("/r/{id}", "/r/a%4", &p));
	char out[8];
	assert_int_equal(http_unescape("abc%41", 6, out, sizeof out), 0);
	assert_string_equal(out, "abcA");
	assert_int_equal(http_unescape("0123456789", 10, out, sizeof out), -1); /* overflow */
}

static void test_query_parameters(void **state)
{
	(void)state;
	char v[64];
	const char *q = "path=%2Fproc%2Fself%2Fcwd&recursive=false&x&privilegedExecution=true&sp=a+b";
	assert_int_equal(http_query(q, "path", v, sizeof v), 1);
	assert_string_equal(v, "/proc/self/cwd");
	assert_int_equal(http_query(q, "recursive", v, sizeof v), 1);
	assert_string_equal(v, "false");
	assert_int_equal(http_query(q, "x", v, sizeof v), 1);
	assert_string_equal(v, "");
	assert_int_equal(http_query(q, "sp", v, sizeof v), 1);
	assert_string_equal(v, "a b");
	assert_int_equal(http_query(q, "missing", v, sizeof v), 0);
	assert_int_equal(http_query(q, "pat", v, sizeof v), 0);
	assert_int_equal(http_query("", "path", v, sizeof v), 0);
	assert_int_equal(http_query("path=%zz", "path", v, sizeof v), -1);
}

static void test_token_comparison(void **state)
{
	(void)state;
	assert_true(http_token_equal("TestToken", "TestToken"));
	assert_false(http_token_equal("Wr0ngT0k3n", "TestToken"));
	assert_false(http_token_equal("TestToke", "TestToken"));
	assert_false(http_token_equal("TestTokenX", "TestToken"));
	assert_false(http_token_equal("", "TestToken"));
	assert_false(http_token_equal(NULL, "TestToken"));
	assert_false(http_token_equal("testtoken", "TestToken"));
}

static void test_error_kinds_map_to_status_and_code(void **state)
{
	(void)state;
	const char *code;
	assert_int_equal(http_status_of(PERR_BAD_REQUEST, &code), 400);
	assert_null(code);
	assert_int_equal(http_status_of(PERR_GONE, &code), 410);
	assert_int_equal(http_status_of(PERR_TOO_LARGE, &code), 413);
	assert_int_equal(http_status_of(PERR_FAILED_DEPENDENCY, &code), 424);
	assert_int_equal(http_status_of(PERR_NOMAD_OVERLOAD, &code), 500);
	assert_string_equal(code, "NOMAD_OVERLOAD");
	assert_int_equal(http_status_of(PERR_NOMAD_INTERNAL, &code), 500);
	assert_string_equal(code, "NOMAD_INTERNAL_SERVER_ERROR");
	assert_int_equal(http_status_of(PERR_NOMAD_UNREACHABLE, &code), 500);
	assert_string_equal(code, "NOMAD_UNREACHABLE");
	assert_int_equal(http_status_of(PERR_STORE, &code), 500);
	assert_string_equal(code, "UNKNOWN");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_literal_and_param_routes),
		cmocka_unit_test(test_int_params_are_digits_only),
		cmocka_unit_test(test_bad_escapes_do_not_match),
		cmocka_unit_test(test_query_parameters),
		cmocka_unit_test(test_token_comparison),
		cmocka_unit_test(test_error_kinds_map_to_status_and_code),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
