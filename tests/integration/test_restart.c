/* Restart safety (docs/api.md REC-1..6, issue 7): restarting the workers (and lighttpd), the
 * refill daemon, Redis (appendonly) or nomad-local loses no environment, no idle or used runner
 * and no deadline, and hands nothing out twice. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define ENV 0
static struct h_stack st;
static const char *refill_env[] = {"POSEIDON_RECONCILE_INTERVAL=2", "POSEIDON_REFILL_TICKMS=100", NULL};

static long call(const char *method, const char *path, const char *body, char *out, size_t cap)
{
	return h_api(&st, method, path, body, out, cap);
}

static int wait_pool(int n, int ms)
{
	for (long long t0 = h_now_ms(); h_now_ms() - t0 < ms; h_sleep_ms(100))
		if (atoi(h_redis_cli(&st.redis, "LLEN poseidon:pool:%d", ENV)) == n &&
		    atoi(h_redis_cli(&st.redis, "SCARD poseidon:starting:%d", ENV)) == 0)
			return 0;
	return -1;
}

static int setup(void **state)
{
	(void)state;
	struct h_front_opts o = {.workers = 2};
	if (h_redis_start(&st.redis) < 0 || h_stack_start_nomad(&st) < 0 || h_stack_start(&st, &o) < 0 ||
	    h_stack_start_refill(&st, refill_env) < 0)
		return -1;
	/* the recovery suite's environment: pool 2 */
	if (call("PUT", "/execution-environments/0",
		 "{\"prewarmingPoolSize\":2,\"cpuLimit\":20,\"memoryLimit\":100,\"image\":\"img\",\"networkAccess\":false,"
		 "\"exposedPorts\":null}",
		 NULL, 0) != 201)
		return -1;
	return wait_pool(2, 20000);
}

static int teardown(void **state)
{
	(void)state;
	h_stack_stop(&st);
	return 0;
}

static void claim(char id[128], int timeout)
{
	char body[256], req[128];
	snprintf(req, sizeof req, "{\"executionEnvironmentId\":%d,\"inactivityTimeout\":%d}", ENV, timeout);
	assert_int_equal(call("POST", "/runners", req, body, sizeof body), 200);
	assert_int_equal(sscanf(body, "{\"runnerId\":\"%127[^\"]\"", id), 1);
}

/* The state an operator would compare before and after a restart. */
struct snapshot {
	char pool[1024], used[1024], deadline[64], envs[256];
};

static void snap(struct snapshot *s, const char *runner)
{
	snprintf(s->pool, sizeof s->pool, "%s", h_redis_cli(&st.redis, "LRANGE poseidon:pool:%d 0 -1", ENV));
	snprintf(s->used, sizeof s->used, "%s", h_redis_cli(&st.redis, "SORT poseidon:used:%d ALPHA", ENV));
	snprintf(s->deadline, sizeof s->deadline, "%s", h_redis_cli(&st.redis, "ZSCORE poseidon:deadlines %s", runner));
	snprintf(s->envs, sizeof s->envs, "%s", h_redis_cli(&st.redis, "HGETALL poseidon:env:%d", ENV));
}

static void assert_same(const struct snapshot *a, const struct snapshot *b)
{
	assert_string_equal(a->pool, b->pool);
	assert_string_equal(a->used, b->used);
	assert_string_equal(a->deadline, b->deadline); /* absolute: not moved by a restart */
	assert_string_equal(a->envs, b->envs);
}

static void assert_usable(const char *runner)
{
	char path[256];
	snprintf(path, sizeof path, "/runners/%s/execute", runner);
	assert_int_equal(call("POST", path, "{\"command\":\"true\"}", NULL, 0), 200); /* REC-1 */
	snprintf(path, sizeof path, "/runners/%s/files", runner);
	assert_int_equal(call("GET", path, NULL, NULL, 0), 200);
}

static void test_workers_and_lighttpd_restart(void **state)
{
	(void)state;
	char id[128];
	struct snapshot a, b;
	claim(id, 300);
	assert_int_equal(wait_pool(2, 10000), 0);
	snap(&a, id);
	h_stop(st.lighttpd);
	st.lighttpd = 0;
	struct h_front_opts o = {.workers = 2};
	int redis_port = st.redis.port;
	assert_int_equal(h_stack_start(&st, &o), 0); /* same Redis (port set), new front */
	assert_int_equal(st.redis.port, redis_port);
	snap(&b, id);
	assert_same(&a, &b);
	assert_usable(id);
	/* STA-2: used runner still counted, pool full */
	char stats[512];
	assert_int_equal(call("GET", "/statistics/execution-environments", NULL, stats, sizeof stats), 200);
	assert_non_null(strstr(stats, "\"0\":{\"id\":0,\"prewarmingPoolSize\":2,\"idleRunners\":2,\"usedRunners\":1}"));
}

static void test_refill_restart(void **state)
{
	(void)state;
	char id[128];
	struct snapshot a, b;
	claim(id, 300);
	assert_int_equal(wait_pool(2, 10000), 0);
	snap(&a, id);
	h_stop(st.refill);
	st.refill = 0;
	h_stack_start_refill(&st, refill_env);
	h_sleep_ms(3000); /* it leads and reconciles */
	snap(&b, id);
	assert_same(&a, &b);
	assert_usable(id);
}

static void test_redis_restart_keeps_everything(void **state)
{
	(void)state;
	char id[128];
	struct snapshot a, b;
	claim(id, 300);
	assert_int_equal(wait_pool(2, 10000), 0);
	snap(&a, id);
	assert_int_equal(h_redis_restart(&st.redis), 0); /* appendonly */
	snap(&b, id);
	assert_same(&a, &b);
	assert_int_equal(call("GET", "/health", NULL, NULL, 0), 204); /* HLT-4 */
	assert_usable(id); /* an activity: the deadline moves, so take the picture again */
	snap(&a, id);
	h_sleep_ms(3000); /* the refill daemon reconnects and finds nothing to repair */
	snap(&b, id);
	assert_same(&a, &b);
}

static void test_nomad_restart_keeps_runners(void **state)
{
	(void)state;
	char id[128];
	struct snapshot a, b;
	claim(id, 300);
	assert_int_equal(wait_pool(2, 10000), 0);
	snap(&a, id);
	assert_int_equal(h_nomad_stop(&st.nomad) >= 0, 1);
	h_sleep_ms(500);
	assert_int_equal(h_stack_start_nomad(&st), 0);
	h_sleep_ms(4000); /* event stream reconnects, a reconcile runs */
	snap(&b, id);
	assert_same(&a, &b); /* the sandboxes outlived the agent and were adopted again */
	assert_usable(id);
}

static void test_inactivity_deadline_survives_restarts(void **state)
{
	(void)state;
	/* REC-2's spirit with absolute deadlines: a runner claimed with 2 s expires 2 s after its
	 * last activity whatever restarts in between (docs/architecture.md) */
	char id[128], path[256];
	claim(id, 2);
	h_stop(st.lighttpd);
	st.lighttpd = 0;
	struct h_front_opts o = {.workers = 2};
	assert_int_equal(h_stack_start(&st, &o), 0);
	snprintf(path, sizeof path, "/runners/%s/execute", id);
	assert_int_equal(call("POST", path, "{\"command\":\"true\"}", NULL, 0), 200);
	h_sleep_ms(2200);
	assert_int_equal(call("POST", path, "{\"command\":\"true\"}", NULL, 0), 410);
}

/* What a PATCH of one file of size bytes answers, sent from a thread while the test signals. */
struct upload {
	char path[256];
	char *body;
	long status;
	atomic_int done;
};

static void *do_upload(void *arg)
{
	struct upload *u = arg;
	u->status = call("PATCH", u->path, u->body, NULL, 0);
	u->done = 1;
	return NULL;
}

/* Graceful shutdown: SIGTERM to every API worker while they copy a large file finishes that
 * request (then they exit and lighttpd starts new ones). */
static void test_sigterm_finishes_in_flight_requests(void **state)
{
	(void)state;
	char id[128];
	claim(id, 300);
	struct upload u = {0};
	snprintf(u.path, sizeof u.path, "/runners/%s/files", id);
	/* 12 MiB of base64 content: long enough to be in flight in a worker when the signal comes */
	size_t n = 12u << 20;
	u.body = malloc(n + 128);
	assert_non_null(u.body);
	int off = snprintf(u.body, 128, "{\"copy\":[{\"path\":\"big\",\"content\":\"");
	for (size_t i = 0; i < n; i++)
		u.body[off + i] = "QUJD"[i % 4];
	snprintf(u.body + off + n, 128 - (size_t)off, "\"}],\"delete\":[]}");
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, do_upload, &u), 0);
	/* the workers: poseidon-api processes whose parent is this stack's lighttpd */
	int signalled = 0;
	for (long long t0 = h_now_ms(); !signalled && h_now_ms() - t0 < 5000; h_sleep_ms(20)) {
		char cmd[128];
		snprintf(cmd, sizeof cmd, "pgrep -P %d -f poseidon-api | tr '\\n' ' '", (int)st.lighttpd);
		FILE *f = popen(cmd, "r");
		char pids[512] = "";
		if (f) {
			if (!fgets(pids, sizeof pids, f))
				pids[0] = 0;
			pclose(f);
		}
		/* wait until a worker is busy with the body (its CPU time grows), then signal them all */
		if (h_now_ms() - t0 < 150 || !pids[0])
			continue;
		/* the copy must still be in flight when the signal comes, or this proves nothing */
		assert_false(u.done);
		for (char *p = strtok(pids, " "); p; p = strtok(NULL, " "))
			signalled += kill(atoi(p), SIGTERM) == 0;
	}
	assert_true(signalled > 0);
	long long sent = h_now_ms();
	pthread_join(t, NULL);
	fprintf(stderr, "sigterm: the upload was answered %ld, %lld ms after the signal\n", u.status, h_now_ms() - sent);
	free(u.body);
	assert_int_equal(u.status, 204);
	/* the file arrived whole (asked of Nomad: the workers are gone until lighttpd starts others) */
	struct h_exec x;
	char alloc[64];
	snprintf(alloc, sizeof alloc, "%s", h_redis_cli(&st.redis, "HGET poseidon:runner:%s allocId", id));
	assert_int_equal(h_nomad_exec(&st.nomad, alloc, "[\"stat\",\"-c\",\"%s\",\"/workspace/big\"]", 0, NULL, 0, &x), 0);
	assert_int_equal(x.exit_code, 0);
	assert_non_null(x.out);
	assert_int_equal(atol(x.out), (long)(n / 4 * 3));
	h_exec_free(&x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_workers_and_lighttpd_restart),
		cmocka_unit_test(test_refill_restart),
		cmocka_unit_test(test_redis_restart_keeps_everything),
		cmocka_unit_test(test_nomad_restart_keeps_runners),
		cmocka_unit_test(test_inactivity_deadline_survives_restarts),
		cmocka_unit_test(test_sigterm_finishes_in_flight_requests),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
