/* model: request parsing with Go's leniency and strict typing (docs/api.md GEN-6, ENV-19,
 * RUN-12, FIL-11), and the exact shapes of rendered bodies (ENV-10, STA-1, RUN-1, ENV-6). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

#define S(x) x, strlen(x)

static void expect_bad(int rc, const struct perr *e, const char *fragment)
{
	assert_int_equal(rc, -1);
	assert_int_equal(e->kind, PERR_BAD_REQUEST);
	assert_non_null(strstr(e->msg, fragment));
}

static void test_empty_body_is_eof(void **state)
{
	(void)state;
	struct runner_request r;
	struct perr e;
	expect_bad(model_parse_runner_request(S(""), &r, &e), &e, "EOF");
	assert_string_equal(e.msg, "EOF");
	expect_bad(model_parse_runner_request(S("  \n"), &r, &e), &e, "EOF");
	assert_string_equal(e.msg, "EOF");
}

static void test_truncated_json_is_unexpected_eof(void **state)
{
	(void)state;
	struct runner_request r;
	struct perr e;
	expect_bad(model_parse_runner_request(S("{"), &r, &e), &e, "unexpected EOF");
	expect_bad(model_parse_runner_request(S("{\"executionEnvironmentId\": 1"), &r, &e), &e, "unexpected EOF");
	expect_bad(model_parse_runner_request(S("[1,"), &r, &e), &e, "unexpected EOF");
}

static void test_non_json_is_invalid_character(void **state)
{
	(void)state;
	struct runner_request r;
	struct perr e;
	expect_bad(model_parse_runner_request(S("hello"), &r, &e), &e, "invalid character 'h'");
	expect_bad(model_parse_runner_request(S("{\"a\" 1}"), &r, &e), &e, "invalid character");
}

static void test_wrong_type_names_field(void **state)
{
	(void)state;
	struct runner_request r;
	struct perr e;
	expect_bad(model_parse_runner_request(S("{\"executionEnvironmentId\":\"x\"}"), &r, &e), &e,
		   "json: cannot unmarshal string into Go struct field RunnerRequest.executionEnvironmentId of type int");
	expect_bad(model_parse_runner_request(S("{\"executionEnvironmentId\":1.5}"), &r, &e), &e, "number 1.5");
	expect_bad(model_parse_runner_request(S("{\"inactivityTimeout\":true}"), &r, &e), &e, "of type int");
	expect_bad(model_parse_runner_request(S("[]"), &r, &e), &e, "cannot unmarshal array into Go value");
	expect_bad(model_parse_runner_request(S("42"), &r, &e), &e, "cannot unmarshal number into Go value");
}

static void test_unknown_fields_ignored_missing_are_zero(void **state)
{
	(void)state;
	struct runner_request r = {.environment_id = 7, .inactivity_timeout = 7};
	struct perr e;
	assert_int_equal(model_parse_runner_request(S("{\"foo\":[1,{\"x\":null}],\"bar\":\"baz\"}"), &r, &e), 0);
	assert_int_equal(r.environment_id, 0);
	assert_int_equal(r.inactivity_timeout, 0);
	/* RUN-12: {} is environment 0 */
	assert_int_equal(model_parse_runner_request(S("{}"), &r, &e), 0);
	assert_int_equal(r.environment_id, 0);
	/* null body = all defaults; trailing bytes after the first value are ignored */
	assert_int_equal(model_parse_runner_request(S("null"), &r, &e), 0);
	assert_int_equal(model_parse_runner_request(S("{\"executionEnvironmentId\":3} trailing"), &r, &e), 0);
	assert_int_equal(r.environment_id, 3);
	/* a field set to null keeps its zero value */
	assert_int_equal(model_parse_runner_request(S("{\"executionEnvironmentId\":null,\"inactivityTimeout\":-5}"), &r, &e), 0);
	assert_int_equal(r.environment_id, 0);
	assert_int_equal(r.inactivity_timeout, -5);
}

static void test_keys_match_case_insensitively_last_wins(void **state)
{
	(void)state;
	struct runner_request r;
	struct perr e;
	assert_int_equal(model_parse_runner_request(S("{\"ExecutionEnvironmentID\":12}"), &r, &e), 0);
	assert_int_equal(r.environment_id, 12);
	assert_int_equal(model_parse_runner_request(S("{\"executionEnvironmentId\":1,\"executionEnvironmentId\":2}"), &r, &e), 0);
	assert_int_equal(r.environment_id, 2);
}

static void test_int64_overflow_is_bad_request(void **state)
{
	(void)state;
	struct runner_request r;
	struct perr e;
	expect_bad(model_parse_runner_request(S("{\"executionEnvironmentId\":92233720368547758070}"), &r, &e), &e,
		   "RunnerRequest.executionEnvironmentId");
	expect_bad(model_parse_runner_request(S("{\"inactivityTimeout\":-92233720368547758070}"), &r, &e), &e,
		   "RunnerRequest.inactivityTimeout");
	assert_int_equal(model_parse_runner_request(S("{\"executionEnvironmentId\":9223372036854775806}"), &r, &e), 0);
	assert_true(r.environment_id == 9223372036854775806LL);
}

static void test_environment_full_and_defaults(void **state)
{
	(void)state;
	struct environment env = {.id = 42};
	struct perr e;
	const char *body = "{\"prewarmingPoolSize\":10,\"cpuLimit\":20,\"memoryLimit\":100,"
			   "\"image\":\"openhpi/co_execenv_java:17\",\"networkAccess\":true,"
			   "\"exposedPorts\":[42,1337],\"id\":99}";
	assert_int_equal(model_parse_environment(S(body), &env, &e), 0);
	assert_int_equal(env.id, 42); /* ENV-19: the id comes from the URL */
	assert_int_equal(env.prewarming_pool_size, 10);
	assert_int_equal(env.cpu_limit, 20);
	assert_int_equal(env.memory_limit, 100);
	assert_string_equal(env.image, "openhpi/co_execenv_java:17");
	assert_true(env.network_access);
	assert_false(env.ports_null);
	assert_int_equal(env.nports, 2);
	assert_int_equal(env.ports[1], 1337);

	assert_int_equal(model_parse_environment(S("{}"), &env, &e), 0);
	assert_int_equal(env.id, 42);
	assert_int_equal(env.prewarming_pool_size, 0);
	assert_string_equal(env.image, "");
	assert_true(env.ports_null);
	assert_int_equal(model_parse_environment(S("{\"exposedPorts\":[]}"), &env, &e), 0);
	assert_false(env.ports_null);
	assert_int_equal(env.nports, 0);
}

static void test_environment_typing(void **state)
{
	(void)state;
	struct environment env = {0};
	struct perr e;
	/* ENV-19: negative unsigned, port out of range, wrong types */
	expect_bad(model_parse_environment(S("{\"prewarmingPoolSize\":-1}"), &env, &e), &e, "of type uint");
	expect_bad(model_parse_environment(S("{\"cpuLimit\":-20}"), &env, &e), &e, "cpuLimit");
	expect_bad(model_parse_environment(S("{\"memoryLimit\":\"100\"}"), &env, &e), &e, "memoryLimit");
	expect_bad(model_parse_environment(S("{\"exposedPorts\":[65536]}"), &env, &e), &e, "uint16");
	expect_bad(model_parse_environment(S("{\"exposedPorts\":[-1]}"), &env, &e), &e, "uint16");
	expect_bad(model_parse_environment(S("{\"exposedPorts\":\"80\"}"), &env, &e), &e, "[]uint16");
	expect_bad(model_parse_environment(S("{\"networkAccess\":1}"), &env, &e), &e, "of type bool");
	expect_bad(model_parse_environment(S("{\"image\":5}"), &env, &e), &e, "of type string");
	expect_bad(model_parse_environment(S("{\"prewarmingPoolSize\":18446744073709551616}"), &env, &e), &e, "uint");
	assert_int_equal(model_parse_environment(S("{\"exposedPorts\":[0,65535]}"), &env, &e), 0);
	assert_int_equal(env.ports[1], 65535);
	assert_int_equal(model_parse_environment(S("{\"cpuLimit\":4294967296}"), &env, &e), 0);
	assert_true(env.cpu_limit == 4294967296ULL);
}

static void test_deep_nesting_is_rejected(void **state)
{
	(void)state;
	char body[4096];
	struct runner_request r;
	struct perr e;
	size_t n = 0;
	n += (size_t)snprintf(body, sizeof body, "{\"x\":");
	for (int i = 0; i < 1000; i++)
		body[n++] = '[';
	body[n] = '\0';
	assert_int_equal(model_parse_runner_request(body, n, &r, &e), -1);
	assert_int_equal(e.kind, PERR_BAD_REQUEST);
}

static void test_execution_request(void **state)
{
	(void)state;
	struct execution_request x;
	struct perr e;
	const char *body = "{\"command\":\"echo hi\",\"privilegedExecution\":true,\"timeLimit\":10,"
			   "\"environment\":{\"hello\":\"world\",\"A\":\"a; echo PWNED\"}}";
	assert_int_equal(model_parse_execution_request(S(body), &x, &e), 0);
	assert_string_equal(x.command, "echo hi");
	assert_true(x.privileged);
	assert_int_equal(x.time_limit, 10);
	assert_int_equal(x.nenv, 2);
	assert_string_equal(x.env[0].name, "hello");
	assert_string_equal(x.env[1].value, "a; echo PWNED");
	model_execution_free(&x);

	assert_int_equal(model_parse_execution_request(S("{}"), &x, &e), 0);
	assert_string_equal(x.command, "");
	assert_int_equal(x.time_limit, 0);
	model_execution_free(&x);
	expect_bad(model_parse_execution_request(S("{\"environment\":{\"a\":1}}"), &x, &e), &e, "of type string");
	expect_bad(model_parse_execution_request(S("{\"environment\":[]}"), &x, &e), &e, "map[string]string");
	expect_bad(model_parse_execution_request(S("{\"command\":[]}"), &x, &e), &e, "ExecutionRequest.command");
}

static void test_files_request(void **state)
{
	(void)state;
	struct files_request f;
	struct perr e;
	/* "Hello, Codemoon!" */
	const char *body = "{\"delete\":[\"./*\",\"a b\"],\"copy\":[{\"path\":\"dir/\"},"
			   "{\"path\":\"test.txt\",\"content\":\"SGVsbG8sIENvZGVtb29uIQ==\"},"
			   "{\"path\":\"empty\",\"content\":null}]}";
	assert_int_equal(model_parse_files_request(S(body), &f, &e), 0);
	assert_int_equal(f.ndelete, 2);
	assert_string_equal(f.delete_paths[1], "a b");
	assert_int_equal(f.ncopy, 3);
	assert_string_equal(f.copy[0].path, "dir/");
	assert_int_equal(f.copy[0].len, 0);
	assert_int_equal(f.copy[1].len, 16);
	assert_memory_equal(f.copy[1].content, "Hello, Codemoon!", 16);
	assert_int_equal(f.copy[2].len, 0);
	model_files_free(&f);

	/* FIL-9 */
	assert_int_equal(model_parse_files_request(S("{}"), &f, &e), 0);
	assert_int_equal(f.ncopy + f.ndelete, 0);
	model_files_free(&f);
	/* FIL-11: strict padded base64 */
	expect_bad(model_parse_files_request(S("{\"copy\":[{\"path\":\"x\",\"content\":\"SGVsbG8\"}]}"), &f, &e), &e,
		   "illegal base64 data at input byte");
	expect_bad(model_parse_files_request(S("{\"copy\":[{\"path\":\"x\",\"content\":\"SGV$bG8=\"}]}"), &f, &e), &e,
		   "illegal base64 data at input byte 3");
	expect_bad(model_parse_files_request(S("{\"copy\":[{\"path\":\"x\",\"content\":\"S=Vs\"}]}"), &f, &e), &e,
		   "illegal base64");
	expect_bad(model_parse_files_request(S("{\"copy\":{}}"), &f, &e), &e, "UpdateFileSystemRequest.copy");
	expect_bad(model_parse_files_request(S("{\"delete\":[1]}"), &f, &e), &e, "UpdateFileSystemRequest.delete");
	/* Go's decoder skips line breaks inside base64 */
	assert_int_equal(model_parse_files_request(S("{\"copy\":[{\"path\":\"x\",\"content\":\"SGVs\\nbG8=\"}]}"), &f, &e), 0);
	assert_int_equal(f.copy[0].len, 5);
	assert_memory_equal(f.copy[0].content, "Hello", 5);
	model_files_free(&f);
}

static void test_env_id_and_bool_parsing(void **state)
{
	(void)state;
	long long id;
	int b;
	struct perr e;
	assert_int_equal(model_parse_env_id("0", &id, &e), 0);
	assert_int_equal(id, 0);
	expect_bad(model_parse_env_id("92233720368547758070", &id, &e), &e,
		   "strconv.Atoi: parsing \"92233720368547758070\": value out of range");
	assert_int_equal(model_parse_bool("", 1, &b, &e), 0);
	assert_int_equal(b, 1);
	assert_int_equal(model_parse_bool("T", 0, &b, &e), 0);
	assert_int_equal(b, 1);
	assert_int_equal(model_parse_bool("False", 1, &b, &e), 0);
	assert_int_equal(b, 0);
	expect_bad(model_parse_bool("YouDecide", 0, &b, &e), &e,
		   "strconv.ParseBool: parsing \"YouDecide\": invalid syntax");
	expect_bad(model_parse_bool("yes", 0, &b, &e), &e, "invalid syntax");
}

static void test_render_environment_key_order_and_null_ports(void **state)
{
	(void)state;
	struct environment env = {.id = 0, .prewarming_pool_size = 10, .cpu_limit = 20, .memory_limit = 100,
				  .network_access = 0, .ports_null = 1};
	snprintf(env.image, sizeof env.image, "%s", "img");
	char *s = model_render_environment(&env);
	assert_string_equal(s, "{\"prewarmingPoolSize\":10,\"cpuLimit\":20,\"memoryLimit\":100,\"image\":\"img\","
			       "\"networkAccess\":false,\"exposedPorts\":null,\"id\":0}");
	free(s);
	env.ports_null = 0;
	env.nports = 2;
	env.ports[0] = 42;
	env.ports[1] = 1337;
	s = model_render_environment(&env);
	assert_non_null(strstr(s, "\"exposedPorts\":[42,1337]"));
	free(s);
	s = model_render_environments(NULL, 0);
	assert_string_equal(s, "{\"executionEnvironments\":null}");
	free(s);
	s = model_render_environments(&env, 1);
	assert_non_null(strstr(s, "{\"executionEnvironments\":[{\"prewarmingPoolSize\":10"));
	free(s);
}

static void test_render_runner_statistics_error(void **state)
{
	(void)state;
	char *s = model_render_runner("0-abc", NULL, 0);
	assert_string_equal(s, "{\"runnerId\":\"0-abc\",\"mappedPorts\":[]}");
	free(s);
	struct mapped_port mp = {.exposed_port = 8080};
	snprintf(mp.host_address, sizeof mp.host_address, "%s", "127.0.0.1:25413");
	s = model_render_runner("1-x", &mp, 1);
	assert_string_equal(s, "{\"runnerId\":\"1-x\",\"mappedPorts\":[{\"exposedPort\":8080,\"hostAddress\":\"127.0.0.1:25413\"}]}");
	free(s);
	struct env_stats st[] = {{.id = 0, .prewarming_pool_size = 2, .idle = 2, .used = 1}};
	s = model_render_statistics(st, 1);
	assert_string_equal(s, "{\"0\":{\"id\":0,\"prewarmingPoolSize\":2,\"idleRunners\":2,\"usedRunners\":1}}");
	free(s);
	s = model_render_statistics(NULL, 0);
	assert_string_equal(s, "{}");
	free(s);
	s = model_render_error("no runners available for this execution environment", "NOMAD_OVERLOAD");
	assert_string_equal(s, "{\"message\":\"no runners available for this execution environment\",\"errorCode\":\"NOMAD_OVERLOAD\"}");
	free(s);
	s = model_render_error("EOF", NULL);
	assert_string_equal(s, "{\"message\":\"EOF\"}");
	free(s);
	s = model_render_string("v1 \"x\"");
	assert_string_equal(s, "\"v1 \\\"x\\\"\"");
	free(s);
}

static void test_ports_round_trip(void **state)
{
	(void)state;
	struct environment a = {.ports_null = 0, .nports = 2, .ports = {42, 1337}}, b;
	struct perr e;
	char *s = model_ports_to_json(&a);
	assert_string_equal(s, "[42,1337]");
	assert_int_equal(model_ports_from_json(s, &b, &e), 0);
	assert_int_equal(b.nports, 2);
	assert_int_equal(b.ports[1], 1337);
	free(s);
	a.ports_null = 1;
	s = model_ports_to_json(&a);
	assert_string_equal(s, "null");
	assert_int_equal(model_ports_from_json(s, &b, &e), 0);
	assert_true(b.ports_null);
	free(s);
	struct mapped_port mp[2] = {{.exposed_port = 1}, {.exposed_port = 2}}, back[4];
	int n;
	snprintf(mp[1].host_address, sizeof mp[1].host_address, "%s", "10.0.0.1:3");
	s = model_mapped_ports_to_json(mp, 2);
	assert_int_equal(model_mapped_ports_from_json(s, back, 4, &n, &e), 0);
	assert_int_equal(n, 2);
	assert_string_equal(back[1].host_address, "10.0.0.1:3");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_body_is_eof),
		cmocka_unit_test(test_truncated_json_is_unexpected_eof),
		cmocka_unit_test(test_non_json_is_invalid_character),
		cmocka_unit_test(test_wrong_type_names_field),
		cmocka_unit_test(test_unknown_fields_ignored_missing_are_zero),
		cmocka_unit_test(test_keys_match_case_insensitively_last_wins),
		cmocka_unit_test(test_int64_overflow_is_bad_request),
		cmocka_unit_test(test_environment_full_and_defaults),
		cmocka_unit_test(test_environment_typing),
		cmocka_unit_test(test_deep_nesting_is_rejected),
		cmocka_unit_test(test_execution_request),
		cmocka_unit_test(test_files_request),
		cmocka_unit_test(test_env_id_and_bool_parsing),
		cmocka_unit_test(test_render_environment_key_order_and_null_ports),
		cmocka_unit_test(test_render_runner_statistics_error),
		cmocka_unit_test(test_ports_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
