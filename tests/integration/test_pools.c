/* Environments and pools against real Redis, nomad-local, lighttpd+workers and poseidon-refill
 * (issue 4; docs/api.md ENV-*, STA-*, RUN-1..4). Pools fill and stay full whatever happens:
 * replaced environments, runner processes killed behind Nomad's back, orphan and missing jobs,
 * two refill daemons, a Redis that lost everything, Nomad going away. */
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
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "jobspec.h"
#include "nomad.h"
#include "store.h"

static struct h_stack st;
static struct store *store;
static struct nomad *nomad;
static const char *refill_env[] = {"POSEIDON_RECONCILE_INTERVAL=2", "POSEIDON_REFILL_TICKMS=100", NULL};

static int setup(void **state)
{
	(void)state;
	struct config c;
	struct nomad_endpoint ep;
	if (h_redis_start(&st.redis) < 0 || h_stack_start_nomad(&st) < 0)
		return -1;
	struct h_front_opts o = {.workers = 4};
	if (h_stack_start(&st, &o) < 0 || h_stack_start_refill(&st, refill_env) < 0)
		return -1;
	h_stack_config(&st, &c);
	store = store_open(&c);
	nomad_endpoint_from_config(&ep, &c);
	nomad = nomad_open(&ep);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	store_close(store);
	nomad_close(nomad);
	h_stack_stop(&st);
	return h_sanitizer_reports(st.rundir) == 0 ? 0 : -1;
}

static long api(const char *method, const char *path, const char *body, char *out, size_t cap)
{
	return h_api(&st, method, path, body, out, cap);
}


/* Waits until LLEN pool:<env> == n and nothing is starting; returns ms waited or -1. */
static long long wait_pool(long long env, long long n, int timeout_ms)
{
	long long t0 = h_now_ms();
	while (h_now_ms() - t0 < timeout_ms) {
		if (h_redis_int(&st.redis, "LLEN poseidon:pool:%lld", env) == n && h_redis_int(&st.redis, "SCARD poseidon:starting:%lld", env) == 0)
			return h_now_ms() - t0;
		h_sleep_ms(100);
	}
	fprintf(stderr, "pool %lld: %lld idle, %lld starting, wanted %lld\n", env, h_redis_int(&st.redis, "LLEN poseidon:pool:%lld", env),
		h_redis_int(&st.redis, "SCARD poseidon:starting:%lld", env), n);
	return -1;
}

/* Runner jobs of env in Nomad that are not dead. */
static int nomad_runner_jobs(long long env, char ids[][MODEL_RUNNER_ID_MAX], int max)
{
	struct nomad_job_stub *stubs;
	size_t n;
	struct perr e;
	char prefix[32];
	snprintf(prefix, sizeof prefix, "%lld-", env);
	assert_int_equal(nomad_jobs_list(nomad, prefix, &stubs, &n, &e), 0);
	int k = 0;
	for (size_t i = 0; i < n; i++)
		if (strcmp(stubs[i].status, "dead") != 0 && k < max)
			snprintf(ids[k++], MODEL_RUNNER_ID_MAX, "%s", stubs[i].id);
	free(stubs);
	return k;
}

static void put_env(long long id, int pool, const char *extra, long expect)
{
	char path[64], body[512];
	snprintf(path, sizeof path, "/execution-environments/%lld", id);
	snprintf(body, sizeof body,
		 "{\"prewarmingPoolSize\":%d,\"cpuLimit\":20,\"memoryLimit\":100,\"image\":\"img\",\"networkAccess\":false,"
		 "\"exposedPorts\":null%s}",
		 pool, extra ? extra : "");
	assert_int_equal(api("PUT", path, body, NULL, 0), expect);
}

/* Every runner id in Redis is in exactly one structure and has a running job in Nomad. */
static void assert_consistent(long long env)
{
	char ids[64][MODEL_RUNNER_ID_MAX];
	int n = nomad_runner_jobs(env, ids, 64);
	struct runner *rs;
	size_t nr;
	struct perr e;
	assert_int_equal(store_env_runners(store, env, &rs, &nr, &e), 0);
	for (size_t i = 0; i < nr; i++) {
		int found = 0;
		for (int j = 0; j < n; j++)
			found |= strcmp(ids[j], rs[i].id) == 0;
		if (!found)
			fprintf(stderr, "runner %s is in Redis but not in Nomad\n", rs[i].id);
		assert_true(found);
		const char *lpos = h_redis_cli(&st.redis, "LPOS poseidon:pool:%lld %s", env, rs[i].id);
		int places = lpos[0] != '\0';
		places += (int)h_redis_int(&st.redis, "SISMEMBER poseidon:starting:%lld %s", env, rs[i].id);
		places += (int)h_redis_int(&st.redis, "SISMEMBER poseidon:used:%lld %s", env, rs[i].id);
		assert_int_equal(places, 1);
	}
	assert_int_equal((int)nr, n); /* and no job Redis does not know */
	free(rs);
}

static void test_environment_api_errors(void **state)
{
	(void)state;
	char body[1024];
	/* ENV-6, DIS-5: no environments is null */
	assert_int_equal(api("GET", "/execution-environments", NULL, body, sizeof body), 200);
	assert_string_equal(body, "{\"executionEnvironments\":null}");
	/* ENV-1 */
	assert_int_equal(api("PUT", "/execution-environments/42", "", body, sizeof body), 400);
	assert_non_null(strstr(body, "EOF"));
	/* GEN-4 */
	assert_int_equal(api("PUT", "/execution-environments/92233720368547758070", "{}", body, sizeof body), 400);
	assert_non_null(strstr(body, "could not update environment: strconv.Atoi: parsing \\\"92233720368547758070\\\": value out of range"));
	assert_int_equal(api("GET", "/execution-environments/92233720368547758070", NULL, body, sizeof body), 400);
	/* ENV-19 */
	assert_int_equal(api("PUT", "/execution-environments/42", "{\"cpuLimit\":-1}", body, sizeof body), 400);
	assert_int_equal(api("PUT", "/execution-environments/42", "{\"exposedPorts\":[70000]}", body, sizeof body), 400);
	assert_int_equal(api("PUT", "/execution-environments/42", "{\"memoryLimit\":2147483648}", body, sizeof body), 500);
	assert_non_null(strstr(body, "\"errorCode\":\"UNKNOWN\""));
	assert_non_null(strstr(body, "limit too high"));
	assert_int_equal(api("GET", "/execution-environments/42", NULL, NULL, 0), 404); /* nothing stored (DIS-9) */
	/* ENV-13, ENV-14, ENV-17 */
	assert_int_equal(api("GET", "/execution-environments/9999", NULL, body, sizeof body), 404);
	assert_string_equal(body, "");
	assert_int_equal(api("GET", "/execution-environments/9999?fetch=true", NULL, NULL, 0), 404);
	assert_int_equal(api("GET", "/execution-environments?fetch=YouDecide", NULL, body, sizeof body), 400);
	assert_non_null(strstr(body, "could not parse fetch parameter: strconv.ParseBool: parsing \\\"YouDecide\\\": invalid syntax"));
	assert_int_equal(api("GET", "/execution-environments/1?fetch=maybe", NULL, NULL, 0), 400);
	assert_int_equal(api("DELETE", "/execution-environments/9999", NULL, body, sizeof body), 404);
	assert_string_equal(body, "");
}

static void test_pool_fills_replace_and_delete(void **state)
{
	(void)state;
	char body[2048], old[64][MODEL_RUNNER_ID_MAX];
	put_env(5, 5, NULL, 201); /* ENV-2 */
	assert_true(wait_pool(5, 5, 20000) >= 0);
	assert_int_equal(api("GET", "/statistics/execution-environments", NULL, body, sizeof body), 200);
	assert_non_null(strstr(body, "\"5\":{\"id\":5,\"prewarmingPoolSize\":5,\"idleRunners\":5,\"usedRunners\":0}"));
	assert_int_equal(api("GET", "/execution-environments/5", NULL, body, sizeof body), 200); /* ENV-10/11 */
	assert_string_equal(body, "{\"prewarmingPoolSize\":5,\"cpuLimit\":20,\"memoryLimit\":100,\"image\":\"img\","
				  "\"networkAccess\":false,\"exposedPorts\":null,\"id\":5}");
	assert_consistent(5);
	int nold = nomad_runner_jobs(5, old, 64);
	assert_int_equal(nold, 5);

	/* ENV-3/21: a replace recreates every runner */
	put_env(5, 5, NULL, 204);
	long long t0 = h_now_ms();
	int gone = 0;
	while (h_now_ms() - t0 < 20000 && !gone) {
		char now[64][MODEL_RUNNER_ID_MAX];
		int n = nomad_runner_jobs(5, now, 64);
		gone = 1;
		for (int i = 0; i < n; i++)
			for (int j = 0; j < nold; j++)
				if (strcmp(now[i], old[j]) == 0)
					gone = 0;
		h_sleep_ms(100);
	}
	assert_true(gone);
	assert_true(wait_pool(5, 5, 20000) >= 0);
	assert_int_equal(h_redis_int(&st.redis, "HGET poseidon:env:5 generation"), 2);
	const char *first = h_redis_cli(&st.redis, "LINDEX poseidon:pool:5 0");
	assert_int_equal(h_redis_int(&st.redis, "HGET poseidon:runner:%s generation", first), 2);
	assert_consistent(5);

	/* RUN-1 + STA-3: a claim moves one runner to used and the pool refills */
	assert_int_equal(api("POST", "/runners", "{\"executionEnvironmentId\":5}", body, sizeof body), 200);
	assert_non_null(strstr(body, "\"mappedPorts\":[]"));
	assert_true(wait_pool(5, 5, 10000) >= 0);
	assert_int_equal(h_redis_int(&st.redis, "SCARD poseidon:used:5"), 1);
	assert_consistent(5);

	/* ENV-15/16: delete purges everything, idle and used */
	assert_int_equal(api("DELETE", "/execution-environments/5", NULL, NULL, 0), 204);
	char left[64][MODEL_RUNNER_ID_MAX];
	assert_int_equal(nomad_runner_jobs(5, left, 64), 0);
	json_object *job = NULL;
	struct perr e;
	assert_int_equal(nomad_job_read(nomad, "template-5", &job, &e), 0);
	assert_int_equal(api("POST", "/runners", "{\"executionEnvironmentId\":5}", NULL, 0), 404);
	assert_int_equal(api("GET", "/execution-environments/5", NULL, NULL, 0), 404);
	assert_int_equal(h_redis_int(&st.redis, "EXISTS poseidon:pool:5"), 0);
	h_sleep_ms(3000); /* a reconcile later, nothing came back */
	assert_int_equal(nomad_runner_jobs(5, left, 64), 0);
	assert_int_equal(api("GET", "/execution-environments/5", NULL, NULL, 0), 404);
}

static void test_network_environment_maps_ports(void **state)
{
	(void)state;
	char body[2048];
	put_env(6, 1, NULL, 201);
	/* ENV-4: network with two exposed ports */
	assert_int_equal(api("PUT", "/execution-environments/6",
			     "{\"prewarmingPoolSize\":1,\"cpuLimit\":20,\"memoryLimit\":100,\"image\":\"img\","
			     "\"networkAccess\":true,\"exposedPorts\":[42,1337]}",
			     NULL, 0),
			 204);
	assert_int_equal(api("GET", "/execution-environments/6", NULL, body, sizeof body), 200);
	assert_non_null(strstr(body, "\"networkAccess\":true,\"exposedPorts\":[42,1337]"));
	assert_true(wait_pool(6, 1, 20000) >= 0);
	h_sleep_ms(500); /* let the sweep of generation 1 pass */
	assert_true(wait_pool(6, 1, 20000) >= 0);
	assert_int_equal(api("POST", "/runners", "{\"executionEnvironmentId\":6}", body, sizeof body), 200);
	assert_non_null(strstr(body, "{\"exposedPort\":42,\"hostAddress\":\"127.0.0.1:"));
	assert_non_null(strstr(body, "{\"exposedPort\":1337,\"hostAddress\":\"127.0.0.1:"));
	/* ENV-5: off again */
	put_env(6, 1, NULL, 204);
	assert_int_equal(api("GET", "/execution-environments/6", NULL, body, sizeof body), 200);
	assert_non_null(strstr(body, "\"networkAccess\":false,\"exposedPorts\":null"));
	assert_int_equal(api("DELETE", "/execution-environments/6", NULL, NULL, 0), 204);
}

static void test_fetch_reads_environments_registered_in_nomad(void **state)
{
	(void)state;
	struct perr e;
	char body[4096];
	json_object *tmpl = jobspec_load(NULL, &e);
	struct jobspec_opts o = {0};
	snprintf(o.namespace, sizeof o.namespace, "default");
	snprintf(o.network_mode, sizeof o.network_mode, "bridge");
	struct environment env = {.id = 42, .prewarming_pool_size = 0, .cpu_limit = 30, .memory_limit = 60, .ports_null = 1};
	snprintf(env.image, sizeof env.image, "python:latest");
	json_object *job = jobspec_template_job(tmpl, &env, &o, &e);
	assert_int_equal(nomad_job_register(nomad, job, NULL, &e), 0); /* behind the service's back */
	json_object_put(job);
	json_object_put(tmpl);
	h_sleep_ms(100);
	/* ENV-9 / ENV-12 (with a refill daemon running, its reconcile may already have recovered
	 * it; either way ?fetch=true must have it) */
	assert_int_equal(api("GET", "/execution-environments?fetch=true", NULL, body, sizeof body), 200);
	assert_non_null(strstr(body, "\"image\":\"python:latest\",\"networkAccess\":false,\"exposedPorts\":null,\"id\":42"));
	assert_int_equal(api("GET", "/execution-environments/42", NULL, body, sizeof body), 200);
	assert_non_null(strstr(body, "\"cpuLimit\":30,\"memoryLimit\":60"));
	assert_int_equal(api("DELETE", "/execution-environments/42", NULL, NULL, 0), 204);
	assert_int_equal(api("GET", "/execution-environments/42?fetch=true", NULL, NULL, 0), 404);
}

/* Host pids of an allocation's sandbox, from its cgroup. */
static int alloc_pids(const char *alloc, pid_t *pids, int max)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "cat $(find /sys/fs/cgroup -type d -name '*%s*' 2>/dev/null | sed 's|$|/cgroup.procs|') 2>/dev/null | sort -u",
		 alloc);
	FILE *p = popen(cmd, "r");
	int n = 0, v;
	while (p && n < max && fscanf(p, "%d", &v) == 1)
		pids[n++] = v;
	if (p)
		pclose(p);
	return n;
}

static void test_runner_killed_behind_nomads_back_is_replaced(void **state)
{
	(void)state;
	put_env(7, 5, NULL, 201);
	assert_true(wait_pool(7, 5, 20000) >= 0);
	char victim[MODEL_RUNNER_ID_MAX], alloc[64];
	snprintf(victim, sizeof victim, "%s", h_redis_cli(&st.redis, "LINDEX poseidon:pool:7 2"));
	snprintf(alloc, sizeof alloc, "%s", h_redis_cli(&st.redis, "HGET poseidon:runner:%s allocId", victim));
	pid_t pids[64];
	int n = alloc_pids(alloc, pids, 64);
	if (n == 0) {
		fprintf(stderr, "no cgroup for allocation %s: cannot kill it from outside\n", alloc);
		fail();
	}
	for (int i = 0; i < n; i++)
		kill(pids[i], SIGKILL);
	long long t0 = h_now_ms();
	while (h_now_ms() - t0 < 20000 && h_redis_int(&st.redis, "EXISTS poseidon:runner:%s", victim))
		h_sleep_ms(100);
	assert_int_equal(h_redis_int(&st.redis, "EXISTS poseidon:runner:%s", victim), 0);
	assert_true(wait_pool(7, 5, 20000) >= 0);
	assert_string_equal(h_redis_cli(&st.redis, "LPOS poseidon:pool:7 %s", victim), "");
	h_sleep_ms(2500); /* a reconcile passes: the killed runner's job is gone too */
	assert_consistent(7);
}

static void test_reconcile_repairs_what_happened_while_refill_was_down(void **state)
{
	(void)state;
	struct perr e;
	put_env(8, 5, NULL, 201);
	assert_true(wait_pool(8, 5, 20000) >= 0);
	h_stop(st.refill);
	st.refill = 0;
	/* purge two runner jobs and add an orphan, behind everybody's back */
	char a[MODEL_RUNNER_ID_MAX], b[MODEL_RUNNER_ID_MAX];
	snprintf(a, sizeof a, "%s", h_redis_cli(&st.redis, "LINDEX poseidon:pool:8 0"));
	snprintf(b, sizeof b, "%s", h_redis_cli(&st.redis, "LINDEX poseidon:pool:8 1"));
	assert_int_equal(nomad_job_purge(nomad, a, &e), 0);
	assert_int_equal(nomad_job_purge(nomad, b, &e), 0);
	json_object *tmpl = jobspec_load(NULL, &e);
	struct jobspec_opts o = {0};
	snprintf(o.namespace, sizeof o.namespace, "default");
	struct environment env = {.id = 8, .cpu_limit = 20, .memory_limit = 100, .ports_null = 1};
	json_object *orphan = jobspec_runner_job(tmpl, &env, "8-00000000-0000-1000-8000-000000000000", 0, &o, &e);
	assert_int_equal(nomad_job_register(nomad, orphan, NULL, &e), 0);
	json_object_put(orphan);
	json_object_put(tmpl);
	h_stack_start_refill(&st, refill_env);
	long long t0 = h_now_ms();
	json_object *job = NULL;
	while (h_now_ms() - t0 < 20000 && nomad_job_read(nomad, "8-00000000-0000-1000-8000-000000000000", &job, &e) == 1) {
		json_object_put(job);
		h_sleep_ms(100);
	}
	assert_int_equal(nomad_job_read(nomad, "8-00000000-0000-1000-8000-000000000000", &job, &e), 0);
	assert_int_equal(h_redis_int(&st.redis, "EXISTS poseidon:runner:%s", a), 0);
	assert_int_equal(h_redis_int(&st.redis, "EXISTS poseidon:runner:%s", b), 0);
	assert_true(wait_pool(8, 5, 20000) >= 0);
	assert_consistent(8);
}

static void test_two_refill_daemons_never_overfill_and_take_over(void **state)
{
	(void)state;
	pid_t second = h_stack_start_refill(&st, refill_env);
	put_env(9, 4, NULL, 201);
	long long t0 = h_now_ms();
	int max = 0;
	char ids[64][MODEL_RUNNER_ID_MAX];
	while (h_now_ms() - t0 < 5000) {
		int n = nomad_runner_jobs(9, ids, 64);
		if (n > max)
			max = n;
		h_sleep_ms(50);
	}
	assert_true(max <= 4);
	assert_true(wait_pool(9, 4, 20000) >= 0);
	/* kill the leader (whoever it is: both, one at a time, the second survives) */
	h_kill(st.refill);
	st.refill = 0;
	assert_int_equal(api("POST", "/runners", "{\"executionEnvironmentId\":9}", NULL, 0), 200);
	t0 = h_now_ms();
	assert_true(wait_pool(9, 4, 15000) >= 0); /* the standby took over and refilled */
	assert_true(h_now_ms() - t0 < 15000);
	assert_int_equal(nomad_runner_jobs(9, ids, 64), 5);
	st.refill = second;
}

static void test_flushall_rebuilds_from_nomad(void **state)
{
	(void)state;
	char body[1024];
	/* with a network and an exposed port: adopted runners keep their port mappings */
	assert_int_equal(api("PUT", "/execution-environments/11",
			     "{\"prewarmingPoolSize\":3,\"cpuLimit\":20,\"memoryLimit\":100,\"image\":\"img\","
			     "\"networkAccess\":true,\"exposedPorts\":[42]}",
			     NULL, 0),
			 201);
	assert_true(wait_pool(11, 3, 20000) >= 0);
	assert_int_equal(api("POST", "/runners", "{\"executionEnvironmentId\":11,\"inactivityTimeout\":300}", body, sizeof body), 200);
	char used[MODEL_RUNNER_ID_MAX];
	assert_int_equal(sscanf(body, "{\"runnerId\":\"%127[^\"]", used), 1);
	assert_true(wait_pool(11, 3, 20000) >= 0);
	h_sleep_ms(500); /* the daemon marks the claim in Nomad's Meta */
	h_redis_cli(&st.redis, "FLUSHALL");
	long long t0 = h_now_ms();
	while (h_now_ms() - t0 < 20000 && h_redis_int(&st.redis, "LLEN poseidon:pool:11") != 3)
		h_sleep_ms(100);
	assert_int_equal(h_redis_int(&st.redis, "LLEN poseidon:pool:11"), 3);
	assert_int_equal(h_redis_int(&st.redis, "SISMEMBER poseidon:used:11 %s", used), 1); /* still with its user */
	assert_int_equal(api("GET", "/execution-environments/11", NULL, NULL, 0), 200);
	assert_true(h_redis_int(&st.redis, "ZSCORE poseidon:deadlines %s", used) > 0);
	assert_consistent(11);
	assert_int_equal(api("POST", "/runners", "{\"executionEnvironmentId\":11}", body, sizeof body), 200);
	if (!strstr(body, "{\"exposedPort\":42,\"hostAddress\":\"127.0.0.1:"))
		fail_msg("an adopted runner lost its port mapping: %s", body);
}

/* Nomad cannot place what the template asks for (a datacenter nomad-local does not have): the
 * PUT waits for the template's evaluation and fails with the reference's error, as soon as the
 * evaluation says so; the environment stays (as its job does), and poseidon-refill says why its
 * runners do not come, in its log and in a counter. */
static void test_unplaceable_environment_fails_its_put_and_says_why(void **state)
{
	(void)state;
	char tmpl[600], envv[700], cmd[1600], body[4096], logfile[600];
	snprintf(tmpl, sizeof tmpl, "%s/template-elsewhere.json", h_tmpdir());
	snprintf(cmd, sizeof cmd, "sed 's/\"dc1\"/\"elsewhere\"/' %s/deploy/template-job.json > %s && grep -q elsewhere %s",
		 h_src_dir(), tmpl, tmpl);
	assert_int_equal(system(cmd), 0);
	snprintf(envv, sizeof envv, "POSEIDON_SERVER_TEMPLATEJOBFILE=%s", tmpl);
	const char *fenv[] = {envv, NULL};
	const char *renv[] = {"POSEIDON_RECONCILE_INTERVAL=2", "POSEIDON_REFILL_TICKMS=100", envv, NULL};
	h_stop(st.lighttpd);
	st.lighttpd = 0;
	struct h_front_opts o = {.workers = 4, .env = fenv};
	assert_int_equal(h_stack_start(&st, &o), 0);
	h_stop(st.refill);
	st.refill = 0;
	h_stack_start_refill(&st, renv);
	snprintf(logfile, sizeof logfile, "%s/refill-%d.log", h_tmpdir(), st.redis.port);

	long long t0 = h_now_ms();
	long status = api("PUT", "/execution-environments/30",
			  "{\"prewarmingPoolSize\":1,\"cpuLimit\":20,\"memoryLimit\":100,\"image\":\"img\"}", body,
			  sizeof body);
	long long took = h_now_ms() - t0;
	printf("unplaceable PUT: %ld after %lld ms: %s\n", status, took, body);
	assert_int_equal(status, 500);
	assert_non_null(strstr(body, "\"errorCode\":\"UNKNOWN\""));
	assert_non_null(strstr(body, "error registering template job in API: error during the monitoring of the "
				     "environment job: evaluation \\\""));
	assert_non_null(strstr(body, "finished with status \\\"complete\\\" but failed to place all allocations"));
	assert_non_null(strstr(body, "\\ndefault-group: no node evaluated"));
	assert_non_null(strstr(body, "waiting for additional capacity to place remainder"));
	assert_true(took < 5000); /* the evaluation's answer, not the 10 s timeout */
	assert_int_equal(api("GET", "/execution-environments/30", NULL, NULL, 0), 200);

	/* the refill's runner cannot be placed either: its log says why */
	int said = 0;
	for (t0 = h_now_ms(); !said && h_now_ms() - t0 < 10000; h_sleep_ms(200)) {
		snprintf(cmd, sizeof cmd, "grep 'nomad cannot place a job of the environment' %s | grep -q 'failed to place'",
			 logfile);
		said = system(cmd) == 0;
	}
	assert_true(said);
	char url[256];
	struct h_resp r;
	double count = 0;
	snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", st.port);
	for (t0 = h_now_ms(); count < 1 && h_now_ms() - t0 < 10000; h_sleep_ms(200)) {
		assert_int_equal(h_http(&r, "GET", url, NULL, 0, NULL), 0);
		const char *at = strstr(r.body ? r.body : "", "poseidon_nomad_placement_failures_total{environment_id=\"30\"} ");
		count = at ? atof(at + strlen("poseidon_nomad_placement_failures_total{environment_id=\"30\"} ")) : 0;
		h_resp_free(&r);
	}
	assert_true(count >= 1);

	/* back to the template of every other test */
	assert_int_equal(api("DELETE", "/execution-environments/30", NULL, NULL, 0), 204);
	h_stop(st.lighttpd);
	st.lighttpd = 0;
	struct h_front_opts d = {.workers = 4};
	assert_int_equal(h_stack_start(&st, &d), 0);
	h_stop(st.refill);
	st.refill = 0;
	h_stack_start_refill(&st, refill_env);
}

static void test_nomad_down_is_reported_and_recovered(void **state)
{
	(void)state;
	char body[1024];
	put_env(12, 2, NULL, 201);
	assert_true(wait_pool(12, 2, 20000) >= 0);
	h_nomad_stop(&st.nomad);
	assert_int_equal(api("PUT", "/execution-environments/13", "{\"prewarmingPoolSize\":1}", body, sizeof body), 500);
	assert_non_null(strstr(body, "\"errorCode\":\"NOMAD_UNREACHABLE\""));
	long long t0 = h_now_ms();
	long status = 0;
	while (h_now_ms() - t0 < 10000 && (status = api("GET", "/health", NULL, body, sizeof body)) != 503)
		h_sleep_ms(200);
	assert_int_equal(status, 503);
	assert_non_null(strstr(body, "nomad unreachable"));
	assert_non_null(strstr(body, "\"errorCode\":\"NOMAD_UNREACHABLE\""));
	/* claims need no Nomad: they keep working */
	assert_int_equal(api("POST", "/runners", "{\"executionEnvironmentId\":12}", NULL, 0), 200);
	h_sleep_ms(10000 - (int)(h_now_ms() - t0) > 0 ? 10000 - (int)(h_now_ms() - t0) : 0);
	assert_int_equal(h_stack_start_nomad(&st), 0);
	t0 = h_now_ms();
	while (h_now_ms() - t0 < 20000 && api("GET", "/health", NULL, NULL, 0) != 204)
		h_sleep_ms(200);
	assert_int_equal(api("GET", "/health", NULL, NULL, 0), 204);
	assert_true(wait_pool(12, 2, 20000) >= 0);
	put_env(13, 1, NULL, 201);
	assert_true(wait_pool(13, 1, 20000) >= 0);
	assert_consistent(12);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_environment_api_errors),
		cmocka_unit_test(test_pool_fills_replace_and_delete),
		cmocka_unit_test(test_network_environment_maps_ports),
		cmocka_unit_test(test_fetch_reads_environments_registered_in_nomad),
		cmocka_unit_test(test_runner_killed_behind_nomads_back_is_replaced),
		cmocka_unit_test(test_reconcile_repairs_what_happened_while_refill_was_down),
		cmocka_unit_test(test_two_refill_daemons_never_overfill_and_take_over),
		cmocka_unit_test(test_flushall_rebuilds_from_nomad),
		cmocka_unit_test(test_unplaceable_environment_fails_its_put_and_says_why),
		cmocka_unit_test(test_nomad_down_is_reported_and_recovered),
	};
	if (getenv("POSEIDON_TEST_FILTER")) /* e.g. "*unplaceable*" */
		cmocka_set_test_filter(getenv("POSEIDON_TEST_FILTER"));
	return cmocka_run_group_tests(tests, setup, teardown);
}
