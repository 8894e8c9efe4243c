/* Load (issue 8): a mixed CodeOcean-like workload for LOAD_SECONDS (default 600) at the highest
 * rate the machine sustains, from LOAD_CLIENTS concurrent clients (default 8), each looping:
 * claim, copy two files, run `echo` over the WebSocket, list files, download one, delete.
 * Prints throughput, p50/p99 per route, every error that is not the documented empty-pool
 * answer, and the memory (RSS) of every process of the stack at start and end. */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

enum route { R_CLAIM, R_COPY, R_EXECUTE, R_WS, R_LIST, R_RAW, R_DELETE, R_COUNT };
static const char *route_names[R_COUNT] = {"POST /runners", "PATCH /files", "POST /execute", "WebSocket echo",
					   "GET /files", "GET /files/raw", "DELETE /runners"};

#define MAX_SAMPLES 2000000

static struct h_stack st;
static long long deadline_ms;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static float *samples[R_COUNT];
static long nsamples[R_COUNT], errors[R_COUNT], overloads;
static char first_error[R_COUNT][256];

static void record(enum route r, double ms, int ok, const char *what)
{
	pthread_mutex_lock(&mu);
	if (ok && nsamples[r] < MAX_SAMPLES)
		samples[r][nsamples[r]++] = (float)ms;
	if (!ok) {
		if (!errors[r]++)
			snprintf(first_error[r], sizeof first_error[r], "%s", what);
	}
	pthread_mutex_unlock(&mu);
}

static long req(enum route rt, const char *method, const char *path, const char *body, struct h_resp *r)
{
	char url[1024];
	snprintf(url, sizeof url, "%s%s", st.base, path);
	long long t0 = h_now_ms();
	if (h_http(r, method, url, body, -1, NULL) < 0) {
		record(rt, 0, 0, "transport failure");
		return -1;
	}
	(void)t0;
	return r->status;
}

static int timed(enum route rt, const char *method, const char *path, const char *body, long expect, char *out,
		 size_t cap)
{
	struct h_resp r;
	long long t0 = h_now_ms();
	long s = req(rt, method, path, body, &r);
	double ms = (double)(h_now_ms() - t0);
	if (s < 0)
		return -1;
	int ok = s == expect;
	if (!ok && rt == R_CLAIM && s == 500 && strstr(r.body, "NOMAD_OVERLOAD")) {
		pthread_mutex_lock(&mu);
		overloads++;
		pthread_mutex_unlock(&mu);
	} else {
		char what[256];
		snprintf(what, sizeof what, "%ld %.200s", s, r.body);
		record(rt, ms, ok, what);
	}
	if (out)
		snprintf(out, cap, "%s", r.body);
	h_resp_free(&r);
	return ok ? 0 : -1;
}

static void websocket(const char *url)
{
	const char *p = strstr(url, "/api/v1/");
	struct h_ws w;
	char body[256];
	long long t0 = h_now_ms();
	if (!p || h_ws_connect(&w, st.port, p, NULL, body, sizeof body) != 101) {
		record(R_WS, 0, 0, "handshake failed");
		return;
	}
	int exit_ok = 0;
	for (;;) {
		char *payload = NULL;
		size_t len;
		int op = h_ws_recv(&w, 10000, &payload, &len);
		if (op == 1 && strstr(payload, "{\"type\":\"exit\",\"data\":0}"))
			exit_ok = 1;
		free(payload);
		if (op != 1)
			break;
	}
	h_ws_close(&w);
	record(R_WS, (double)(h_now_ms() - t0), exit_ok, "no exit 0");
}

static void *client(void *arg)
{
	(void)arg;
	char body[1024], id[128], path[512], url[512];
	while (h_now_ms() < deadline_ms) {
		if (timed(R_CLAIM, "POST", "/runners", "{\"executionEnvironmentId\":1,\"inactivityTimeout\":120}", 200, body,
			  sizeof body) < 0 ||
		    sscanf(body, "{\"runnerId\":\"%127[^\"]\"", id) != 1) {
			h_sleep_ms(50);
			continue;
		}
		snprintf(path, sizeof path, "/runners/%s/files", id);
		timed(R_COPY, "PATCH", path,
		      "{\"delete\":[\"./*\"],\"copy\":[{\"path\":\"src/\"},{\"path\":\"src/main.py\",\"content\":\"cHJpbnQoJ2hpJyk=\"}]}",
		      204, NULL, 0);
		snprintf(path, sizeof path, "/runners/%s/execute", id);
		if (timed(R_EXECUTE, "POST", path, "{\"command\":\"echo hello\",\"timeLimit\":10}", 200, body, sizeof body) == 0 &&
		    sscanf(body, "{\"websocketUrl\":\"%511[^\"]\"", url) == 1)
			websocket(url);
		snprintf(path, sizeof path, "/runners/%s/files?path=.%%2F&recursive=true", id);
		timed(R_LIST, "GET", path, NULL, 200, NULL, 0);
		snprintf(path, sizeof path, "/runners/%s/files/raw?path=src%%2Fmain.py", id);
		timed(R_RAW, "GET", path, NULL, 200, NULL, 0);
		snprintf(path, sizeof path, "/runners/%s", id);
		timed(R_DELETE, "DELETE", path, NULL, 204, NULL, 0);
	}
	return NULL;
}

static int cmp_f(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return x < y ? -1 : x > y;
}

/* The parent pid and command name of a process, from /proc/<pid>/stat. 0 or -1. */
static int proc_stat(long pid, long *ppid, char comm[32])
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *open = strchr(buf, '('), *close = strrchr(buf, ')');
	if (!open || !close || close < open)
		return -1;
	snprintf(comm, 32, "%.*s", (int)(close - open - 1), open + 1);
	return sscanf(close + 1, " %*c %ld", ppid) == 1 ? 0 : -1;
}

static long rss_kib(long pid)
{
	char path[64], line[256];
	long kib = 0;
	snprintf(path, sizeof path, "/proc/%ld/status", pid);
	FILE *f = fopen(path, "r");
	while (f && fgets(line, sizeof line, f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			kib = atol(line + 6);
	if (f)
		fclose(f);
	return kib;
}

#define NPROGS 6
static const char *const progs[NPROGS] = {"lighttpd", "nomad-local", "poseidon-api", "poseidon-refill",
					  "poseidon-wsgate", "redis-server"};

/* RSS of every process of this run's stack (descendants of this program, sandboxes left out),
 * summed per program. */
static void measure(long kib[NPROGS], long count[NPROGS])
{
	for (size_t i = 0; i < NPROGS; i++)
		kib[i] = count[i] = 0;
	DIR *d = opendir("/proc");
	struct dirent *de;
	while (d && (de = readdir(d))) {
		long pid = atol(de->d_name), ppid, up;
		char comm[32], c2[32];
		if (pid <= 0 || proc_stat(pid, &ppid, comm) < 0)
			continue;
		size_t i = 0;
		while (i < NPROGS && strcmp(comm, progs[i]) != 0)
			i++;
		if (i == NPROGS)
			continue;
		for (up = ppid; up > 1 && up != (long)getpid();)
			if (proc_stat(up, &up, c2) < 0)
				break;
		if (up != (long)getpid())
			continue;
		kib[i] += rss_kib(pid);
		count[i]++;
	}
	if (d)
		closedir(d);
}

static void memory(const char *when)
{
	long kib[NPROGS], count[NPROGS];
	measure(kib, count);
	printf("memory (%s):\n", when);
	for (size_t i = 0; i < NPROGS; i++)
		printf("  %-16s %3ld processes %8.1f MiB\n", progs[i], count[i], (double)kib[i] / 1024);
}

int main(void)
{
	int seconds = getenv("LOAD_SECONDS") ? atoi(getenv("LOAD_SECONDS")) : 600;
	int clients = getenv("LOAD_CLIENTS") ? atoi(getenv("LOAD_CLIENTS")) : 8;
	struct h_front_opts o = {.workers = 8};
	if (h_redis_start(&st.redis) < 0 || h_stack_start_nomad(&st) < 0 || h_stack_start(&st, &o) < 0 ||
	    h_stack_start_refill(&st, NULL) < 0 || h_stack_start_wsgate(&st) < 0)
		return 1;
	char url[256];
	struct h_resp r;
	snprintf(url, sizeof url, "%s/execution-environments/1", st.base);
	h_http(&r, "PUT", url, "{\"prewarmingPoolSize\":16,\"cpuLimit\":50,\"memoryLimit\":256,\"image\":\"img\"}", -1, NULL);
	h_resp_free(&r);
	while (atoi(h_redis_cli(&st.redis, "LLEN poseidon:pool:1")) < 16)
		h_sleep_ms(200);
	for (int i = 0; i < R_COUNT; i++)
		samples[i] = malloc(sizeof(float) * MAX_SAMPLES);
	memory("start");
	deadline_ms = h_now_ms() + (long long)seconds * 1000;
	pthread_t t[64];
	for (int i = 0; i < clients && i < 64; i++)
		pthread_create(&t[i], NULL, client, NULL);
	/* memory over the run: ten samples, so growth shows as a trend, not two points */
	long trend[11][NPROGS], count[NPROGS];
	int ntrend = 0;
	measure(trend[ntrend++], count);
	while (h_now_ms() < deadline_ms) {
		h_sleep_ms(seconds * 100 < 1000 ? 1000 : seconds * 100);
		if (ntrend < 11)
			measure(trend[ntrend++], count);
	}
	for (int i = 0; i < clients && i < 64; i++)
		pthread_join(t[i], NULL);
	memory("end");
	printf("memory over the run (MiB, every %d s):\n  %-16s", seconds / 10, "");
	for (int k = 0; k < ntrend; k++)
		printf(" %6d", k * seconds / 10);
	for (size_t i = 0; i < NPROGS; i++) {
		printf("\n  %-16s", progs[i]);
		for (int k = 0; k < ntrend; k++)
			printf(" %6.1f", (double)trend[k][i] / 1024);
	}
	printf("\n");
	printf("mixed workload: %d clients, %d s, each loop = claim, copy, execute + WebSocket, list, download, delete\n",
	       clients, seconds);
	printf("  %-16s %10s %8s %9s %9s %7s\n", "route", "requests", "per s", "p50 ms", "p99 ms", "errors");
	long total_errors = 0;
	for (int i = 0; i < R_COUNT; i++) {
		qsort(samples[i], (size_t)nsamples[i], sizeof(float), cmp_f);
		double p50 = nsamples[i] ? samples[i][nsamples[i] / 2] : 0, p99 = nsamples[i] ? samples[i][nsamples[i] * 99 / 100] : 0;
		printf("  %-16s %10ld %8.1f %9.1f %9.1f %7ld\n", route_names[i], nsamples[i], (double)nsamples[i] / seconds, p50,
		       p99, errors[i]);
		total_errors += errors[i];
	}
	printf("  empty-pool answers (documented NOMAD_OVERLOAD, retried): %ld\n", overloads);
	for (int i = 0; i < R_COUNT; i++)
		if (errors[i])
			printf("  first %s error: %s\n", route_names[i], first_error[i]);
	printf("  errors other than empty pools: %ld\n", total_errors);
	h_stack_stop(&st);
	return 0;
}
