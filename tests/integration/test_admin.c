/* poseidon-admin against the real stack: Redis, nomad-local, lighttpd+workers and poseidon-refill
 * (docs/operations.md). Every command is run as an operator would run it (the built binary, with
 * POSEIDON_* variables) and its effect is checked in Redis, in Nomad and through the API. The last
 * test checks that poseidon-refill speaks systemd's notify protocol to a socket made here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "jobspec.h"
#include "nomad.h"
#include "store.h"

static struct h_stack st;
static struct store *store;
static struct nomad *nomad;
/* a long reconcile interval: a reconcile seen in these tests is one the admin asked for; sanitizer
 * reports of the daemons land in the stack's run directory (checked at teardown) */
static char asan_env[700], ubsan_env[700];
static const char *refill_env[] = {"POSEIDON_RECONCILE_INTERVAL=3600", "POSEIDON_REFILL_TICKMS=100", asan_env,
                                   ubsan_env, NULL};
static char out[65536];

static int setup(void **state)
{
	(void)state;
	struct config c;
	struct nomad_endpoint ep;
	if (h_redis_start(&st.redis) < 0 || h_stack_start_nomad(&st) < 0)
		return -1;
	struct h_front_opts o = {.workers = 2};
	if (h_stack_start(&st, &o) < 0)
		return -1;
	snprintf(asan_env, sizeof asan_env, "ASAN_OPTIONS=log_path=%s/sanitizer:detect_leaks=1", st.rundir);
	snprintf(ubsan_env, sizeof ubsan_env, "UBSAN_OPTIONS=log_path=%s/sanitizer:print_stacktrace=1",
	         st.rundir);
	if (h_stack_start_refill(&st, refill_env) < 0)
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

/* Runs poseidon-admin with args (and extra "K=V " assignments in pre), stdout into out, stderr
 * appended to <tmpdir>/admin.log. Returns its exit status. */
static int admin_env(const char *pre, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int admin_env(const char *pre, const char *fmt, ...)
{
	char args[1024], cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof args, fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof cmd,
	         "env POSEIDON_CONFIG= POSEIDON_REDIS_ADDRESS=127.0.0.1 POSEIDON_REDIS_PORT=%d "
	         "POSEIDON_NOMAD_ADDRESS=127.0.0.1 POSEIDON_NOMAD_PORT=%d "
	         "ASAN_OPTIONS=log_path=%s/sanitizer:detect_leaks=1 "
	         "UBSAN_OPTIONS=log_path=%s/sanitizer:print_stacktrace=1 "
	         "%s %s/poseidon-admin %s 2>>%s/admin.log",
	         st.redis.port, st.nomad.port, st.rundir, st.rundir, pre ? pre : "", h_bin_dir(), args,
	         h_tmpdir());
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t n = fread(out, 1, sizeof out - 1, p);
	out[n] = '\0';
	int status = pclose(p);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
#define admin(...) admin_env(NULL, __VA_ARGS__)

static long api(const char *method, const char *path, const char *body, char *resp, size_t cap)
{
	return h_api(&st, method, path, body, resp, cap);
}


static void put_env(long long id, int pool)
{
	char path[64], body[512];
	snprintf(path, sizeof path, "/execution-environments/%lld", id);
	snprintf(body, sizeof body,
	         "{\"prewarmingPoolSize\":%d,\"cpuLimit\":20,\"memoryLimit\":100,\"image\":\"img\","
	         "\"networkAccess\":false,"
	         "\"exposedPorts\":null}",
	         pool);
	long s = api("PUT", path, body, NULL, 0);
	assert_true(s == 201 || s == 204);
}

static int wait_pool(long long env, long long idle, int timeout_ms)
{
	for (long long t0 = h_now_ms(); h_now_ms() - t0 < timeout_ms; h_sleep_ms(100))
		if (h_redis_int(&st.redis, "LLEN poseidon:pool:%lld", env) == idle &&
		    h_redis_int(&st.redis, "SCARD poseidon:starting:%lld", env) == 0)
			return 0;
	fprintf(stderr, "pool %lld: %lld idle, %lld starting, wanted %lld\n", env,
	        h_redis_int(&st.redis, "LLEN poseidon:pool:%lld", env), h_redis_int(&st.redis, "SCARD poseidon:starting:%lld", env),
	        idle);
	return -1;
}

/* Claims a runner of env through the API; its id into id. */
static void claim(long long env, int timeout_s, char id[MODEL_RUNNER_ID_MAX])
{
	char body[128], resp[1024];
	snprintf(body, sizeof body, "{\"executionEnvironmentId\":%lld,\"inactivityTimeout\":%d}", env,
	         timeout_s);
	assert_int_equal(api("POST", "/runners", body, resp, sizeof resp), 200);
	const char *p = strstr(resp, "\"runnerId\":\"");
	assert_non_null(p);
	p += strlen("\"runnerId\":\"");
	size_t n = strcspn(p, "\"");
	assert_true(n > 0 && n < MODEL_RUNNER_ID_MAX);
	snprintf(id, MODEL_RUNNER_ID_MAX, "%.*s", (int)n, p);
}

/* Runner jobs of env in Nomad that are not dead. */
static int live_jobs(long long env)
{
	struct nomad_job_stub *stubs;
	size_t n;
	struct perr e;
	char prefix[32];
	snprintf(prefix, sizeof prefix, "%lld-", env);
	assert_int_equal(nomad_jobs_list(nomad, prefix, &stubs, &n, &e), 0);
	int k = 0;
	for (size_t i = 0; i < n; i++)
		k += strcmp(stubs[i].status, "dead") != 0;
	free(stubs);
	return k;
}

static int job_alive(const char *id)
{
	struct nomad_job_stub *stubs;
	size_t n;
	struct perr e;
	assert_int_equal(nomad_jobs_list(nomad, id, &stubs, &n, &e), 0);
	int alive = 0;
	for (size_t i = 0; i < n; i++)
		alive |= strcmp(stubs[i].id, id) == 0 && strcmp(stubs[i].status, "dead") != 0;
	free(stubs);
	return alive;
}

/* A runner job registered in Nomad behind Redis's back: what a crashed old service leaves. */
static void register_orphan(long long env, char id[MODEL_RUNNER_ID_MAX])
{
	struct perr e;
	struct environment en;
	struct jobspec_opts o = {.namespace = "default"};
	assert_int_equal(store_env_get(store, env, &en, NULL, &e), 1);
	json_object *tmpl = jobspec_load(NULL, &e);
	assert_non_null(tmpl);
	nomad_new_runner_id(env, id, MODEL_RUNNER_ID_MAX);
	json_object *job = jobspec_runner_job(tmpl, &en, id, 0, &o, &e);
	assert_non_null(job);
	assert_int_equal(nomad_job_register(nomad, job, NULL, &e), 0);
	json_object_put(job);
	json_object_put(tmpl);
	assert_true(job_alive(id));
}

/* The line of out that starts with word (followed by a space), or NULL. */
static const char *line_of(const char *word)
{
	size_t n = strlen(word);
	for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (strncmp(l, word, n) == 0 && l[n] == ' ')
			return l;
	return NULL;
}

static void test_usage_errors_exit_2(void **state)
{
	(void)state;
	assert_int_equal(admin("%s", ""), 2);
	assert_int_equal(admin("frobnicate"), 2);
	assert_int_equal(admin("runners"), 2);
	assert_int_equal(admin("runners eleven"), 2);
	assert_int_equal(admin("destroy template-3"), 2); /* an environment, not a runner */
	assert_int_equal(admin("resize 3 -1"), 2);
	assert_int_equal(admin_env("POSEIDON_REDIS_PORT=x", "pools"), 2); /* configuration error */
	assert_int_equal(admin("-h"), 0);
	/* Redis down is a failure, not a crash */
	assert_int_equal(admin_env("POSEIDON_REDIS_PORT=1", "pools"), 1);
}

static void test_pools_lists_every_environment_and_the_leader(void **state)
{
	(void)state;
	put_env(11, 3);
	put_env(12, 2);
	assert_int_equal(wait_pool(11, 3, 20000), 0);
	assert_int_equal(wait_pool(12, 2, 20000), 0);
	assert_int_equal(admin("pools"), 0);
	assert_non_null(strstr(out, "ENV"));
	long long id, size, idle, starting, used;
	const char *l = line_of("11");
	assert_non_null(l);
	assert_int_equal(sscanf(l, "%lld %lld %lld %lld %lld", &id, &size, &idle, &starting, &used), 5);
	assert_true(id == 11 && size == 3 && idle == 3 && starting == 0 && used == 0);
	l = line_of("12");
	assert_non_null(l);
	assert_int_equal(sscanf(l, "%lld %lld %lld %lld %lld", &id, &size, &idle, &starting, &used), 5);
	assert_true(id == 12 && size == 2 && idle == 2);
	/* the leader is named as the lease has it */
	char want[300];
	snprintf(want, sizeof want, "refill leader: %s\n",
	         h_redis_cli(&st.redis, "GET poseidon:lease:refill"));
	assert_non_null(strstr(out, want));
}

static void test_runners_shows_state_allocation_and_deadline(void **state)
{
	(void)state;
	char id[MODEL_RUNNER_ID_MAX];
	claim(11, 600, id);
	assert_int_equal(wait_pool(11, 3, 20000), 0); /* refilled */
	assert_int_equal(admin("runners 11"), 0);
	int lines = 0;
	for (const char *l = out; *l; l++)
		lines += *l == '\n';
	assert_int_equal(lines, 1 + 4); /* header, 3 idle, 1 used */
	const char *l = line_of(id);
	assert_non_null(l);
	char rid[128], st_[16], alloc[64];
	assert_int_equal(sscanf(l, "%127s %15s %63s", rid, st_, alloc), 3);
	assert_string_equal(st_, "used");
	assert_string_equal(alloc, h_redis_cli(&st.redis, "HGET poseidon:runner:%s allocId", id));
	const char *in = strstr(l, "(in ");
	assert_non_null(in);
	int secs = atoi(in + 4);
	assert_in_range(secs, 590, 600);
	/* idle runners have no deadline */
	int idle = 0;
	for (const char *p = out; (p = strstr(p, " idle ")); p++) {
		const char *eol = strchr(p, '\n');
		assert_true(eol && eol[-1] == '-');
		idle++;
	}
	assert_int_equal(idle, 3);
	assert_int_equal(admin("runners 999"), 1); /* unknown environment */
}

static void test_destroy_removes_the_runner_and_its_job(void **state)
{
	(void)state;
	char id[MODEL_RUNNER_ID_MAX], path[160], orphan[MODEL_RUNNER_ID_MAX];
	claim(12, 0, id);
	assert_true(job_alive(id));
	assert_int_equal(admin("destroy %s", id), 0);
	assert_non_null(strstr(out, "removed from Redis; Nomad job purged"));
	assert_non_null(strstr(out, "environment 12, used"));
	assert_int_equal(h_redis_int(&st.redis, "EXISTS poseidon:runner:%s", id), 0);
	assert_int_equal(h_redis_int(&st.redis, "SISMEMBER poseidon:used:12 %s", id), 0);
	assert_false(job_alive(id));
	snprintf(path, sizeof path, "/runners/%s/execute", id);
	assert_int_equal(api("POST", path, "{\"command\":\"true\"}", NULL, 0),
	                 410); /* its user sees it gone */
	/* again: nothing in Redis, and purging a job that is gone is fine */
	assert_int_equal(admin("destroy %s", id), 0);
	assert_non_null(strstr(out, "was not in Redis"));
	/* a job Redis never knew (an orphan) is purged all the same */
	register_orphan(12, orphan);
	assert_int_equal(admin("destroy %s", orphan), 0);
	assert_false(job_alive(orphan));
	/* the pool is whole again */
	assert_int_equal(wait_pool(12, 2, 20000), 0);
}

static void test_drain_stops_the_refill_and_keeps_used_runners(void **state)
{
	(void)state;
	char used[MODEL_RUNNER_ID_MAX], path[160], body[4096];
	struct perr e;
	struct environment env;
	long long gen_before, gen_after;
	assert_int_equal(wait_pool(11, 3, 20000), 0);
	assert_int_equal(store_env_get(store, 11, &env, &gen_before, &e), 1);
	claim(11, 600, used); /* a second used runner of env 11 */
	assert_int_equal(admin("drain 11"), 0);
	assert_non_null(strstr(out, "environment 11 drained: pool size 3 -> 0"));
	assert_non_null(strstr(out, "2 used runners stay with their users"));
	/* at once: nothing idle, nothing starting; the used ones are untouched */
	assert_int_equal(h_redis_int(&st.redis, "LLEN poseidon:pool:11"), 0);
	assert_int_equal(h_redis_int(&st.redis, "SCARD poseidon:starting:11"), 0);
	assert_int_equal(h_redis_int(&st.redis, "SCARD poseidon:used:11"), 2);
	assert_int_equal(store_env_get(store, 11, &env, &gen_after, &e), 1);
	assert_int_equal(env.prewarming_pool_size, 0);
	assert_int_equal(gen_after, gen_before); /* no new generation: used runners are not replaced */
	/* the template job in Nomad says 0 as well (recovery and ?fetch=true read it from there) */
	json_object *job = NULL;
	struct environment from_nomad;
	assert_int_equal(nomad_job_read(nomad, "template-11", &job, &e), 1);
	assert_int_equal(jobspec_environment_from_job(job, &from_nomad, &e), 0);
	json_object_put(job);
	assert_int_equal(from_nomad.prewarming_pool_size, 0);
	/* and poseidon-refill leaves it so: several passes later, still nothing new */
	h_sleep_ms(1500);
	assert_int_equal(h_redis_int(&st.redis, "LLEN poseidon:pool:11"), 0);
	assert_int_equal(h_redis_int(&st.redis, "SCARD poseidon:starting:11"), 0);
	assert_int_equal(live_jobs(11), 2);
	assert_int_equal(api("GET", "/statistics/execution-environments", NULL, body, sizeof body), 200);
	assert_non_null(
	    strstr(body, "\"11\":{\"id\":11,\"prewarmingPoolSize\":0,\"idleRunners\":0,\"usedRunners\":2}"));
	assert_int_equal(api("GET", "/execution-environments/11?fetch=true", NULL, body, sizeof body), 200);
	assert_non_null(strstr(body, "\"prewarmingPoolSize\":0"));
	/* the used runner still serves its user */
	snprintf(path, sizeof path, "/runners/%s/execute", used);
	assert_int_equal(api("POST", path, "{\"command\":\"true\"}", NULL, 0), 200);
	/* a claim now finds the pool empty, as the reference answers it */
	assert_int_equal(api("POST", "/runners", "{\"executionEnvironmentId\":11}", body, sizeof body), 500);
	assert_non_null(strstr(body, "NOMAD_OVERLOAD"));

	/* resize brings it back without replacing the used runners */
	assert_int_equal(admin("resize 11 2"), 0);
	assert_non_null(strstr(out, "pool size 0 -> 2"));
	assert_int_equal(wait_pool(11, 2, 20000), 0);
	assert_int_equal(h_redis_int(&st.redis, "SISMEMBER poseidon:used:11 %s", used), 1);
	assert_int_equal(store_env_get(store, 11, &env, &gen_after, &e), 1);
	assert_int_equal(gen_after, gen_before);
	assert_int_equal(admin("drain 4242"), 1); /* unknown environment */
}

static void test_reconcile_through_the_leader(void **state)
{
	(void)state;
	char orphan[MODEL_RUNNER_ID_MAX];
	register_orphan(12, orphan);
	h_sleep_ms(500); /* the event stream saw it, and left it: only a reconcile purges orphans */
	assert_true(job_alive(orphan));
	assert_int_equal(admin("reconcile"), 0);
	assert_non_null(strstr(out, "reconciled by the refill leader"));
	assert_non_null(strstr(out, ": ok"));
	assert_false(job_alive(orphan));                             /* purged before the leader answered */
	assert_int_equal(h_redis_int(&st.redis, "EXISTS poseidon:reconcile"), 0); /* the request was taken */
}

static void test_reconcile_waits_for_a_silent_leader_and_gives_up(void **state)
{
	(void)state;
	/* stop the real leader, pretend another holds the lease but never answers */
	assert_int_equal(h_stop(st.refill), 0);
	st.refill = 0;
	assert_string_equal(h_redis_cli(&st.redis, "GET poseidon:lease:refill"),
	                    ""); /* released on SIGTERM */
	assert_string_equal(h_redis_cli(&st.redis, "SET poseidon:lease:refill someone-else PX 30000"), "OK");
	long long t0 = h_now_ms();
	assert_int_equal(admin("reconcile -wait 1"), 1);
	assert_true(h_now_ms() - t0 >= 1000);
	assert_int_equal(h_redis_int(&st.redis, "PTTL poseidon:reconcile") > 0, 1); /* the request expires by itself */
	h_redis_cli(&st.redis, "DEL poseidon:lease:refill poseidon:reconcile");
}

static void test_reconcile_without_a_leader_runs_here(void **state)
{
	(void)state;
	char orphan[MODEL_RUNNER_ID_MAX];
	register_orphan(12, orphan);
	assert_string_equal(h_redis_cli(&st.redis, "GET poseidon:lease:refill"), "");
	assert_int_equal(admin("pools"), 0);
	assert_non_null(strstr(out, "refill leader: none"));
	assert_int_equal(admin("reconcile"), 0);
	assert_non_null(strstr(out, "reconciled here"));
	assert_non_null(strstr(out, "1 orphan jobs purged"));
	assert_false(job_alive(orphan));
	assert_string_equal(h_redis_cli(&st.redis, "GET poseidon:lease:refill"), ""); /* given back */
}

static void test_config_prints_effective_values_with_secrets_redacted(void **state)
{
	(void)state;
	char file[512], pre[700], cmd[2048];
	snprintf(file, sizeof file, "%s/admin-config.yaml", h_tmpdir());
	FILE *f = fopen(file, "w");
	assert_non_null(f);
	fprintf(f, "server:\n  token: from-file-s3cret\nredis:\n  db: 3\n  password: \"pa\\\"ss\"\nnomad:\n  "
	           "namespace: poseidon\n");
	fclose(f);
	snprintf(pre, sizeof pre,
	         "POSEIDON_NOMAD_TOKEN=env-s3cret POSEIDON_REFILL_TICKMS=250 "
	         "POSEIDON_INFLUXDB_URL=https://user:s3cret@influx.example:8086/base");
	assert_int_equal(admin_env(pre, "-config %s config", file), 0);
	assert_null(strstr(out, "s3cret"));
	assert_null(strstr(out, "pa\\\"ss"));
	assert_non_null(strstr(out, "server.token: \"[redacted]\"\n"));
	assert_non_null(strstr(out, "nomad.token: \"[redacted]\"\n"));
	assert_non_null(strstr(out, "redis.password: \"[redacted]\"\n"));
	assert_non_null(strstr(out, "influxdb.token: \"\"\n")); /* unset secrets show as empty */
	assert_non_null(strstr(out, "influxdb.url: \"https://[redacted]@influx.example:8086/base\"\n"));
	assert_non_null(strstr(out, "redis.db: \"3\"\n"));
	assert_non_null(strstr(out, "nomad.namespace: \"poseidon\"\n"));
	assert_non_null(strstr(out, "refill.tickms: \"250\"\n")); /* the environment wins */
	assert_non_null(strstr(out, "server.port: \"7200\"\n"));
	assert_non_null(strstr(out, file));
	/* the output is a configuration file the programs read back */
	char again[512];
	snprintf(again, sizeof again, "%s/admin-config-out.yaml", h_tmpdir());
	f = fopen(again, "w");
	assert_non_null(f);
	fputs(out, f);
	fclose(f);
	snprintf(cmd, sizeof cmd, "env -i %s/poseidon-api -config %s -config-get nomad.namespace",
	         h_bin_dir(), again);
	FILE *p = popen(cmd, "r");
	char v[128] = "";
	assert_non_null(p);
	assert_non_null(fgets(v, sizeof v, p));
	assert_int_equal(pclose(p), 0);
	assert_string_equal(v, "poseidon\n");
}

/* ---- poseidon-refill and systemd's notify protocol ---------------------------------------- */

static const char *next_datagram(int fd, int timeout_ms)
{
	static char buf[4096];
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void test_refill_notifies_systemd(void **state)
{
	(void)state;
	char sock[600], notify[700], orphan[MODEL_RUNNER_ID_MAX];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sock, sizeof sock, "%s/notify.sock", h_tmpdir());
	assert_true(strlen(sock) < sizeof sa.sun_path);
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	snprintf(notify, sizeof notify, "NOTIFY_SOCKET=%s", sock);
	const char *env[] = {notify,
	                     "WATCHDOG_USEC=1000000",
	                     "POSEIDON_RECONCILE_INTERVAL=3600",
	                     "POSEIDON_REFILL_TICKMS=100",
	                     asan_env,
	                     ubsan_env,
	                     NULL};
	pid_t pid = h_stack_start_refill(&st, env);
	assert_true(pid > 0);
	st.refill = pid;
	assert_string_equal(next_datagram(fd, 5000), "READY=1\nSTATUS=started; waiting for the lease");
	/* no other refill runs: it leads at once, and pings the watchdog at least every 500 ms */
	int leading = 0, pings = 0;
	for (long long t0 = h_now_ms(); h_now_ms() - t0 < 2200;) {
		const char *d = next_datagram(fd, 1000);
		leading |= strcmp(d, "STATUS=leading: this instance keeps the pools") == 0;
		pings += strcmp(d, "WATCHDOG=1") == 0;
	}
	assert_true(leading);
	assert_in_range(pings, 4, 6);
	/* it leads for real: it answers a reconcile */
	register_orphan(12, orphan);
	assert_int_equal(admin("reconcile"), 0);
	assert_non_null(strstr(out, "reconciled by the refill leader"));
	assert_false(job_alive(orphan));
	/* SIGTERM: STOPPING=1 before it exits */
	kill(pid, SIGTERM);
	const char *d;
	do
		d = next_datagram(fd, 3000);
	while (strcmp(d, "WATCHDOG=1") == 0);
	assert_string_equal(d, "STOPPING=1\nSTATUS=stopping");
	assert_int_equal(h_stop(pid), 0);
	st.refill = 0;
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_usage_errors_exit_2),
	    cmocka_unit_test(test_pools_lists_every_environment_and_the_leader),
	    cmocka_unit_test(test_runners_shows_state_allocation_and_deadline),
	    cmocka_unit_test(test_destroy_removes_the_runner_and_its_job),
	    cmocka_unit_test(test_drain_stops_the_refill_and_keeps_used_runners),
	    cmocka_unit_test(test_reconcile_through_the_leader),
	    cmocka_unit_test(test_reconcile_waits_for_a_silent_leader_and_gives_up),
	    cmocka_unit_test(test_reconcile_without_a_leader_runs_here),
	    cmocka_unit_test(test_config_prints_effective_values_with_secrets_redacted),
	    cmocka_unit_test(test_refill_notifies_systemd),
	};
	return cmocka_run_group_tests_name("admin", tests, setup, teardown);
}
