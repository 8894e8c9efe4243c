/* store against a real redis-server: the claim and destroy scripts, lookups and deadlines,
 * concurrency (many connections claiming at once never share a runner), NOSCRIPT fallback and
 * reconnecting after a Redis restart with nothing lost (appendonly). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "store.h"

static struct h_redis redis;
static struct config cfg;
static struct store *st;

static int setup(void **state)
{
	(void)state;
	if (h_redis_start(&redis) < 0)
		return -1;
	config_defaults(&cfg);
	cfg.redis.port = redis.port;
	st = store_open(&cfg);
	return st ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	store_close(st);
	h_stop_all();
	return 0;
}

static int flush(void **state)
{
	(void)state;
	h_redis_cli(&redis, "FLUSHALL");
	return 0;
}

static void put_env(long long id, unsigned long long pool)
{
	struct environment env = {.id = id, .prewarming_pool_size = pool, .cpu_limit = 20, .memory_limit = 100,
				  .ports_null = 1};
	snprintf(env.image, sizeof env.image, "img");
	int created;
	struct perr e;
	assert_int_equal(store_env_put(st, &env, &created, NULL, &e), 0);
}

static void add_ready(long long env, const char *id)
{
	struct perr e;
	struct mapped_port mp = {.exposed_port = 8080};
	snprintf(mp.host_address, sizeof mp.host_address, "127.0.0.1:2%04d", (int)(strlen(id) % 10000));
	assert_int_equal(store_runner_add_starting(st, env, 1, id, &e), 1);
	assert_int_equal(store_runner_ready(st, id, "alloc-1", "node-1", &mp, 1, &e), 1);
}

static void test_claim_from_unknown_environment_is_not_found(void **state)
{
	(void)state;
	struct runner r;
	struct perr e;
	assert_int_equal(store_claim(st, 9999, 0, &r, &e), -1);
	assert_int_equal(e.kind, PERR_NOT_FOUND);
}

static void test_claim_from_empty_pool_is_overload(void **state)
{
	(void)state;
	struct runner r;
	struct perr e;
	put_env(0, 1);
	assert_int_equal(store_claim(st, 0, 0, &r, &e), -1);
	assert_int_equal(e.kind, PERR_NOMAD_OVERLOAD);
	assert_string_equal(e.msg, "no runners available for this execution environment");
}

static void test_environment_put_get_list_delete(void **state)
{
	(void)state;
	struct environment env = {.id = 42, .prewarming_pool_size = 3, .cpu_limit = 100, .memory_limit = 256,
				  .network_access = 1, .nports = 2, .ports = {42, 1337}};
	snprintf(env.image, sizeof env.image, "python:3");
	int created;
	long long gen, gen2;
	struct perr e;
	assert_int_equal(store_env_put(st, &env, &created, &gen, &e), 0);
	assert_int_equal(created, 1);
	env.cpu_limit = 150;
	assert_int_equal(store_env_put(st, &env, &created, &gen2, &e), 0);
	assert_int_equal(created, 0);
	assert_int_equal(gen2, gen + 1);

	struct environment got;
	assert_int_equal(store_env_get(st, 42, &got, &gen, &e), 1);
	assert_int_equal(gen, gen2);
	assert_int_equal(got.cpu_limit, 150);
	assert_int_equal(got.memory_limit, 256);
	assert_string_equal(got.image, "python:3");
	assert_true(got.network_access);
	assert_int_equal(got.nports, 2);
	assert_int_equal(got.ports[1], 1337);
	assert_int_equal(store_env_get(st, 43, &got, NULL, &e), 0);

	put_env(0, 1);
	struct environment *all;
	size_t n;
	assert_int_equal(store_env_list(st, &all, &n, &e), 0);
	assert_int_equal(n, 2);
	assert_int_equal(all[0].id, 0);
	assert_int_equal(all[1].id, 42);
	free(all);
	assert_int_equal(store_env_delete(st, 42, &e), 1);
	assert_int_equal(store_env_delete(st, 42, &e), 0);
	assert_int_equal(store_env_get(st, 42, &got, NULL, &e), 0);
	/* the operator's view */
	assert_string_equal(h_redis_cli(&redis, "SMEMBERS poseidon:envs"), "0");
}

/* Writers that read Nomad before acting (fetch, refill) write only over what they saw. */
static void test_conditional_writes_leave_a_newer_generation_alone(void **state)
{
	(void)state;
	struct environment env = {.id = 7, .prewarming_pool_size = 1, .cpu_limit = 20, .memory_limit = 100,
				  .ports_null = 1};
	snprintf(env.image, sizeof env.image, "img");
	int created;
	long long gen, now;
	struct perr e;
	/* absent expected (0): created */
	assert_int_equal(store_env_put_if_generation(st, &env, 0, &created, &gen, &e), 0);
	assert_int_equal(created, 1);
	/* a PUT in between: the stale writer changes nothing */
	env.memory_limit = 200;
	assert_int_equal(store_env_put(st, &env, &created, &now, &e), 0);
	env.memory_limit = 100;
	assert_int_equal(store_env_put_if_generation(st, &env, gen, &created, NULL, &e), 0);
	assert_int_equal(created, -1);
	assert_string_equal(h_redis_cli(&redis, "HGET poseidon:env:7 memoryLimit"), "200");
	assert_int_equal(store_env_delete_if_generation(st, 7, gen, &e), 0);
	assert_string_equal(h_redis_cli(&redis, "SISMEMBER poseidon:envs 7"), "1");
	/* a runner of the old generation is not added; of the current one it is */
	assert_int_equal(store_runner_add_starting(st, 7, gen, "7-old", &e), 0);
	assert_string_equal(h_redis_cli(&redis, "EXISTS poseidon:runner:7-old"), "0");
	assert_int_equal(store_runner_add_starting(st, 7, now, "7-new", &e), 1);
	/* the writer that saw the current generation deletes; after that no runner can be added */
	assert_int_equal(store_env_delete_if_generation(st, 7, now, &e), 1);
	assert_int_equal(store_runner_add_starting(st, 7, now, "7-late", &e), 0);
	assert_string_equal(h_redis_cli(&redis, "EXISTS poseidon:runner:7-late"), "0");
	assert_string_equal(h_redis_cli(&redis, "SISMEMBER poseidon:starting:7 7-late"), "0");
}

static void test_claim_hands_out_ready_runner_and_counts(void **state)
{
	(void)state;
	struct runner r;
	struct perr e;
	put_env(5, 2);
	add_ready(5, "5-aaaa");
	add_ready(5, "5-bbbb");
	struct env_stats *stats;
	size_t n;
	assert_int_equal(store_statistics(st, &stats, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_int_equal(stats[0].idle, 2);
	assert_int_equal(stats[0].used, 0);
	free(stats);

	assert_int_equal(store_claim(st, 5, 0, &r, &e), 0);
	assert_string_equal(r.id, "5-aaaa"); /* FIFO: the longest-ready runner first */
	assert_int_equal(r.env, 5);
	assert_string_equal(r.state, "used");
	assert_string_equal(r.alloc_id, "alloc-1");
	assert_int_equal(r.nports, 1);
	assert_int_equal(r.ports[0].exposed_port, 8080);
	assert_int_equal(r.deadline_ms, 0);

	assert_int_equal(store_statistics(st, &stats, &n, &e), 0);
	assert_int_equal(stats[0].prewarming_pool_size, 2);
	assert_int_equal(stats[0].idle, 1);
	assert_int_equal(stats[0].used, 1);
	free(stats);
	assert_string_equal(h_redis_cli(&redis, "LRANGE poseidon:pool:5 0 -1"), "5-bbbb");
	assert_string_equal(h_redis_cli(&redis, "SMEMBERS poseidon:used:5"), "5-aaaa");
	assert_string_equal(h_redis_cli(&redis, "HGET poseidon:runner:5-aaaa state"), "used");
}

static void test_destroy_twice_is_gone_the_second_time(void **state)
{
	(void)state;
	struct runner r, gone;
	struct perr e;
	put_env(1, 1);
	add_ready(1, "1-x");
	assert_int_equal(store_claim(st, 1, 60, &r, &e), 0);
	assert_int_equal(store_destroy(st, "1-x", 1, &gone, &e), 1);
	assert_string_equal(gone.alloc_id, "alloc-1");
	assert_int_equal(gone.env, 1);
	assert_int_equal(store_destroy(st, "1-x", 1, &gone, &e), 0);
	assert_int_equal(store_runner_lookup(st, "1-x", 0, &gone, &e), 0);
	assert_string_equal(h_redis_cli(&redis, "EXISTS poseidon:runner:1-x"), "0");
	assert_string_equal(h_redis_cli(&redis, "SCARD poseidon:used:1"), "0");
	assert_string_equal(h_redis_cli(&redis, "ZCARD poseidon:deadlines"), "0");
	/* ids that cannot be ours are simply unknown */
	assert_int_equal(store_destroy(st, "n0n-3x1st1ng-1d", 1, NULL, &e), 0);
	assert_int_equal(store_destroy(st, "../../etc", 1, NULL, &e), 0);
	assert_int_equal(store_destroy(st, "", 1, NULL, &e), 0);
}

static void test_api_destroy_spares_unclaimed_runners(void **state)
{
	(void)state;
	struct perr e;
	struct runner r;
	put_env(2, 1);
	add_ready(2, "2-idle");
	assert_int_equal(store_destroy(st, "2-idle", 1, NULL, &e), 0);
	assert_int_equal(store_runner_lookup(st, "2-idle", 0, &r, &e), 0); /* not claimed: not visible */
	assert_string_equal(h_redis_cli(&redis, "LLEN poseidon:pool:2"), "1");
	assert_int_equal(store_destroy(st, "2-idle", 0, NULL, &e), 1); /* the refill daemon may */
	assert_string_equal(h_redis_cli(&redis, "LLEN poseidon:pool:2"), "0");
}

static void test_deadline_expires_and_touch_pushes_it(void **state)
{
	(void)state;
	struct runner r;
	struct perr e;
	put_env(3, 3);
	add_ready(3, "3-a");
	add_ready(3, "3-b");
	add_ready(3, "3-c");
	assert_int_equal(store_claim(st, 3, 1, &r, &e), 0);
	assert_true(r.deadline_ms > 0);
	long long first = r.deadline_ms;
	assert_int_equal(store_runner_lookup(st, "3-a", 0, &r, &e), 1);
	assert_int_equal(r.inactivity_timeout, 1);
	h_sleep_ms(600);
	assert_int_equal(store_runner_lookup(st, "3-a", 1, &r, &e), 1); /* activity */
	assert_true(r.deadline_ms >= first + 500);
	h_sleep_ms(600);
	assert_int_equal(store_runner_lookup(st, "3-a", 0, &r, &e), 1); /* alive thanks to the touch */
	h_sleep_ms(600);
	assert_int_equal(store_runner_lookup(st, "3-a", 0, &r, &e), 0); /* expired: gone for routes */
	char **ids;
	size_t n;
	assert_int_equal(store_expired_runners(st, 10, &ids, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], "3-a");
	store_free_ids(ids, n);

	/* RUN-12: a negative timeout expires at once; 0 never does */
	assert_int_equal(store_claim(st, 3, -1, &r, &e), 0);
	assert_int_equal(store_runner_lookup(st, r.id, 0, &r, &e), 0);
	assert_int_equal(store_claim(st, 3, 0, &r, &e), 0);
	assert_int_equal(store_runner_lookup(st, r.id, 1, &r, &e), 1);
	assert_int_equal(r.deadline_ms, 0);
}

static void test_stale_pool_entries_are_skipped(void **state)
{
	(void)state;
	struct runner r;
	struct perr e;
	put_env(4, 2);
	h_redis_cli(&redis, "RPUSH poseidon:pool:4 4-ghost");
	add_ready(4, "4-real");
	assert_int_equal(store_claim(st, 4, 0, &r, &e), 0);
	assert_string_equal(r.id, "4-real");
	assert_int_equal(store_claim(st, 4, 0, &r, &e), -1);
	assert_int_equal(e.kind, PERR_NOMAD_OVERLOAD);
}

#define CLAIMERS 8
#define RUNNERS 200

static void test_concurrent_claims_never_return_the_same_id(void **state)
{
	(void)state;
	put_env(7, RUNNERS);
	for (int i = 0; i < RUNNERS; i++) {
		char id[32];
		snprintf(id, sizeof id, "7-%04d", i);
		add_ready(7, id);
	}
	int fds[CLAIMERS][2];
	pid_t pids[CLAIMERS];
	for (int c = 0; c < CLAIMERS; c++) {
		assert_int_equal(pipe(fds[c]), 0);
		pids[c] = fork();
		if (pids[c] == 0) {
			/* each claimer has its own connection, as separate workers do */
			struct store *mine = store_open(&cfg);
			struct runner r;
			struct perr e;
			FILE *out = fdopen(fds[c][1], "w");
			while (store_claim(mine, 7, 0, &r, &e) == 0)
				fprintf(out, "%s\n", r.id);
			fprintf(out, "%s\n", e.kind == PERR_NOMAD_OVERLOAD ? "END" : "ERR");
			fclose(out);
			_exit(0);
		}
		close(fds[c][1]);
	}
	static char seen[RUNNERS];
	int total = 0, ends = 0;
	for (int c = 0; c < CLAIMERS; c++) {
		FILE *in = fdopen(fds[c][0], "r");
		char line[64];
		while (fgets(line, sizeof line, in)) {
			if (strcmp(line, "END\n") == 0) {
				ends++;
				continue;
			}
			int i = atoi(line + 2);
			assert_true(i >= 0 && i < RUNNERS);
			assert_int_equal(seen[i], 0); /* never handed out twice */
			seen[i] = 1;
			total++;
		}
		fclose(in);
		waitpid(pids[c], NULL, 0);
	}
	assert_int_equal(ends, CLAIMERS);
	assert_int_equal(total, RUNNERS); /* none lost */
	assert_string_equal(h_redis_cli(&redis, "SCARD poseidon:used:7"), "200");
}

static void test_scripts_survive_script_flush(void **state)
{
	(void)state;
	struct runner r;
	struct perr e;
	put_env(8, 2);
	add_ready(8, "8-a");
	assert_int_equal(store_claim(st, 8, 0, &r, &e), 0); /* caches the SHA */
	h_redis_cli(&redis, "SCRIPT FLUSH");
	add_ready(8, "8-b");
	assert_int_equal(store_claim(st, 8, 0, &r, &e), 0); /* NOSCRIPT -> EVAL */
	assert_string_equal(r.id, "8-b");
}

static void test_reconnects_after_redis_restart_and_keeps_data(void **state)
{
	(void)state;
	struct runner r;
	struct perr e;
	put_env(9, 2);
	add_ready(9, "9-a");
	add_ready(9, "9-b");
	assert_int_equal(store_claim(st, 9, 0, &r, &e), 0);
	/* enough data that the restarted Redis spends a while reading its append-only file and
	 * answers LOADING meanwhile (it accepts connections before it has loaded) */
	h_redis_cli(&redis, "EVAL \"for i=1,300000 do redis.call('SET','pad:'..i,i) end\" 0");
	assert_int_equal(h_stop(redis.pid) >= 0, 1);
	redis.pid = 0;
	assert_int_equal(store_ping(st, &e), -1);
	assert_int_equal(e.kind, PERR_STORE);
	assert_int_equal(h_redis_restart(&redis), 0);
	/* LOADING is transient: the store waits it out instead of failing */
	if (store_ping(st, &e) != 0)
		fail_msg("ping after the restart: %s", e.msg);
	assert_int_equal(store_runner_lookup(st, "9-a", 0, &r, &e), 1); /* appendonly kept it */
	assert_int_equal(store_claim(st, 9, 0, &r, &e), 0);
	assert_string_equal(r.id, "9-b");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_claim_from_unknown_environment_is_not_found, flush),
		cmocka_unit_test_setup(test_claim_from_empty_pool_is_overload, flush),
		cmocka_unit_test_setup(test_environment_put_get_list_delete, flush),
		cmocka_unit_test_setup(test_conditional_writes_leave_a_newer_generation_alone, flush),
		cmocka_unit_test_setup(test_claim_hands_out_ready_runner_and_counts, flush),
		cmocka_unit_test_setup(test_destroy_twice_is_gone_the_second_time, flush),
		cmocka_unit_test_setup(test_api_destroy_spares_unclaimed_runners, flush),
		cmocka_unit_test_setup(test_deadline_expires_and_touch_pushes_it, flush),
		cmocka_unit_test_setup(test_stale_pool_entries_are_skipped, flush),
		cmocka_unit_test_setup(test_concurrent_claims_never_return_the_same_id, flush),
		cmocka_unit_test_setup(test_scripts_survive_script_flush, flush),
		cmocka_unit_test_setup(test_reconnects_after_redis_restart_and_keeps_data, flush),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
