/* Benchmarks of nomad-local (prints figures; targets from issue 3: 100 runner jobs running in
 * under 10 s on a 2-core machine, exec round trip of `true` p50 under 15 ms).
 *   1. register 100 runner jobs back to back and wait until every allocation is running
 *      (watched on the event stream); registrations/s and time to all-running;
 *   2. 200 exec sessions of ["true"] in one allocation, each a full WebSocket round trip
 *      (upgrade, exit frame, close); p50/p99/max.
 * With POSEIDON_BENCH_BASELINE=<bin dir> (programs built from an earlier commit, e.g. in a git
 * worktree), both agents are measured in turns, three rounds each, and the medians compared: a
 * change's cost measured side by side on the same machine at the same time. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "harness_nomad.h"

#define RUNNERS 100
#define EXECS 200

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

struct fig {
	long long start_ms; /* 100 jobs registered to all running */
	double exec_p50, exec_p99;
};

/* One measurement of the nomad-local in bin (NULL: h_bin_dir()). 0 or -1. */
static int measure(const char *bin, struct fig *f, int verbose)
{
	struct h_nomad n;
	struct h_stream s;
	if (bin)
		setenv("POSEIDON_BIN_DIR", bin, 1);
	if (h_nomad_start(&n, NULL) < 0)
		return -1;
	if (h_stream_open(&s, n.port, "/v1/event/stream?topic=Allocation", NULL) != 200)
		return -1;
	free(h_stream_line(&s, 5000)); /* heartbeat */

	long long t0 = h_now_ms();
	for (int i = 0; i < RUNNERS; i++) {
		char id[64];
		snprintf(id, sizeof id, "10-bench-%03d", i);
		char *body = h_nomad_job(id, 256, "");
		if (h_nomad_register(&n, body, NULL) != 200)
			return -1;
		free(body);
	}
	long long t_reg = h_now_ms() - t0;
	int running = 0;
	while (running < RUNNERS) {
		char *line = h_stream_line(&s, 30000);
		if (!line)
			break;
		/* count each allocation's first "running" update */
		for (char *p = line; (p = strstr(p, "\"ClientStatus\":\"running\"")); p++)
			running++;
		free(line);
	}
	long long t_all = h_now_ms() - t0;
	h_stream_close(&s);
	f->start_ms = t_all;
	if (verbose)
		printf("nomad-local: %d runner jobs registered in %lld ms (%.0f registrations/s); all %d running after %lld "
		       "ms%s\n",
		       RUNNERS, t_reg, RUNNERS * 1000.0 / (t_reg ? t_reg : 1), running, t_all,
		       running == RUNNERS ? "" : " (TIMEOUT)");

	char alloc[64];
	if (h_nomad_wait_running(&n, "10-bench-000", alloc, 10000) < 0)
		return -1;
	double ms[EXECS];
	int ok = 0;
	for (int i = 0; i < EXECS; i++) {
		struct h_exec x;
		struct timespec ts0, ts1;
		clock_gettime(CLOCK_MONOTONIC, &ts0);
		int rc = h_nomad_exec(&n, alloc, "[\"true\"]", 0, NULL, 0, &x);
		clock_gettime(CLOCK_MONOTONIC, &ts1);
		if (rc == 0 && x.exited && x.exit_code == 0)
			ms[ok++] = (double)(ts1.tv_sec - ts0.tv_sec) * 1e3 + (double)(ts1.tv_nsec - ts0.tv_nsec) / 1e6;
		h_exec_free(&x);
	}
	qsort(ms, (size_t)ok, sizeof ms[0], cmp_d);
	if (ok) {
		f->exec_p50 = ms[ok / 2];
		f->exec_p99 = ms[(ok * 99) / 100 < ok ? (ok * 99) / 100 : ok - 1];
		if (verbose)
			printf("nomad-local: exec round trip of `true` over %d runs: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
			       ok, f->exec_p50, f->exec_p99, ms[ok - 1]);
	} else if (verbose) {
		printf("nomad-local: exec round trip: no successful run\n");
	}

	long long tp = h_now_ms();
	for (int i = 0; i < RUNNERS; i++) {
		char url[256];
		struct h_resp r;
		snprintf(url, sizeof url, "%s/v1/job/10-bench-%03d?purge=true", n.url, i);
		if (h_http(&r, "DELETE", url, NULL, 0, NULL) == 0)
			h_resp_free(&r);
	}
	if (verbose)
		printf("nomad-local: %d jobs purged in %lld ms\n", RUNNERS, h_now_ms() - tp);
	h_nomad_stop(&n);
	h_nomad_cleanup(&n);
	return running == RUNNERS && ok == EXECS ? 0 : -1;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return x < y ? -1 : x > y;
}

int main(void)
{
	const char *base = getenv("POSEIDON_BENCH_BASELINE");
	if (!base || !*base) {
		struct fig f;
		return measure(NULL, &f, 1) < 0;
	}
	char cur[4096];
	snprintf(cur, sizeof cur, "%s", h_bin_dir());
	enum { ROUNDS = 3 };
	struct fig b[ROUNDS], c[ROUNDS];
	for (int i = 0; i < ROUNDS; i++)
		if (measure(base, &b[i], 0) < 0 || measure(cur, &c[i], 0) < 0)
			return 1;
	long long bs[ROUNDS], cs[ROUNDS];
	double be[ROUNDS], ce[ROUNDS];
	for (int i = 0; i < ROUNDS; i++) {
		bs[i] = b[i].start_ms, cs[i] = c[i].start_ms, be[i] = b[i].exec_p50, ce[i] = c[i].exec_p50;
		printf("  round %d: baseline: 100 running after %lld ms, exec p50 %.2f ms | this build: %lld ms, %.2f ms\n",
		       i + 1, bs[i], be[i], cs[i], ce[i]);
	}
	qsort(bs, ROUNDS, sizeof bs[0], cmp_ll);
	qsort(cs, ROUNDS, sizeof cs[0], cmp_ll);
	qsort(be, ROUNDS, sizeof be[0], cmp_d);
	qsort(ce, ROUNDS, sizeof ce[0], cmp_d);
	printf("nomad-local against the baseline in %s (medians of %d rounds, in turns):\n", base, ROUNDS);
	printf("  100 runner jobs to running: %lld ms -> %lld ms (%.2fx)\n", bs[1], cs[1], (double)cs[1] / (double)bs[1]);
	printf("  exec round trip of `true`, p50: %.2f ms -> %.2f ms (%.2fx)\n", be[1], ce[1], ce[1] / be[1]);
	return 0;
}
