/* Horizontal scaling (issue 7; docs/operations.md "Horizontal scaling"): two fronts, each a
 * lighttpd with its own FastCGI workers and its own poseidon-wsgate, against ONE Redis, one
 * nomad-local and one poseidon-refill, as two machines behind a load balancer would be. Whatever
 * one front does, the other sees: environments, claims (never the same runner twice), prepared
 * executions (connected through the other front, single use across both), files, deletions. A
 * gateway killed on one front does not touch the executions of the other, and with one front
 * stopped the other serves everything. No sticky sessions anywhere: every request below picks
 * its front on purpose. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define ENV     41
#define ENV_TMP 42
#define POOL    4
#define TIMEOUT 20000

static struct h_stack a, b; /* b shares a's Redis and nomad-local */
static pid_t gate_a, gate_b;
static const char *refill_env[] = {"POSEIDON_RECONCILE_INTERVAL=5", "POSEIDON_REFILL_TICKMS=100", NULL};

/* ---- REST through one front ----------------------------------------------------------------- */

/* method path (under /api/v1) on front s; the body of the answer into out (if given). */
static long api(const struct h_stack *s, const char *method, const char *path, const char *body, char *out,
                size_t cap)
{
	char url[1024];
	struct h_resp r;
	snprintf(url, sizeof url, "%s%s", s->base, path);
	assert_int_equal(h_http(&r, method, url, body, -1, NULL), 0);
	if (out)
		snprintf(out, cap, "%s", r.body);
	long status = r.status;
	h_resp_free(&r);
	return status;
}

/* Claims a runner of ENV through s, waiting while the pool refills (500 NOMAD_OVERLOAD). */
static void claim(const struct h_stack *s, char id[128], int timeout)
{
	char body[128], out[1024];
	snprintf(body, sizeof body, "{\"executionEnvironmentId\":%d,\"inactivityTimeout\":%d}", ENV, timeout);
	for (int i = 0; i < 200; i++) {
		long status = api(s, "POST", "/runners", body, out, sizeof out);
		if (status == 200) {
			assert_int_equal(sscanf(out, "{\"runnerId\":\"%127[^\"]\"", id), 1);
			return;
		}
		assert_int_equal(status, 500);
		h_sleep_ms(100);
	}
	fail_msg("no runner of environment %d through port %d", ENV, s->port);
}

/* POST /execute through s: the status; the websocketUrl's port and path+query into port/pq. */
static long execute(const struct h_stack *s, const char *runner, const char *body, int *port, char *pq,
                    size_t cap)
{
	char path[256], out[2048];
	snprintf(path, sizeof path, "/runners/%s/execute", runner);
	long status = api(s, "POST", path, body, out, sizeof out);
	if (status == 200) {
		char *u = strstr(out, "\"websocketUrl\":\"ws://127.0.0.1:");
		assert_non_null(u);
		u += strlen("\"websocketUrl\":\"ws://127.0.0.1:");
		if (port)
			*port = atoi(u);
		u = strchr(u, '/');
		assert_non_null(u);
		snprintf(pq, cap, "%.*s", (int)strcspn(u, "\""), u);
	}
	return status;
}

static long runner_files(const struct h_stack *s, const char *runner)
{
	char path[256];
	snprintf(path, sizeof path, "/runners/%s/files?path=.%%2F&recursive=false", runner);
	return api(s, "GET", path, NULL, NULL, 0);
}

/* ---- what a WebSocket client sees ------------------------------------------------------------ */

struct seen {
	char out[8192];
	char controls[8][96]; /* start, exit, timeout, error, in order */
	int ncontrols;
	int close_code; /* -1: no close frame */
	int tcp_closed;
	int timed_out;
};

static void take(struct seen *s, const char *msg)
{
	json_object *o = json_tokener_parse(msg), *t, *d;
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "type", &t));
	const char *type = json_object_get_string(t);
	if (!strcmp(type, "stdout") || !strcmp(type, "stderr")) {
		assert_true(json_object_object_get_ex(o, "data", &d));
		size_t n = strlen(s->out);
		snprintf(s->out + n, sizeof s->out - n, "%s", json_object_get_string(d));
	} else if (s->ncontrols < 8) {
		snprintf(s->controls[s->ncontrols++], sizeof s->controls[0], "%s", msg);
	}
	json_object_put(o);
}

/* Reads w until the server ends the connection (close frame and TCP close, or TCP close). */
static void read_all(struct h_ws *w, struct seen *s, int timeout_ms)
{
	long long end = h_now_ms() + timeout_ms;
	s->close_code = -1;
	for (;;) {
		char *d;
		size_t n;
		int op = h_ws_recv(w, (int)(end - h_now_ms()), &d, &n);
		if (op < 0) {
			s->timed_out = 1;
			free(d);
			return;
		}
		if (op == 0) {
			s->tcp_closed = 1;
			free(d);
			return;
		}
		if (op == 1)
			take(s, d);
		if (op == 8) {
			s->close_code = n >= 2 ? ((unsigned char)d[0] << 8 | (unsigned char)d[1]) : 0;
			free(d);
			s->tcp_closed = h_ws_recv(w, 3000, &d, &n) == 0;
			free(d);
			return;
		}
		free(d); /* pings need no answer for streams this short */
	}
}

/* h_ws_connect through a front. A handshake that lighttpd could not pass on (gateway down) makes
 * its proxy disable that backend for a while: it answers 503 for 2 to 3 s even after the gateway
 * is back, so a 503 is retried for up to 6 s. */
static long long refused_ms; /* the longest such 503 spell */

static int ws_connect(struct h_ws *w, int port, const char *pq, char *body, size_t cap)
{
	long long t0 = h_now_ms();
	int status;
	while ((status = h_ws_connect(w, port, pq, NULL, body, cap)) == 503 && h_now_ms() - t0 < 6000) {
		h_ws_close(w);
		h_sleep_ms(50);
	}
	if (h_now_ms() - t0 > refused_ms && status != 503 && h_now_ms() - t0 > 100)
		refused_ms = h_now_ms() - t0;
	return status;
}

/* Prepares body on runner through front x, connects through front y, reads everything. */
static void run_across(const struct h_stack *x, const struct h_stack *y, const char *runner, const char *body,
                       struct seen *s)
{
	char pq[512];
	struct h_ws w;
	memset(s, 0, sizeof *s);
	assert_int_equal(execute(x, runner, body, NULL, pq, sizeof pq), 200);
	assert_int_equal(ws_connect(&w, y->port, pq, NULL, 0), 101);
	read_all(&w, s, TIMEOUT);
	h_ws_close(&w);
}

/* start, exit code, close 1000 and the TCP close after it: CodeOcean's NonInteractive check. */
static void assert_exit(const struct seen *s, int code)
{
	char want[64];
	snprintf(want, sizeof want, "{\"type\":\"exit\",\"data\":%d}", code);
	if (s->ncontrols != 2 || strcmp(s->controls[0], "{\"type\":\"start\"}") ||
	    strcmp(s->controls[1], want))
		fail_msg("controls %d: %s | %s; close %d, timed out %d; out %s", s->ncontrols, s->controls[0],
		         s->ncontrols > 1 ? s->controls[1] : "", s->close_code, s->timed_out, s->out);
	assert_int_equal(s->close_code, 1000);
	assert_true(s->tcp_closed);
}

/* ---- the shared state, seen from Redis and Nomad ---------------------------------------------- */

/* e.g. redis_int("LLEN", "pool"): the count of poseidon:<kind>:ENV */
static int redis_int(const char *verb, const char *kind)
{
	return atoi(h_redis_cli(&a.redis, "%s poseidon:%s:%d", verb, kind, ENV));
}

/* Runner jobs of ENV that nomad-local has not finished. */
static int live_runner_jobs(void)
{
	char url[256];
	struct h_resp r;
	snprintf(url, sizeof url, "%s/v1/jobs?prefix=%d-", a.nomad.url, ENV);
	assert_int_equal(h_http(&r, "GET", url, NULL, -1, h_nomad_headers(&a.nomad)), 0);
	assert_int_equal(r.status, 200);
	json_object *jobs = json_tokener_parse(r.body), *st;
	assert_non_null(jobs);
	int live = 0;
	for (size_t i = 0; i < json_object_array_length(jobs); i++)
		if (json_object_object_get_ex(json_object_array_get_idx(jobs, i), "Status", &st) &&
		    strcmp(json_object_get_string(st), "dead") != 0)
			live++;
	json_object_put(jobs);
	h_resp_free(&r);
	return live;
}

/* Waits until the pool of ENV is full, nothing starts, nothing is used and Nomad runs exactly the
 * pool: what the two fronts and the one refill daemon must come back to. Returns the ms it took. */
static long long wait_settled(int used)
{
	long long t0 = h_now_ms();
	for (;;) {
		int pool = redis_int("LLEN", "pool"), starting = redis_int("SCARD", "starting"),
		    in_use = redis_int("SCARD", "used");
		if (pool == POOL && !starting && in_use == used && live_runner_jobs() == POOL + used)
			return h_now_ms() - t0;
		if (h_now_ms() - t0 > 20000)
			fail_msg("not settled: pool %d, starting %d, used %d (want %d), Nomad %d jobs", pool,
			         starting, in_use, used, live_runner_jobs());
		h_sleep_ms(100);
	}
}

/* ---- setup ------------------------------------------------------------------------------------ */

static int setup(void **state)
{
	(void)state;
	struct h_front_opts o = {.workers = 2};
	if (h_redis_start(&a.redis) < 0 || h_stack_start_nomad(&a) < 0 || h_stack_start(&a, &o) < 0)
		return -1;
	/* front B: the same Redis and Nomad (h_stack_start starts no Redis when the port is set), its
	 * own lighttpd, workers, run directory and gateway port */
	b.redis = a.redis;
	b.nomad = a.nomad;
	if (h_stack_start(&b, &o) < 0 || h_stack_start_refill(&a, refill_env) < 0 ||
	    (gate_a = h_stack_start_wsgate(&a)) < 0 || (gate_b = h_stack_start_wsgate(&b)) < 0)
		return -1;
	if (a.port == b.port || a.wsgate_port == b.wsgate_port || !strcmp(a.rundir, b.rundir))
		return -1;
	char url[256];
	struct h_resp r;
	snprintf(url, sizeof url, "%s/execution-environments/%d", a.base, ENV);
	if (h_http(&r, "PUT", url,
	           "{\"prewarmingPoolSize\":4,\"cpuLimit\":50,\"memoryLimit\":256,\"image\":\"img\","
	           "\"networkAccess\":false,\"exposedPorts\":null}",
	           -1, NULL) < 0 ||
	    r.status != 201)
		return -1;
	h_resp_free(&r);
	h_wait_pool(&a.redis, ENV, POOL, 30000);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (gate_b > 0)
		h_stop(gate_b);
	if (gate_a > 0)
		h_stop(gate_a);
	if (b.lighttpd > 0)
		h_stop(b.lighttpd); /* not h_stack_stop(&b): Redis and Nomad are a's */
	h_stack_stop(&a);
	return h_sanitizer_reports(a.rundir) + h_sanitizer_reports(b.rundir) == 0 ? 0 : -1;
}

/* ---- tests ------------------------------------------------------------------------------------ */

static void test_environment_put_on_a_is_seen_on_b(void **state)
{
	(void)state;
	char path[64], out[4096];
	snprintf(path, sizeof path, "/execution-environments/%d", ENV_TMP);
	assert_int_equal(
	    api(&a, "PUT", path,
	        "{\"prewarmingPoolSize\":0,\"cpuLimit\":20,\"memoryLimit\":100,\"image\":\"img\","
	        "\"networkAccess\":false,\"exposedPorts\":null}",
	        NULL, 0),
	    201);
	assert_int_equal(api(&b, "GET", path, NULL, out, sizeof out), 200);
	assert_non_null(strstr(out, "\"cpuLimit\":20,"));
	assert_non_null(strstr(out, "\"id\":42"));
	assert_int_equal(api(&b, "GET", "/execution-environments", NULL, out, sizeof out), 200);
	assert_non_null(strstr(out, "\"id\":42"));
	assert_non_null(strstr(out, "\"id\":41"));
	/* an update through B is what A answers next; a delete through B is gone on A */
	assert_int_equal(
	    api(&b, "PUT", path,
	        "{\"prewarmingPoolSize\":0,\"cpuLimit\":30,\"memoryLimit\":100,\"image\":\"img\","
	        "\"networkAccess\":false,\"exposedPorts\":null}",
	        NULL, 0),
	    204);
	assert_int_equal(api(&a, "GET", path, NULL, out, sizeof out), 200);
	assert_non_null(strstr(out, "\"cpuLimit\":30,"));
	assert_int_equal(api(&b, "DELETE", path, NULL, NULL, 0), 204);
	assert_int_equal(api(&a, "GET", path, NULL, NULL, 0), 404);
	assert_int_equal(api(&a, "DELETE", path, NULL, NULL, 0), 404);
}

static void test_claims_alternating_between_fronts_are_distinct_and_the_pool_refills(void **state)
{
	(void)state;
	enum { N = 10 };
	char ids[N][128], path[256];
	const struct h_stack *front[2] = {&a, &b};
	wait_settled(0);
	long long t0 = h_now_ms();
	/* more claims than the pool holds: the later ones wait for the refill behind both fronts */
	for (int i = 0; i < N; i++) {
		claim(front[i % 2], ids[i], 60);
		for (int j = 0; j < i; j++)
			if (!strcmp(ids[i], ids[j]))
				fail_msg("runner %s handed out twice (claims %d and %d)", ids[i], j, i);
		assert_string_equal(h_redis_cli(&a.redis, "SISMEMBER poseidon:used:%d %s", ENV, ids[i]), "1");
	}
	/* each runner is known to the other front, and deleted through it */
	for (int i = 0; i < N; i++)
		assert_int_equal(runner_files(front[(i + 1) % 2], ids[i]), 200);
	for (int i = 0; i < N; i++) {
		snprintf(path, sizeof path, "/runners/%s", ids[i]);
		assert_int_equal(api(front[(i + 1) % 2], "DELETE", path, NULL, NULL, 0), 204);
	}
	wait_settled(0);
	printf(
	    "  %d claims alternating between the fronts, deletes through the other, pool of %d full again: "
	    "%.1f s\n",
	    N, POOL, (h_now_ms() - t0) / 1000.0);
}

static void test_execution_prepared_on_a_streams_through_b_once(void **state)
{
	(void)state;
	char id[128], pq[512], body[256];
	int port = 0;
	struct h_ws w;
	struct seen s;
	claim(&a, id, 60);
	memset(&s, 0, sizeof s);
	assert_int_equal(
	    execute(&a, id, "{\"command\":\"echo prepared on A; exit 0\"}", &port, pq, sizeof pq), 200);
	assert_int_equal(port, a.port); /* the URL names the front that was asked (its Host header) */
	assert_int_equal(h_ws_connect(&w, b.port, pq, NULL, NULL, 0), 101);
	read_all(&w, &s, TIMEOUT);
	h_ws_close(&w);
	assert_exit(&s, 0);
	assert_string_equal(s.out, "prepared on A\r\n");
	/* WS-24 across fronts: taken through B, unknown on A (and on B) */
	assert_int_equal(h_ws_connect(&w, a.port, pq, NULL, body, sizeof body), 404);
	assert_string_equal(body, "{\"message\":\"execution id unknown\"}");
	h_ws_close(&w);
	assert_int_equal(h_ws_connect(&w, b.port, pq, NULL, body, sizeof body), 404);
	h_ws_close(&w);
	/* and the other way round, with stderr */
	run_across(&b, &a, id, "{\"command\":\"echo out; echo err >&2; exit 3\"}", &s);
	assert_exit(&s, 3);
	assert_non_null(strstr(s.out, "out\r\n"));
	assert_non_null(strstr(s.out, "err\r\n"));
}

static void test_files_copied_through_a_are_read_through_b(void **state)
{
	(void)state;
	char id[128], path[512], out[4096];
	claim(&b, id, 60);
	snprintf(path, sizeof path, "/runners/%s/files", id);
	/* "written through A\n" */
	assert_int_equal(
	    api(&a, "PATCH", path,
	        "{\"copy\":[{\"path\":\"scaling/hello.txt\",\"content\":\"d3JpdHRlbiB0aHJvdWdoIEEK\"}]}",
	        NULL, 0),
	    204);
	snprintf(path, sizeof path, "/runners/%s/files/raw?path=scaling%%2Fhello.txt", id);
	assert_int_equal(api(&b, "GET", path, NULL, out, sizeof out), 200);
	assert_string_equal(out, "written through A\n");
	snprintf(path, sizeof path, "/runners/%s/files?path=scaling&recursive=true", id);
	assert_int_equal(api(&b, "GET", path, NULL, out, sizeof out), 200);
	assert_non_null(strstr(out, "hello.txt"));
	/* a deletion through B is what A reads next */
	snprintf(path, sizeof path, "/runners/%s/files", id);
	assert_int_equal(api(&b, "PATCH", path, "{\"delete\":[\"scaling/hello.txt\"]}", NULL, 0), 204);
	snprintf(path, sizeof path, "/runners/%s/files/raw?path=scaling%%2Fhello.txt", id);
	assert_int_not_equal(api(&a, "GET", path, NULL, NULL, 0), 200);
}

static void test_delete_through_b_of_a_runner_claimed_through_a(void **state)
{
	(void)state;
	char id[128], path[256], pq[512];
	claim(&a, id, 60);
	assert_int_equal(execute(&a, id, "{\"command\":\"true\"}", NULL, pq, sizeof pq), 200);
	snprintf(path, sizeof path, "/runners/%s", id);
	assert_int_equal(api(&b, "DELETE", path, NULL, NULL, 0), 204);
	assert_int_equal(execute(&a, id, "{\"command\":\"true\"}", NULL, pq, sizeof pq), 410);
	assert_int_equal(runner_files(&a, id), 410);
	assert_int_equal(api(&a, "DELETE", path, NULL, NULL, 0), 410);
	assert_string_equal(h_redis_cli(&a.redis, "EXISTS poseidon:runner:%s", id), "0");
}

/* Connects an execution of cmd on runner through front s and reads up to its first output. */
static void start_streaming(const struct h_stack *s, const char *runner, const char *cmd, struct h_ws *w,
                            struct seen *seen)
{
	char pq[512], body[256];
	memset(seen, 0, sizeof *seen);
	snprintf(body, sizeof body, "{\"command\":\"%s\"}", cmd);
	assert_int_equal(execute(s, runner, body, NULL, pq, sizeof pq), 200);
	assert_int_equal(ws_connect(w, s->port, pq, NULL, 0), 101);
	while (!seen->out[0]) {
		char *d;
		size_t n;
		int op = h_ws_recv(w, TIMEOUT, &d, &n);
		if (op == 1)
			take(seen, d);
		free(d);
		assert_true(op == 1 || op == 9);
	}
	assert_string_equal(seen->controls[0], "{\"type\":\"start\"}");
}

static void test_killing_gateway_b_leaves_executions_through_a_alone(void **state)
{
	(void)state;
	char ra[128], rb[128], pq[512];
	struct h_ws wa, wb;
	struct seen sa, sb;
	claim(&a, ra, 60);
	claim(&b, rb, 60);
	start_streaming(&a, ra, "echo go; sleep 1.5; echo done", &wa, &sa);
	start_streaming(&b, rb, "echo go; sleep 30", &wb, &sb);
	long long t0 = h_now_ms();
	h_kill(gate_b);
	gate_b = 0;
	/* B's client sees its connection end (lighttpd closes it when its backend goes) */
	read_all(&wb, &sb, 5000);
	h_ws_close(&wb);
	assert_false(sb.timed_out);
	long long killed_ms = h_now_ms() - t0;
	assert_true(killed_ms < 3000);
	/* A's stream goes on to its end */
	read_all(&wa, &sa, TIMEOUT);
	h_ws_close(&wa);
	assert_exit(&sa, 0);
	assert_string_equal(sa.out, "go\r\ndone\r\n");
	/* new executions through A work, on both runners; through B there is no gateway now */
	struct seen s;
	run_across(&a, &a, ra, "{\"command\":\"echo a\"}", &s);
	assert_exit(&s, 0);
	run_across(&a, &a, rb, "{\"command\":\"echo b\"}", &s);
	assert_exit(&s, 0);
	assert_string_equal(s.out, "b\r\n");
	assert_int_equal(execute(&b, rb, "{\"command\":\"true\"}", NULL, pq, sizeof pq), 200);
	assert_int_not_equal(h_ws_connect(&wb, b.port, pq, NULL, NULL, 0), 101);
	h_ws_close(&wb);
	/* B's gateway back on its port: B streams again, the execution prepared meanwhile too */
	gate_b = h_stack_start_wsgate(&b);
	assert_true(gate_b > 0);
	memset(&s, 0, sizeof s);
	assert_int_equal(ws_connect(&wb, b.port, pq, NULL, 0), 101);
	read_all(&wb, &s, TIMEOUT);
	h_ws_close(&wb);
	assert_exit(&s, 0);
	run_across(&b, &b, ra, "{\"command\":\"echo again\"}", &s);
	assert_exit(&s, 0);
	assert_string_equal(s.out, "again\r\n");
	printf(
	    "  B's client saw its end %lld ms after the SIGKILL; lighttpd B answered 503 for %lld ms after "
	    "the gateway was back\n",
	    killed_ms, refused_ms);
}

static void test_with_front_a_stopped_b_serves_everything(void **state)
{
	(void)state;
	char ra[128], id[128], path[512], out[4096];
	struct h_ws w;
	struct seen s, during;
	claim(&a, ra, 60);
	/* a stream through B that is running while A goes away */
	start_streaming(&b, ra, "echo go; sleep 1; echo done", &w, &during);
	assert_int_equal(WEXITSTATUS(h_stop(a.lighttpd)), 0); /* lighttpd and its workers */
	a.lighttpd = 0;
	h_stop(gate_a);
	gate_a = 0;
	struct h_resp r;
	char url[256];
	snprintf(url, sizeof url, "%s/health", a.base);
	assert_int_equal(h_http(&r, "GET", url, NULL, -1, NULL), -1); /* A is gone */
	h_resp_free(&r);
	read_all(&w, &during, TIMEOUT);
	h_ws_close(&w);
	assert_exit(&during, 0);
	assert_string_equal(during.out, "go\r\ndone\r\n");
	/* everything through B: health, environments, the runner A handed out, claims, files,
	 * executions, deletes, and the pool refills */
	assert_int_equal(api(&b, "GET", "/health", NULL, NULL, 0), 204);
	snprintf(path, sizeof path, "/execution-environments/%d", ENV);
	assert_int_equal(api(&b, "GET", path, NULL, NULL, 0), 200);
	run_across(&b, &b, ra, "{\"command\":\"echo still mine\"}", &s);
	assert_exit(&s, 0);
	assert_string_equal(s.out, "still mine\r\n");
	claim(&b, id, 60);
	snprintf(path, sizeof path, "/runners/%s/files", id);
	assert_int_equal(
	    api(&b, "PATCH", path, "{\"copy\":[{\"path\":\"f\",\"content\":\"Qgo=\"}]}", NULL, 0), 204);
	run_across(&b, &b, id, "{\"command\":\"cat f\"}", &s);
	assert_exit(&s, 0);
	assert_string_equal(s.out, "B\r\n");
	snprintf(path, sizeof path, "/runners/%s/files/raw?path=f", id);
	assert_int_equal(api(&b, "GET", path, NULL, out, sizeof out), 200);
	assert_string_equal(out, "B\n");
	snprintf(path, sizeof path, "/runners/%s", id);
	assert_int_equal(api(&b, "DELETE", path, NULL, NULL, 0), 204);
	snprintf(path, sizeof path, "/runners/%s", ra);
	assert_int_equal(api(&b, "DELETE", path, NULL, NULL, 0), 204);
	/* the runners the other tests left claimed are deleted as CodeOcean would */
	char used[8192];
	snprintf(used, sizeof used, "%s", h_redis_cli(&a.redis, "SMEMBERS poseidon:used:%d", ENV));
	for (char *tok = strtok(used, "\n"); tok; tok = strtok(NULL, "\n")) {
		snprintf(path, sizeof path, "/runners/%s", tok);
		assert_int_equal(api(&b, "DELETE", path, NULL, NULL, 0), 204);
	}
	wait_settled(0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_environment_put_on_a_is_seen_on_b),
	    cmocka_unit_test(test_claims_alternating_between_fronts_are_distinct_and_the_pool_refills),
	    cmocka_unit_test(test_execution_prepared_on_a_streams_through_b_once),
	    cmocka_unit_test(test_files_copied_through_a_are_read_through_b),
	    cmocka_unit_test(test_delete_through_b_of_a_runner_claimed_through_a),
	    cmocka_unit_test(test_killing_gateway_b_leaves_executions_through_a_alone),
	    cmocka_unit_test(test_with_front_a_stopped_b_serves_everything),
	};
	if (getenv("POSEIDON_TEST_FILTER"))
		cmocka_set_test_filter(getenv("POSEIDON_TEST_FILTER"));
	return cmocka_run_group_tests(tests, setup, teardown);
}
