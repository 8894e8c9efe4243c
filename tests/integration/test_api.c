/* poseidon-api behind a real lighttpd with real Redis: routing (GEN-1..3), auth (AUTH-1..6),
 * health (HLT-1..3), version (VER-1), statistics (STA-1/3), body limits (413), malformed JSON
 * (GEN-6) and the runner claim (RUN-1..4). Last, a worker under valgrind serves 1000 requests
 * and must leave no error and no leak (POSEIDON_TEST_VALGRIND=0 skips it; make asan does). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "store.h"
#include "version.h"

static struct h_stack open_, locked; /* without and with a token */
static struct store *st_open, *st_locked;

static struct store *store_for(struct h_stack *s)
{
	struct config c;
	config_defaults(&c);
	c.redis.port = s->redis.port;
	return store_open(&c);
}

static int setup(void **state)
{
	(void)state;
	static const char *open_env[] = {"POSEIDON_SERVER_MAXBODYSIZE=4096", NULL};
	static const char *locked_env[] = {"POSEIDON_SERVER_ALERT_PREWARMINGPOOLTHRESHOLD=0.5", NULL};
	struct h_front_opts o1 = {.workers = 2, .env = open_env};
	struct h_front_opts o2 = {.workers = 1, .token = "TestToken", .env = locked_env};
	if (h_stack_start(&open_, &o1) < 0 || h_stack_start(&locked, &o2) < 0)
		return -1;
	st_open = store_for(&open_);
	st_locked = store_for(&locked);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	store_close(st_open);
	store_close(st_locked);
	h_stack_stop(&open_);
	h_stack_stop(&locked);
	/* under make asan: no worker may have reported anything */
	return h_sanitizer_reports(open_.rundir) + h_sanitizer_reports(locked.rundir) == 0 ? 0 : -1;
}

static int flush(void **state)
{
	(void)state;
	h_redis_cli(&open_.redis, "FLUSHALL");
	h_redis_cli(&locked.redis, "FLUSHALL");
	return 0;
}

/* method + path on stack s, returns the status; body/headers stay in *r (caller frees). */
static long req(struct h_stack *s, struct h_resp *r, const char *method, const char *path, const char *body,
		const char *const *headers)
{
	char url[512];
	snprintf(url, sizeof url, "http://127.0.0.1:%d%s", s->port, path);
	assert_int_equal(h_http(r, method, url, body, -1, headers), 0);
	return r->status;
}

static long status_of(struct h_stack *s, const char *method, const char *path, const char *body,
		      const char *const *headers, int expect_empty)
{
	struct h_resp r;
	long st = req(s, &r, method, path, body, headers);
	if (expect_empty)
		assert_int_equal(r.len, 0);
	h_resp_free(&r);
	return st;
}

static void assert_json_message(const struct h_resp *r, const char *fragment)
{
	char ct[128];
	assert_true(h_header(r, "Content-Type", ct, sizeof ct));
	assert_string_equal(ct, "application/json");
	assert_non_null(strstr(r->body, "{\"message\":\""));
	if (fragment)
		assert_non_null(strstr(r->body, fragment));
}

static void seed_env(struct store *st, long long id, unsigned long long pool, int ready)
{
	struct environment env = {.id = id, .prewarming_pool_size = pool, .ports_null = 1};
	int created;
	struct perr e;
	assert_int_equal(store_env_put(st, &env, &created, NULL, &e), 0);
	for (int i = 0; i < ready; i++) {
		char rid[64];
		snprintf(rid, sizeof rid, "%lld-runner-%d", id, i);
		assert_int_equal(store_runner_add_starting(st, id, 1, rid, &e), 1);
		assert_int_equal(store_runner_ready(st, rid, "alloc", "node", NULL, 0, &e), 1);
	}
}

static void test_health_is_204_without_token(void **state)
{
	(void)state;
	assert_int_equal(status_of(&open_, "GET", "/api/v1/health", NULL, NULL, 1), 204);
	assert_int_equal(status_of(&locked, "GET", "/api/v1/health", NULL, NULL, 1), 204); /* AUTH-2 */
}

static void test_version_is_a_json_string(void **state)
{
	(void)state;
	struct h_resp r;
	assert_int_equal(req(&locked, &r, "GET", "/api/v1/version", NULL, NULL), 200); /* exempt from auth */
	char ct[64], expected[256];
	assert_true(h_header(&r, "Content-Type", ct, sizeof ct));
	assert_string_equal(ct, "application/json");
	snprintf(expected, sizeof expected, "\"%s\"", poseidon_version());
	assert_string_equal(r.body, expected);
	h_resp_free(&r);
}

/* r must be GET /api/v1/openapi.yaml's answer: api/openapi.yaml of the source tree, byte for byte. */
static void assert_openapi_document(const struct h_resp *r)
{
	char why[512];
	if (h_openapi_mismatch(r, why, sizeof why))
		fail_msg("GET /api/v1/openapi.yaml: %s", why);
}

/* The OpenAPI document is public like /health (the token is configured on locked) and exact. */
static void test_openapi_document_is_public_and_exact(void **state)
{
	(void)state;
	struct h_resp r;
	req(&locked, &r, "GET", "/api/v1/openapi.yaml", NULL, NULL);
	assert_openapi_document(&r);
	h_resp_free(&r);
	assert_int_equal(status_of(&locked, "POST", "/api/v1/openapi.yaml", "{}", NULL, 1), 405);
}

static void test_unknown_paths_are_404_empty_even_without_token(void **state)
{
	(void)state;
	const char *paths[] = {"/", "/api/v1/foo", "/api/v1/runners/", "/api/v1/runners/R/unknown",
			       "/api/v1/execution-environments/invalid-id", "/api/v1/execution-environments/-1",
			       "/api/v1/execution-environments/1.5", "/api/v2/health", "/api/v1/health/"};
	for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
		assert_int_equal(status_of(&open_, "GET", paths[i], NULL, NULL, 1), 404);
		assert_int_equal(status_of(&locked, "GET", paths[i], NULL, NULL, 1), 404); /* GEN-1 */
	}
	assert_int_equal(status_of(&locked, "PUT", "/api/v1/execution-environments/x", "{}", NULL, 1), 404);
}

static void test_wrong_method_is_405_empty_before_auth(void **state)
{
	(void)state;
	const char *cases[][2] = {{"GET", "/api/v1/runners"},
				  {"GET", "/api/v1/runners/n0n-3x1st1ng-1d"},
				  {"PUT", "/api/v1/runners/R/execute"},
				  {"POST", "/api/v1/execution-environments"},
				  {"POST", "/api/v1/health"},
				  {"DELETE", "/api/v1/statistics/execution-environments"},
				  {"PATCH", "/api/v1/version"}};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		assert_int_equal(status_of(&open_, cases[i][0], cases[i][1], "", NULL, 1), 405);
		assert_int_equal(status_of(&locked, cases[i][0], cases[i][1], "", NULL, 1), 405); /* GEN-2 */
	}
}

static void test_token_is_required_on_protected_routes(void **state)
{
	(void)state;
	const char *none[] = {NULL};
	const char *wrong[] = {"Poseidon-Token: Wr0ngT0k3n", NULL};
	const char *empty[] = {"Poseidon-Token;", NULL};
	const char *right[] = {"Poseidon-Token: TestToken", NULL};
	/* AUTH-3/4/6: 401 with empty body */
	assert_int_equal(status_of(&locked, "POST", "/api/v1/runners", "", none, 1), 401);
	assert_int_equal(status_of(&locked, "POST", "/api/v1/runners", "", wrong, 1), 401);
	assert_int_equal(status_of(&locked, "POST", "/api/v1/runners", "", empty, 1), 401);
	assert_int_equal(status_of(&locked, "GET", "/api/v1/statistics/execution-environments", NULL, none, 1), 401);
	assert_int_equal(status_of(&locked, "DELETE", "/api/v1/runners/n0n-3x1st1ng-1d", NULL, none, 1), 401);
	assert_int_equal(status_of(&locked, "GET", "/api/v1/execution-environments", NULL, wrong, 1), 401);
	/* AUTH-5: the right token receives through to the handler (400: empty body) */
	struct h_resp r;
	assert_int_equal(req(&locked, &r, "POST", "/api/v1/runners", "", right), 400);
	assert_json_message(&r, "EOF");
	h_resp_free(&r);
	assert_int_equal(status_of(&locked, "GET", "/api/v1/statistics/execution-environments", NULL, right, 0), 200);
	/* AUTH-1: no token configured, everything open */
	assert_int_equal(status_of(&open_, "GET", "/api/v1/statistics/execution-environments", NULL, NULL, 0), 200);
}

static void test_statistics_shape_and_counts(void **state)
{
	(void)state;
	struct h_resp r;
	assert_int_equal(req(&open_, &r, "GET", "/api/v1/statistics/execution-environments", NULL, NULL), 200);
	assert_string_equal(r.body, "{}");
	h_resp_free(&r);
	seed_env(st_open, 0, 2, 2);
	seed_env(st_open, 11, 0, 0);
	assert_int_equal(req(&open_, &r, "POST", "/api/v1/runners", "{\"executionEnvironmentId\":0}", NULL), 200);
	h_resp_free(&r);
	assert_int_equal(req(&open_, &r, "GET", "/api/v1/statistics/execution-environments", NULL, NULL), 200);
	assert_string_equal(r.body, "{\"0\":{\"id\":0,\"prewarmingPoolSize\":2,\"idleRunners\":1,\"usedRunners\":1},"
				    "\"11\":{\"id\":11,\"prewarmingPoolSize\":0,\"idleRunners\":0,\"usedRunners\":0}}");
	h_resp_free(&r);
}

static void test_claim_answers(void **state)
{
	(void)state;
	struct h_resp r;
	seed_env(st_open, 0, 1, 1);
	seed_env(st_open, 3, 0, 0);
	/* RUN-1 and RUN-12: {} means environment 0 */
	assert_int_equal(req(&open_, &r, "POST", "/api/v1/runners", "{}", NULL), 200);
	assert_string_equal(r.body, "{\"runnerId\":\"0-runner-0\",\"mappedPorts\":[]}");
	h_resp_free(&r);
	/* RUN-4: empty pool */
	assert_int_equal(req(&open_, &r, "POST", "/api/v1/runners", "{\"executionEnvironmentId\":0}", NULL), 500);
	assert_json_message(&r, "no runners available for this execution environment");
	assert_non_null(strstr(r.body, "\"errorCode\":\"NOMAD_OVERLOAD\""));
	h_resp_free(&r);
	assert_int_equal(req(&open_, &r, "POST", "/api/v1/runners", "{\"executionEnvironmentId\":3}", NULL), 500);
	h_resp_free(&r);
	/* RUN-3: unknown environment */
	assert_int_equal(req(&open_, &r, "POST", "/api/v1/runners", "{\"executionEnvironmentId\":9999}", NULL), 404);
	assert_json_message(&r, "execution environment not found");
	h_resp_free(&r);
}

static void test_malformed_bodies_are_400_with_message(void **state)
{
	(void)state;
	const char *html[] = {"Content-Type: text/html", NULL};
	struct {
		const char *body;
		const char *fragment;
	} cases[] = {
		{"", "EOF"},
		{"{", "unexpected EOF"},
		{"{\"executionEnvironmentId\":", "unexpected EOF"},
		{"not json", "invalid character"},
		{"{\"executionEnvironmentId\":\"x\"}", "cannot unmarshal string"},
		{"{\"executionEnvironmentId\":92233720368547758070}", "executionEnvironmentId"},
		{"{\"inactivityTimeout\":1.5}", "inactivityTimeout"},
		{"[1,2]", "cannot unmarshal array"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct h_resp r;
		if (req(&open_, &r, "POST", "/api/v1/runners", cases[i].body, html) != 400)
			fprintf(stderr, "case %zu: %s -> %ld %s\n", i, cases[i].body, r.status, r.body);
		assert_int_equal(r.status, 400);
		assert_json_message(&r, cases[i].fragment);
		assert_null(strstr(r.body, "errorCode"));
		h_resp_free(&r);
	}
}

static void test_oversized_body_is_413_json(void **state)
{
	(void)state;
	char *big = malloc(10000);
	memset(big, ' ', 9999);
	big[9999] = '\0';
	big[0] = '{';
	big[9998] = '}';
	struct h_resp r;
	/* the front's limit is the workers' (server.maxbodysize): it answers in the API's JSON
	 * before the body reaches a worker */
	assert_int_equal(req(&open_, &r, "POST", "/api/v1/runners", big, NULL), 413);
	assert_json_message(&r, "exceeds the limit");
	h_resp_free(&r);
	big[3000] = '}';
	big[3001] = '\0';
	assert_int_equal(req(&open_, &r, "POST", "/api/v1/runners", big, NULL), 404); /* under the limit: parsed, env 0 unknown */
	h_resp_free(&r);
	free(big);
}

static void test_health_alerts_on_depleting_pool(void **state)
{
	(void)state;
	struct h_resp r;
	seed_env(st_locked, 0, 3, 1); /* 1/3 < 0.5 (HLT-2) */
	seed_env(st_locked, 1, 0, 0); /* size 0 never counts (HLT-3) */
	seed_env(st_locked, 2, 2, 1); /* 1/2 is not below 0.5 */
	assert_int_equal(req(&locked, &r, "GET", "/api/v1/health", NULL, NULL), 503);
	assert_json_message(&r, "the prewarming pool is depleting: environments 0\"");
	assert_non_null(strstr(r.body, "\"errorCode\":\"PREWARMING_POOL_DEPLETING\""));
	h_resp_free(&r);
	seed_env(st_locked, 0, 2, 0); /* now 0: 2/2 fine */
	seed_env(st_locked, 7, 4, 1);
	seed_env(st_locked, 8, 4, 1);
	assert_int_equal(req(&locked, &r, "GET", "/api/v1/health", NULL, NULL), 503);
	assert_json_message(&r, "environments 7, 8\"");
	h_resp_free(&r);
	/* the open stack has the default threshold 0: never alerts */
	seed_env(st_open, 0, 3, 0);
	assert_int_equal(status_of(&open_, "GET", "/api/v1/health", NULL, NULL, 1), 204);
}

static void test_health_is_503_while_redis_is_down(void **state)
{
	(void)state;
	struct h_resp r;
	h_stop(open_.redis.pid);
	open_.redis.pid = 0;
	assert_int_equal(req(&open_, &r, "GET", "/api/v1/health", NULL, NULL), 503);
	assert_json_message(&r, "redis");
	assert_non_null(strstr(r.body, "\"errorCode\":\"UNKNOWN\""));
	h_resp_free(&r);
	assert_int_equal(req(&open_, &r, "POST", "/api/v1/runners", "{}", NULL), 500);
	assert_json_message(&r, "redis");
	h_resp_free(&r);
	assert_int_equal(h_redis_restart(&open_.redis), 0);
	assert_int_equal(status_of(&open_, "GET", "/api/v1/health", NULL, NULL, 1), 204);
}

/* 1 when every valgrind log in dir has its final summary. */
static int valgrind_done(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int done = 1, seen = 0;
	while (d && (de = readdir(d))) {
		char path[1024], buf[65536];
		if (strncmp(de->d_name, "valgrind-", 9) != 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		FILE *f = fopen(path, "r");
		size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
		if (f)
			fclose(f);
		buf[n] = '\0';
		seen = 1;
		done &= strstr(buf, "ERROR SUMMARY") != NULL;
	}
	if (d)
		closedir(d);
	return seen && done;
}

/* Under `make valgrind`: 1000 requests of every kind against valgrind'd workers, then every
 * worker's valgrind log must report no errors and no definite or indirect leak. */
static void test_workers_are_valgrind_clean(void **state)
{
	(void)state;
	const char *want = getenv("POSEIDON_TEST_VALGRIND");
	if ((want && strcmp(want, "0") == 0) || system("valgrind --version >/dev/null 2>&1") != 0) {
		skip();
		return;
	}
	struct h_stack vg = {0};
	struct h_front_opts o = {.workers = 1, .token = "T", .valgrind = 1};
	assert_int_equal(h_stack_start(&vg, &o), 0);
	struct store *st = store_for(&vg);
	seed_env(st, 0, 100, 100);
	const char *tok[] = {"Poseidon-Token: T", NULL};
	h_sleep_ms(1500); /* valgrind start-up */
	for (int i = 0; i < 1000; i++) {
		struct h_resp r;
		switch (i % 8) {
		case 0: req(&vg, &r, "GET", "/api/v1/health", NULL, NULL); break;
		case 1: req(&vg, &r, "GET", "/api/v1/version", NULL, NULL); break;
		case 2: req(&vg, &r, "GET", "/api/v1/statistics/execution-environments", NULL, tok); break;
		case 3: req(&vg, &r, "POST", "/api/v1/runners", i % 16 == 3 ? "{}" : "{\"executionEnvironmentId\":9}", tok); break;
		case 4: req(&vg, &r, "POST", "/api/v1/runners", "{\"executionEnvironmentId\":\"x\"}", tok); break;
		case 5: req(&vg, &r, "GET", "/api/v1/nope", NULL, NULL); break;
		case 6: req(&vg, &r, "GET", "/api/v1/runners", NULL, NULL); break;
		default: req(&vg, &r, "POST", "/api/v1/runners", "{", NULL); break;
		}
		assert_true(r.status >= 200 && r.status < 600);
		h_resp_free(&r);
	}
	store_close(st);
	/* SIGTERM to lighttpd and its workers (to multiwatch, which passes it on, behind nginx or
	 * Apache); give valgrind time for the leak check before the harness's final SIGKILL */
	kill(-vg.lighttpd, SIGTERM);
	if (vg.workers > 0)
		kill(vg.workers, SIGTERM);
	for (int i = 0; i < 300 && !valgrind_done(vg.rundir); i++)
		h_sleep_ms(100);
	h_stack_stop(&vg);
	DIR *d = opendir(vg.rundir);
	struct dirent *de;
	int logs = 0;
	while (d && (de = readdir(d))) {
		if (strncmp(de->d_name, "valgrind-", 9) != 0)
			continue;
		char path[1024], buf[65536];
		snprintf(path, sizeof path, "%s/%s", vg.rundir, de->d_name);
		FILE *f = fopen(path, "r");
		size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
		if (f)
			fclose(f);
		buf[n] = '\0';
		if (!strstr(buf, "ERROR SUMMARY"))
			continue; /* not a worker that ran (e.g. the wrapper's own exec) */
		logs++;
		if (!strstr(buf, "ERROR SUMMARY: 0 errors"))
			fprintf(stderr, "%s\n", buf);
		assert_non_null(strstr(buf, "ERROR SUMMARY: 0 errors"));
	}
	if (d)
		closedir(d);
	assert_true(logs >= 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_health_is_204_without_token, flush),
		cmocka_unit_test_setup(test_version_is_a_json_string, flush),
		cmocka_unit_test_setup(test_openapi_document_is_public_and_exact, flush),
		cmocka_unit_test_setup(test_unknown_paths_are_404_empty_even_without_token, flush),
		cmocka_unit_test_setup(test_wrong_method_is_405_empty_before_auth, flush),
		cmocka_unit_test_setup(test_token_is_required_on_protected_routes, flush),
		cmocka_unit_test_setup(test_statistics_shape_and_counts, flush),
		cmocka_unit_test_setup(test_claim_answers, flush),
		cmocka_unit_test_setup(test_malformed_bodies_are_400_with_message, flush),
		cmocka_unit_test_setup(test_oversized_body_is_413_json, flush),
		cmocka_unit_test_setup(test_health_alerts_on_depleting_pool, flush),
		cmocka_unit_test_setup(test_health_is_503_while_redis_is_down, flush),
		cmocka_unit_test(test_workers_are_valgrind_clean),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
