/* Refill benchmark (issue 4): the time poseidon-refill takes to fill a pool of 100 from empty,
 * against nomad-local's own rate for the same work measured in the same run: 100 runner jobs of
 * the same shape registered with the same concurrency straight through lib/nomad, until every
 * allocation runs. Rounds alternate between the two and the medians are compared (the machine is
 * noisy). Target: refill adds under 10%. Also Redis memory per idle runner (target under 1 KiB).
 * Prints figures; asserts nothing about time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "jobspec.h"
#include "nomad.h"

#define RUNNERS 100
#define ROUNDS 3

static struct h_stack st;
static struct nomad *n;
static struct config c;

static int count_running(const char *prefix)
{
	struct nomad_alloc *as;
	size_t na;
	struct perr e;
	int running = 0;
	if (nomad_allocations(n, &as, &na, &e) < 0)
		return -1;
	for (size_t i = 0; i < na; i++)
		running += strncmp(as[i].job_id, prefix, strlen(prefix)) == 0 && strcmp(as[i].client_status, "running") == 0 &&
			   strcmp(as[i].desired_status, "run") == 0;
	free(as);
	return running;
}

static void settle(const char *prefix)
{
	while (count_running(prefix) > 0)
		h_sleep_ms(100);
	h_sleep_ms(2000);
}

static long long raw_round(int round)
{
	struct perr e;
	struct jobspec_opts o;
	char prefix[32];
	json_object *tmpl = jobspec_load(NULL, &e);
	jobspec_opts_from_config(&o, &c);
	struct environment env = {.id = 77, .cpu_limit = 20, .memory_limit = 100, .ports_null = 1};
	snprintf(env.image, sizeof env.image, "img");
	json_object *jobs[RUNNERS];
	char ids[RUNNERS][64], *purge[RUNNERS];
	snprintf(prefix, sizeof prefix, "77-raw%d-", round);
	for (int i = 0; i < RUNNERS; i++) {
		snprintf(ids[i], sizeof ids[i], "%s%03d", prefix, i);
		jobs[i] = jobspec_runner_job(tmpl, &env, ids[i], 0, &o, &e);
		purge[i] = ids[i];
	}
	long long t0 = h_now_ms();
	nomad_jobs_register(n, jobs, RUNNERS, c.refill.parallelism, NULL, &e);
	while (count_running(prefix) < RUNNERS && h_now_ms() - t0 < 60000)
		h_sleep_ms(20);
	long long took = h_now_ms() - t0;
	for (int i = 0; i < RUNNERS; i++)
		json_object_put(jobs[i]);
	json_object_put(tmpl);
	nomad_jobs_purge(n, purge, RUNNERS, 16, &e);
	settle(prefix);
	return took;
}

static long long refill_round(int round, double *bytes_per_runner)
{
	char url[256], body[256], key[64], prefix[32];
	struct h_resp r;
	long long env = 80 + round;
	snprintf(url, sizeof url, "%s/execution-environments/%lld", st.base, env);
	snprintf(body, sizeof body, "{\"prewarmingPoolSize\":%d,\"cpuLimit\":20,\"memoryLimit\":100,\"image\":\"img\"}", RUNNERS);
	snprintf(key, sizeof key, "poseidon:pool:%lld", env);
	long long t0 = h_now_ms();
	h_http(&r, "PUT", url, body, -1, NULL);
	h_resp_free(&r);
	while (atoi(h_redis_cli(&st.redis, "LLEN %s", key)) < RUNNERS && h_now_ms() - t0 < 60000)
		h_sleep_ms(20);
	long long took = h_now_ms() - t0;
	/* what our keys take: every runner hash plus the pool list, by MEMORY USAGE */
	long long bytes = atoll(h_redis_cli(&st.redis,
		"EVAL \"local s = redis.call('MEMORY', 'USAGE', KEYS[1]) or 0 "
		"for _, id in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do "
		"s = s + (redis.call('MEMORY', 'USAGE', ARGV[1] .. id) or 0) end return s\" 1 %s poseidon:runner:", key));
	*bytes_per_runner = (double)bytes / RUNNERS;
	h_http(&r, "DELETE", url, NULL, -1, NULL);
	h_resp_free(&r);
	snprintf(prefix, sizeof prefix, "%lld-", env);
	settle(prefix);
	return took;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return x < y ? -1 : x > y;
}

int main(void)
{
	struct nomad_endpoint ep;
	if (h_redis_start(&st.redis) < 0 || h_stack_start_nomad(&st) < 0 || h_stack_start(&st, NULL) < 0)
		return 1;
	config_defaults(&c);
	c.nomad.port = st.nomad.port;
	nomad_endpoint_from_config(&ep, &c);
	n = nomad_open(&ep);
	h_stack_start_refill(&st, NULL);
	h_sleep_ms(1000);

	long long raw[ROUNDS], refill[ROUNDS];
	double bytes = 0;
	for (int i = 0; i < ROUNDS; i++) {
		raw[i] = raw_round(i);
		refill[i] = refill_round(i, &bytes);
		printf("  round %d: nomad-local alone %lld ms, through the service %lld ms\n", i + 1, raw[i], refill[i]);
	}
	qsort(raw, ROUNDS, sizeof *raw, cmp_ll);
	qsort(refill, ROUNDS, sizeof *refill, cmp_ll);
	printf("pool fill benchmark: %d runners, %d rounds, medians (register %d at a time)\n", RUNNERS, ROUNDS,
	       c.refill.parallelism);
	printf("  nomad-local alone, until every allocation runs:   %lld ms\n", raw[ROUNDS / 2]);
	printf("  PUT environment until %d runners ready in Redis: %lld ms\n", RUNNERS, refill[ROUNDS / 2]);
	printf("  refill overhead over the engine:                  %+.1f%% (target < +10%%)\n",
	       100.0 * (double)(refill[ROUNDS / 2] - raw[ROUNDS / 2]) / (double)raw[ROUNDS / 2]);
	printf("  Redis memory per idle runner (hash + pool entry): %.0f bytes (target < 1024)\n", bytes);
	nomad_close(n);
	h_stack_stop(&st);
	return 0;
}
