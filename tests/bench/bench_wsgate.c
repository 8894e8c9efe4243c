/* poseidon-wsgate benchmarks (issue 6), each against nomad-local's own exec in the same run, on
 * one runner of a real stack (Redis, nomad-local, lighttpd with workers, poseidon-refill,
 * poseidon-wsgate; every WebSocket through lighttpd's upgrade proxy unless said otherwise):
 *   1. round trip of an execution of `true`: POST /execute, WebSocket connect, until the close
 *      frame, with its phases; in the same rounds, in a new random order each round, the same
 *      through the gateway's own port, nomad-local's raw exec of `true` on the same allocation
 *      (docs/architecture.md: the execution may add at most 20% to it), and the command lines the
 *      gateway really runs (lib/commands: setuser, env, the stderr FIFO reader) run raw, so
 *      that the figures show where the time goes;
 *   2. output throughput of `head -c 100M /dev/zero | base64` to a client that reads as fast as it
 *      can, with poseidon-wsgate's VmRSS sampled every 50 ms and the CPU time of each process,
 *      against nomad-local's raw exec of the same command (lib/nomad_exec, tty like the gateway).
 * Prints figures (docs/wsgate.md explains them); nothing is asserted about time. Exits 1 only
 * when the stack cannot be started. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "config.h"
#include "harness.h"
#include "model.h"
#include "nomad.h"
#include "nomad_exec.h"
#include "wsclient.h"

#define ENV        11
#define WORKERS    4
#define RUNS       200
#define WARMUP     10
#define SAMPLE_MS  50
#define ROUNDS     3
#define STREAM_CMD "head -c 100M /dev/zero | base64"
#define STREAM_RAW (100ULL * 1024 * 1024)

static struct h_stack st;
static pid_t wsgate;
static char runner[128], alloc[64];
static struct nomad_endpoint ep;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- the gateway's messages ----------------------------------------------------------------- */

enum kind { K_OTHER, K_START, K_STDOUT, K_STDERR, K_EXIT, K_TIMEOUT, K_ERROR };

/* Decoded length in bytes of the JSON string text in [p, end) (after the opening quote, before
 * the closing one); -1 when it is not valid. */
static long json_text_len(const unsigned char *p, const unsigned char *end)
{
	long n = 0;
	while (p < end) {
		if (*p != '\\') {
			p++, n++;
			continue;
		}
		if (end - p < 2)
			return -1;
		if (p[1] != 'u') {
			p += 2, n++;
			continue;
		}
		if (end - p < 6)
			return -1;
		unsigned cp = 0;
		for (int i = 2; i < 6; i++) {
			unsigned char h = p[i];
			cp = cp << 4 | (unsigned)(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
		}
		p += 6;
		if (cp >= 0xd800 && cp < 0xdc00) { /* a surrogate pair: one 4-byte character */
			if (end - p < 6 || p[0] != '\\' || p[1] != 'u')
				return -1;
			p += 6;
			n += 4;
		} else {
			n += cp < 0x80 ? 1 : cp < 0x800 ? 2 : 3;
		}
	}
	return n;
}

static int has_prefix(const unsigned char *m, size_t n, const char *s)
{
	size_t l = strlen(s);
	return n >= l && memcmp(m, s, l) == 0;
}

/* What a message is; for output its decoded payload length, for exit its code. */
static enum kind classify(const unsigned char *m, size_t n, long *payload, int *code)
{
	static const char out[] = "{\"type\":\"stdout\",\"data\":\"",
	                  err[] = "{\"type\":\"stderr\",\"data\":\"";
	*payload = 0;
	if (has_prefix(m, n, out) || has_prefix(m, n, err)) {
		size_t pl = sizeof out - 1;
		if (n < pl + 2 || memcmp(m + n - 2, "\"}", 2) != 0)
			return K_OTHER;
		*payload = json_text_len(m + pl, m + n - 2);
		return m[12] == 'o' ? K_STDOUT : K_STDERR;
	}
	if (n == 16 && has_prefix(m, n, "{\"type\":\"start\"}"))
		return K_START;
	if (n == 18 && has_prefix(m, n, "{\"type\":\"timeout\"}"))
		return K_TIMEOUT;
	if (has_prefix(m, n, "{\"type\":\"error\""))
		return K_ERROR;
	if (has_prefix(m, n, "{\"type\":\"exit\",\"data\":") && n < 40) {
		char b[40];
		memcpy(b, m, n);
		b[n] = '\0';
		return sscanf(b, "{\"type\":\"exit\",\"data\":%d}", code) == 1 ? K_EXIT : K_OTHER;
	}
	return K_OTHER;
}

/* POST /execute on the runner; the path and query of websocketUrl into pq. 0 or -1. */
static int execute(const char *body, char *pq, size_t cap)
{
	char url[512];
	struct h_resp r;
	snprintf(url, sizeof url, "%s/runners/%s/execute", st.base, runner);
	if (h_http(&r, "POST", url, body, -1, NULL) < 0)
		return -1;
	const char *u = r.status == 200 ? strstr(r.body, "\"websocketUrl\":\"ws://") : NULL;
	const char *path = u ? strchr(u + 21, '/') : NULL;
	int ok = path && snprintf(pq, cap, "%.*s", (int)strcspn(path, "\""), path) < (int)cap;
	if (!ok)
		fprintf(stderr, "bench: POST /execute: %ld %s\n", r.status, r.body);
	h_resp_free(&r);
	return ok ? 0 : -1;
}

/* ---- round trips ----------------------------------------------------------------------------- */

struct series {
	const char *name;
	double v[RUNS];
	int n, failed;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Nearest-rank percentile of the sorted series. */
static double pct(const struct series *s, int p)
{
	if (!s->n)
		return 0;
	int i = (p * s->n + 99) / 100 - 1;
	return s->v[i < 0 ? 0 : i];
}

static double mean(const struct series *s)
{
	double sum = 0;
	for (int i = 0; i < s->n; i++)
		sum += s->v[i];
	return s->n ? sum / s->n : 0;
}

static void add(struct series *s, double v, int keep)
{
	if (keep && s->n < RUNS)
		s->v[s->n++] = v;
}

enum { G_TOTAL, G_POST, G_UPGRADE, G_START, G_EXIT, G_CLOSE, G_N };

/* One execution of `true` through the gateway on port (lighttpd's or the gateway's own):
 * the phases in ms into t[G_*]. 0, or -1 when anything but start, exit 0, close 1000 came. */
static int gateway_true(int port, double t[G_N])
{
	char pq[512];
	struct wsc c = {.fd = -1};
	double t0 = now_ms();
	if (execute("{\"command\":\"true\"}", pq, sizeof pq) < 0)
		return -1;
	double t1 = now_ms();
	int rc = -1, status = wsc_open(&c, port, pq, 1, NULL, NULL, 0);
	double t2 = now_ms(), t3 = 0, t4 = 0;
	for (int step = 0; status == 101; step++) {
		int op, code = -1;
		long pl;
		const unsigned char *d;
		size_t n;
		if (wsc_next(&c, 10000, &op, &d, &n) != 1)
			break;
		if (op == 8) {
			rc = step == 2 && n >= 2 && (d[0] << 8 | d[1]) == 1000 ? 0 : -1;
			break;
		}
		enum kind k = op == 1 ? classify(d, n, &pl, &code) : K_OTHER;
		if (step == 0 && k == K_START)
			t3 = now_ms();
		else if (step == 1 && k == K_EXIT && code == 0)
			t4 = now_ms();
		else
			break;
	}
	double t5 = now_ms();
	wsc_close(&c);
	t[G_TOTAL] = t5 - t0;
	t[G_POST] = t1 - t0;
	t[G_UPGRADE] = t2 - t1;
	t[G_START] = t3 - t2;
	t[G_EXIT] = t4 - t3;
	t[G_CLOSE] = t5 - t4;
	return rc;
}

/* Opens a raw exec session of argv in the runner's allocation (tty). 0 or -1. */
static int raw_open(struct h_ws *w, const char *const *argv)
{
	char path[NOMAD_EXEC_PATH_MAX];
	struct perr e;
	struct nomad_exec_opts o = {.alloc_id = alloc, .argv = argv, .tty = 1};
	memset(w, 0, sizeof *w);
	w->fd = -1;
	if (nomad_exec_request_path(path, sizeof path, "default", &o, &e) < 0) {
		fprintf(stderr, "bench: %s\n", e.msg);
		return -1;
	}
	return h_ws_connect(w, st.nomad.port, path, NULL, NULL, 0) == 101 ? 0 : -1;
}

/* Reads a raw session up to its exit frame; the exit code, or -1. */
static int raw_exit(struct h_ws *w)
{
	for (;;) {
		char *p;
		size_t n;
		int op = h_ws_recv(w, 10000, &p, &n);
		const char *x = op == 1 ? strstr(p, "\"exited\":true") : NULL;
		const char *ec = x ? strstr(p, "\"exit_code\":") : NULL;
		int code = ec ? atoi(ec + 12) : 0;
		free(p);
		if (op <= 0 || op == 8)
			return -1;
		if (x)
			return code;
	}
}

/* Waits for nomad-local's hang-up after the exit frame, so that sessions never overlap. */
static void raw_close(struct h_ws *w)
{
	for (int op = 1; op > 0 && w->fd >= 0;) {
		char *p;
		size_t n;
		op = h_ws_recv(w, 5000, &p, &n);
		free(p);
	}
	h_ws_close(w);
}

/* Raw exec of argv: ms from connect to the exit frame, or -1 unless it exited 0. */
static double raw_one(const char *const *argv)
{
	struct h_ws w;
	double t0 = now_ms();
	int code = raw_open(&w, argv) == 0 ? raw_exit(&w) : -1;
	double t = now_ms() - t0;
	raw_close(&w);
	return code == 0 ? t : -1;
}

/* The gateway's two sessions (stderr reader first, then the program), run raw: ms until both
 * exit frames arrived, or -1 unless the program exited 0. *err_code: the reader's exit code. */
static double raw_pair(const char *main_line, const char *err_line, int *err_code)
{
	const char *ma[] = {"/bin/bash", "-c", main_line, NULL}, *ea[] = {"/bin/bash", "-c", err_line, NULL};
	struct h_ws we = {.fd = -1}, wm = {.fd = -1};
	double t0 = now_ms();
	int ok = raw_open(&we, ea) == 0 && raw_open(&wm, ma) == 0;
	ok = ok && raw_exit(&wm) == 0;
	*err_code = ok ? raw_exit(&we) : -1;
	double t = now_ms() - t0;
	raw_close(&wm);
	raw_close(&we);
	return ok && *err_code >= 0 ? t : -1;
}

enum { V_GATEWAY, V_DIRECT, V_TRUE, V_BASH, V_PRIV, V_LINE, V_PAIR, V_N };
#define NRAW (V_N - V_TRUE)

static void print_series(struct series *s)
{
	qsort(s->v, (size_t)s->n, sizeof(double), cmp_double);
	printf("  %-72s %7.2f %7.2f %7.2f", s->name, pct(s, 50), pct(s, 99), mean(s));
	if (s->failed)
		printf("  (%d failed)", s->failed);
	printf("\n");
}

static void bench_round_trip(void)
{
	struct series g[G_N] = {{"gateway through lighttpd: POST /execute + WebSocket + `true` to close"},
	                        {"  of which POST /execute (FastCGI worker, Redis)"},
	                        {"  of which WebSocket handshake to 101 (lighttpd, gateway, Redis)"},
	                        {"  of which 101 to {\"type\":\"start\"} (the execution taken)"},
	                        {"  of which start to {\"type\":\"exit\",\"data\":0} (both exec sessions)"},
	                        {"  of which exit to the close frame"}};
	struct series d[G_N] = {{"gateway, WebSocket straight to poseidon-wsgate (no lighttpd)"},
	                        {"  of which POST /execute"},
	                        {"  of which WebSocket handshake to 101"},
	                        {"  of which 101 to start"},
	                        {"  of which start to exit"},
	                        {"  of which exit to the close frame"}};
	struct series raw[NRAW] = {{"nomad-local exec [\"true\"]"},
	                           {"nomad-local exec [\"/bin/bash\",\"-c\",\"true\"]"},
	                           {"nomad-local exec of the gateway's privileged line (env, bash -c true)"},
	                           {"nomad-local exec of the gateway's line (+ /sbin/setuser user)"},
	                           {"the same + its stderr FIFO reader session (what the gateway runs)"}};
	struct execution_request req, preq;
	struct perr e;
	const char *body = "{\"command\":\"true\"}",
	           *pbody = "{\"command\":\"true\",\"privilegedExecution\":true}";
	if (model_parse_execution_request(body, strlen(body), &req, &e) < 0) {
		fprintf(stderr, "bench: %s\n", e.msg);
		return;
	}
	if (model_parse_execution_request(pbody, strlen(pbody), &preq, &e) < 0) {
		fprintf(stderr, "bench: %s\n", e.msg);
		model_execution_free(&req);
		return;
	}
	char *line = cmd_exec_main(&req, NULL, NULL), *pline = cmd_exec_main(&preq, NULL, NULL);
	const char *a_true[] = {"true", NULL}, *a_bash[] = {"/bin/bash", "-c", "true", NULL},
	           *a_priv[] = {"/bin/bash", "-c", pline, NULL}, *a_line[] = {"/bin/bash", "-c", line, NULL};
	const char *const *argvs[] = {a_true, a_bash, a_priv, a_line};
	int hung_up = 0;
	double t0 = now_ms();
	unsigned seed = 1;
	int order[V_N];
	for (int j = 0; j < V_N; j++)
		order[j] = j;
	for (int i = 0; line && pline && i < WARMUP + RUNS; i++) {
		int keep = i >= WARMUP;
		/* a new order every round: what one run leaves behind (the gateway's last Nomad
		 * sessions closing, a sweep) falls on every variant alike */
		for (int j = V_N - 1; j > 0; j--) {
			int k = rand_r(&seed) % (j + 1), x = order[j];
			order[j] = order[k];
			order[k] = x;
		}
		for (int j = 0; j < V_N; j++) {
			int v = order[j], err_code = 0;
			double t[G_N], ms;
			char fifo[128];
			char *fl = NULL, *fe = NULL;
			switch (v) {
			case V_GATEWAY:
			case V_DIRECT:
				if (gateway_true(v == V_GATEWAY ? st.port : st.wsgate_port, t) < 0) {
					(v == V_GATEWAY ? g : d)[0].failed++;
					break;
				}
				for (int k = 0; k < G_N; k++)
					add(&(v == V_GATEWAY ? g : d)[k], t[k], keep);
				break;
			case V_PAIR:
				snprintf(fifo, sizeof fifo, CMD_EXEC_TMP_PREFIX "bench-%d.stderr.fifo", i);
				fl = cmd_exec_main(&req, fifo, NULL);
				fe = cmd_exec_stderr(fifo);
				ms = fl && fe ? raw_pair(fl, fe, &err_code) : -1;
				free(fl);
				free(fe);
				hung_up += keep && err_code == 129;
				if (ms < 0)
					raw[v - V_TRUE].failed++;
				else
					add(&raw[v - V_TRUE], ms, keep);
				break;
			default:
				ms = raw_one(argvs[v - V_TRUE]);
				if (ms < 0)
					raw[v - V_TRUE].failed++;
				else
					add(&raw[v - V_TRUE], ms, keep);
				break;
			}
		}
	}
	double secs = (now_ms() - t0) / 1000;
	free(line);
	free(pline);
	model_execution_free(&req);
	model_execution_free(&preq);

	printf("round trip of an execution of `true`, in ms: %d runs of each, interleaved, after %d warm-up "
	       "runs "
	       "(%.0f s)\n",
	       RUNS, WARMUP, secs);
	printf("  %-72s %7s %7s %7s\n", "", "p50", "p99", "mean");
	for (int k = 0; k < G_N; k++)
		print_series(&g[k]);
	print_series(&d[0]);
	print_series(&d[G_START]);
	print_series(&d[G_EXIT]);
	for (int k = 0; k < NRAW; k++)
		print_series(&raw[k]);
	printf("  (the FIFO reader, `exec cat`, ended by SIGHUP with exit 129 in %d of %d runs: "
	       "nomad-local's pty\n"
	       "  hang-up, docs/wsgate.md)\n",
	       hung_up, RUNS);
	const struct series *pair = &raw[V_PAIR - V_TRUE];
	printf("  ratio gateway / nomad-local exec [\"true\"]:          p50 %.2fx  p99 %.2fx  (target <= "
	       "1.2x)\n",
	       pct(&raw[0], 50) > 0 ? pct(&g[0], 50) / pct(&raw[0], 50) : 0,
	       pct(&raw[0], 99) > 0 ? pct(&g[0], 99) / pct(&raw[0], 99) : 0);
	printf("  ratio gateway / the gateway's two sessions run raw: p50 %.2fx  p99 %.2fx\n",
	       pct(pair, 50) > 0 ? pct(&g[0], 50) / pct(pair, 50) : 0,
	       pct(pair, 99) > 0 ? pct(&g[0], 99) / pct(pair, 99) : 0);
}

/* ---- throughput ------------------------------------------------------------------------------ */

/* VmRSS or VmHWM of pid in KiB, -1 when unreadable. */
static long status_kib(pid_t pid, const char *field)
{
	char path[64], line[256];
	long kb = -1;
	size_t fl = strlen(field);
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, field, fl) && line[fl] == ':')
			kb = atol(line + fl + 1);
	fclose(f);
	return kb;
}

/* CPU time (user + system) of pid so far, in seconds; 0 when unreadable. */
static double cpu_s(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')'); /* the command name may hold spaces */
	unsigned long ut = 0, stime = 0;
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &stime) != 2)
		return 0;
	return (double)(ut + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* VmRSS of the gateway every SAMPLE_MS while a stream runs. */
struct sampler {
	pthread_t thread;
	atomic_int stop;
	pid_t pid;
	long max, sum;
	int n;
};

static void *sample(void *arg)
{
	struct sampler *s = arg;
	while (!atomic_load(&s->stop)) {
		long kb = status_kib(s->pid, "VmRSS");
		if (kb > s->max)
			s->max = kb;
		if (kb > 0) {
			s->sum += kb;
			s->n++;
		}
		struct timespec ts = {0, SAMPLE_MS * 1000000L};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

enum { P_GATEWAY, P_LIGHTTPD, P_NOMAD, P_CLIENT, P_N };

struct stream_result {
	unsigned long long out, err;
	long msgs;
	int exit_code, ok;
	double ms;
	double cpu[P_N]; /* seconds of CPU of each process during the stream */
};

static void cpu_all(double c[P_N])
{
	struct timespec ts;
	c[P_GATEWAY] = cpu_s(wsgate);
	c[P_LIGHTTPD] = cpu_s(st.lighttpd);
	c[P_NOMAD] = cpu_s(st.nomad.pid);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	c[P_CLIENT] = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* STREAM_CMD through the gateway on port, read as fast as possible; ok when it ended with exit
 * and the close frame. */
static void gateway_stream(int port, struct stream_result *r)
{
	char pq[512];
	struct wsc c = {.fd = -1};
	double c0[P_N], c1[P_N];
	memset(r, 0, sizeof *r);
	r->exit_code = -1;
	if (execute("{\"command\":\"" STREAM_CMD "\"}", pq, sizeof pq) < 0)
		return;
	cpu_all(c0);
	double t0 = now_ms();
	if (wsc_open(&c, port, pq, 1, NULL, NULL, 0) == 101) {
		for (;;) {
			int op, code = -1;
			long pl;
			const unsigned char *d;
			size_t n;
			if (wsc_next(&c, 30000, &op, &d, &n) != 1)
				break;
			if (op == 8) {
				r->ok = r->exit_code >= 0;
				break;
			}
			if (op != 1)
				continue;
			r->msgs++;
			switch (classify(d, n, &pl, &code)) {
			case K_STDOUT: r->out += pl > 0 ? (unsigned long long)pl : 0; break;
			case K_STDERR: r->err += pl > 0 ? (unsigned long long)pl : 0; break;
			case K_EXIT: r->exit_code = code; break;
			case K_START: break;
			default:
				fprintf(stderr, "bench: unexpected message %.*s\n", (int)(n < 200 ? n : 200),
				        d);
			}
		}
	}
	r->ms = now_ms() - t0;
	cpu_all(c1);
	for (int i = 0; i < P_N; i++)
		r->cpu[i] = c1[i] - c0[i];
	wsc_close(&c);
}

static int count_out(void *ud, const char *data, size_t len)
{
	(void)data;
	((struct stream_result *)ud)->out += len;
	((struct stream_result *)ud)->msgs++;
	return 0;
}

static int count_err(void *ud, const char *data, size_t len)
{
	(void)data;
	((struct stream_result *)ud)->err += len;
	return 0;
}

/* STREAM_CMD through nomad-local's exec with lib/nomad_exec (tty, as the gateway's session). */
static void raw_stream(struct stream_result *r)
{
	const char *argv[] = {"/bin/bash", "-c", STREAM_CMD, NULL};
	struct nomad_exec_opts o = {.alloc_id = alloc, .argv = argv, .tty = 1};
	struct nomad_exec_io io = {.on_stdout = count_out, .on_stderr = count_err, .ud = r};
	struct perr e;
	double c0[P_N], c1[P_N];
	memset(r, 0, sizeof *r);
	cpu_all(c0);
	double t0 = now_ms();
	r->ok = nomad_exec_run(&ep, &o, &io, 120000, &r->exit_code, NULL, &e) == 0;
	r->ms = now_ms() - t0;
	cpu_all(c1);
	for (int i = 0; i < P_N; i++)
		r->cpu[i] = c1[i] - c0[i];
	if (!r->ok)
		fprintf(stderr, "bench: raw exec: %s\n", e.msg);
}

static double mbps(const struct stream_result *r)
{
	return r->ms > 0 ? (double)r->out / 1e3 / r->ms : 0;
}

static int cmp_rate(const void *a, const void *b)
{
	double x = mbps(a), y = mbps(b);
	return (x > y) - (x < y);
}

enum { S_GATEWAY, S_DIRECT, S_RAW, S_N };

static void bench_throughput(void)
{
	static const char *names[S_N] = {"gateway through lighttpd", "gateway, straight to poseidon-wsgate",
	                                 "nomad-local exec (lib/nomad_exec, tty)"};
	/* base64 wraps at 76 columns; the tty turns every \n into \r\n */
	unsigned long long b64 = (STREAM_RAW + 2) / 3 * 4, lines = (b64 + 75) / 76, want = b64 + 2 * lines;
	struct stream_result r[S_N][ROUNDS];
	long rss0 = status_kib(wsgate, "VmRSS"), hwm0 = status_kib(wsgate, "VmHWM"), rss_max = 0;
	double rss_sum = 0;
	int rss_n = 0;
	double t0 = now_ms();
	for (int round = 0; round < ROUNDS; round++)
		for (int j = 0; j < S_N; j++) {
			int v = (round + j) % S_N;
			struct stream_result *x = &r[v][round];
			if (v == S_RAW) {
				raw_stream(x);
				continue;
			}
			struct sampler s = {.pid = wsgate};
			atomic_init(&s.stop, 0);
			int sampling = pthread_create(&s.thread, NULL, sample, &s) == 0;
			gateway_stream(v == S_GATEWAY ? st.port : st.wsgate_port, x);
			if (sampling) {
				atomic_store(&s.stop, 1);
				pthread_join(s.thread, NULL);
				rss_max = s.max > rss_max ? s.max : rss_max;
				rss_sum += (double)s.sum;
				rss_n += s.n;
			}
		}
	long hwm1 = status_kib(wsgate, "VmHWM");

	printf("\noutput throughput of `%s`: %llu bytes of stdout through the tty, read as fast as\n"
	       "possible, MB/s of decoded payload (MB = 10^6 bytes); %d runs of each, interleaved (%.0f s)\n",
	       STREAM_CMD, want, ROUNDS, (now_ms() - t0) / 1000);
	printf("  %-40s %8s %8s %8s   CPU s per run: %s\n", "", "median", "min", "max",
	       "gateway lighttpd nomad-local client");
	double med[S_N];
	for (int v = 0; v < S_N; v++) {
		int complete = 0;
		double cpu[P_N] = {0};
		for (int i = 0; i < ROUNDS; i++) {
			complete +=
			    r[v][i].ok && r[v][i].out == want && !r[v][i].err && r[v][i].exit_code == 0;
			for (int k = 0; k < P_N; k++)
				cpu[k] += r[v][i].cpu[k] / ROUNDS;
		}
		qsort(r[v], ROUNDS, sizeof r[v][0], cmp_rate);
		med[v] = mbps(&r[v][ROUNDS / 2]);
		printf("  %-40s %8.1f %8.1f %8.1f   %7.2f %8.2f %11.2f %6.2f", names[v], med[v],
		       mbps(&r[v][0]), mbps(&r[v][ROUNDS - 1]), cpu[P_GATEWAY], cpu[P_LIGHTTPD], cpu[P_NOMAD],
		       cpu[P_CLIENT]);
		printf(complete == ROUNDS ? "\n" : "  (%d of %d complete)\n", complete, ROUNDS);
	}
	printf("  messages to the client per run: %ld (%.0f bytes of payload each); frames from nomad-local: "
	       "%ld\n",
	       r[S_GATEWAY][ROUNDS / 2].msgs,
	       r[S_GATEWAY][ROUNDS / 2].msgs ? (double)want / (double)r[S_GATEWAY][ROUNDS / 2].msgs : 0,
	       r[S_RAW][ROUNDS / 2].msgs);
	printf("  ratio gateway through lighttpd / nomad-local exec: %.2f of the raw throughput (medians)\n",
	       med[S_RAW] > 0 ? med[S_GATEWAY] / med[S_RAW] : 0);
	printf("  poseidon-wsgate VmRSS every %d ms during its streams: %.1f MiB before, max %.1f MiB, mean "
	       "%.1f MiB "
	       "(%d samples)\n",
	       SAMPLE_MS, (double)rss0 / 1024, (double)rss_max / 1024, rss_n ? rss_sum / 1024 / rss_n : 0,
	       rss_n);
	printf(
	    "  poseidon-wsgate VmHWM (peak since its start): %.1f MiB before the streams, %.1f MiB after\n",
	    (double)hwm0 / 1024, (double)hwm1 / 1024);
}

/* ---- the stack --------------------------------------------------------------------------------- */

static int setup(void)
{
	static const char *refill_env[] = {"POSEIDON_REFILL_TICKMS=100", NULL};
	struct h_front_opts o = {.workers = WORKERS};
	char url[512], body[256];
	struct h_resp r;
	if (h_redis_start(&st.redis) < 0 || h_stack_start_nomad(&st) < 0 || h_stack_start(&st, &o) < 0 ||
	    h_stack_start_refill(&st, refill_env) < 0 || (wsgate = h_stack_start_wsgate(&st)) < 0)
		return -1;
	snprintf(url, sizeof url, "%s/execution-environments/%d", st.base, ENV);
	snprintf(body, sizeof body,
	         "{\"prewarmingPoolSize\":1,\"cpuLimit\":100,\"memoryLimit\":512,\"image\":\"img\","
	         "\"networkAccess\":false,\"exposedPorts\":null}");
	if (h_http(&r, "PUT", url, body, -1, NULL) < 0)
		return -1;
	long status = r.status;
	h_resp_free(&r);
	if (status != 201 && status != 204)
		return -1;
	snprintf(url, sizeof url, "%s/runners", st.base);
	snprintf(body, sizeof body, "{\"executionEnvironmentId\":%d}", ENV);
	for (int i = 0; i < 300 && !runner[0]; i++) {
		if (h_http(&r, "POST", url, body, -1, NULL) < 0)
			return -1;
		if (r.status != 200 || sscanf(r.body, "{\"runnerId\":\"%127[^\"]\"", runner) != 1)
			runner[0] = '\0';
		h_resp_free(&r);
		if (!runner[0])
			h_sleep_ms(100);
	}
	if (!runner[0])
		return -1;
	snprintf(alloc, sizeof alloc, "%s",
	         h_redis_cli(&st.redis, "HGET poseidon:runner:%s allocId", runner));
	struct config c;
	config_defaults(&c);
	c.nomad.port = st.nomad.port;
	nomad_endpoint_from_config(&ep, &c);
	return alloc[0] ? 0 : -1;
}

/* The machine's load average (the benchmark shares it with whatever else runs). */
static void print_load(const char *when)
{
	char l[128] = "?";
	FILE *f = fopen("/proc/loadavg", "r");
	if (f) {
		if (!fgets(l, sizeof l, f))
			snprintf(l, sizeof l, "?");
		fclose(f);
	}
	l[strcspn(l, "\n")] = '\0';
	printf("load average %s: %s\n", when, l);
}

int main(void)
{
	if (setup() < 0) {
		fprintf(stderr, "bench: the stack did not start\n");
		return 1;
	}
	printf(
	    "one runner (%s), poseidon-wsgate with default settings, %d API workers, all on this machine\n",
	    runner, WORKERS);
	print_load("before");
	printf("\n");
	fflush(stdout);
	bench_round_trip();
	fflush(stdout);
	bench_throughput();
	printf("\n");
	print_load("after");
	nomad_exec_sync_shutdown();
	h_stop(wsgate);
	h_stack_stop(&st);
	return 0;
}
