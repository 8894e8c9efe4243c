/* The service as CodeOcean uses it, on the stack as `make run` starts it.
 *
 * Every other integration test builds its stack piece by piece with the harness. This one starts
 * deploy/run.sh the way `make run` does (/bin/sh runs it in the source tree with POSEIDON_BIN_DIR),
 * only on free ports and in a fresh run directory, so that it starts its own Redis and nomad-local,
 * and then uses the service only over HTTP and the WebSocket, as CodeOcean does:
 *
 *   - an environment, runners claimed from its pool;
 *   - 100+ randomized submissions: each one PATCH that deletes the workspace's entries (the glob
 *     CodeOcean sends) and copies a random tree (directories, nesting, empty files, sizes up to
 *     300 KiB that are no multiple of 512, spaces and UTF-8 in names); the runner's sha256sum of
 *     every file must equal the local sha256sum of the same tree, and the set of files and
 *     directories must be exactly the tree (nothing left from the submission before);
 *   - input to a program, a listing and a download;
 *   - programs start with no signal ignored or blocked (a shell's background jobs ignore SIGINT
 *     and SIGQUIT, and run.sh must not pass that on to every program in every runner);
 *   - a program's QUIT trap runs on a time limit and on a client's close, and the runner survives;
 *   - run.sh itself: a taken port and a used run directory are refused with a line that says so,
 *     and Ctrl-C (SIGINT to its process group) stops every process it started, sandboxes too.
 *
 * Randomness is seeded from the time unless POSEIDON_TEST_SEED is set; the seed is printed at the
 * start and in every failure message. Sanitizer builds (make asan) write their reports into the
 * test's directory, and the last test requires that there are none. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "wsclient.h"

#define ENV_ID      11
#define POOL        3
#define RUNNERS     3   /* claimed for the submissions, used in rotation */
#define SUBMISSIONS 120 /* at least 100 */
#define MAX_ENTRIES 15
#define MAX_SIZE    (300 * 1024)
#define WAIT_MS     60000 /* for the stack to come up and runners to be claimable (ASan is slow) */
#define EXEC_MS     30000 /* for one execution to end */
#define SURVIVE_MS  4000  /* the gateway destroys a runner whose program outlived SIGQUIT by 3 s */
#define REFUSE_MS   10000 /* for a second run.sh to give up */
#define STOP_MS     15000 /* for run.sh to stop everything after Ctrl-C */
/* Every directory, then every regular file's digest, under the working directory. Through a pipe
 * (cat), because GNU find prints characters the runner's C locale cannot print as '?' to a terminal. */
#define HASH_COMMAND                                                                                         \
	"{ find . -mindepth 1 -type d -printf \"dir %p\\n\"; find . -type f -print0 | sort -z | "            \
	"xargs -0 -r sha256sum; } | cat"

static unsigned long long seed;

/* A failed check names the seed, so that the run can be repeated with POSEIDON_TEST_SEED. */
#define CHECK(cond, ...)                                                                                     \
	do {                                                                                                 \
		if (!(cond)) {                                                                               \
			print_error("[seed %llu] check failed: %s\n  ", seed, #cond);                        \
			print_error(__VA_ARGS__);                                                            \
			print_error("\n");                                                                   \
			fail();                                                                              \
		}                                                                                            \
	} while (0)

/* ---- randomness ----------------------------------------------------------------------------- */

static unsigned long long rng_state;

static unsigned long long rnd64(void) /* splitmix64 */
{
	unsigned long long z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* 0 .. n-1 */
static size_t rnd(size_t n)
{
	return n ? (size_t)(rnd64() % n) : 0;
}

/* ---- run.sh as `make run` starts it --------------------------------------------------------- */

struct runsh {
	pid_t pid; /* /bin/sh execs run.sh: the leader of its own process group */
	int port, wsgate_port, nomad_port, redis_port;
	char rundir[PATH_MAX];
	char log[PATH_MAX];
	char base[128]; /* http://127.0.0.1:<port>/api/v1 */
};

static struct runsh stack;
static char sanitizer_dir[PATH_MAX];

/* Starts run.sh with the given server port and run directory (0 / NULL: free ones) and free ports
 * for everything else, its output in its own log. Sanitizer reports of every program it starts go
 * to sanitizer_dir, as the harness does for its stacks. */
static void runsh_start(struct runsh *r, int port, const char *rundir)
{
	static int started;
	char cmd[PATH_MAX + 64], *env[16];
	int n = 0;
	memset(r, 0, sizeof *r);
	r->port = port ? port : h_free_port();
	r->wsgate_port = h_free_port();
	r->nomad_port = h_free_port();
	r->redis_port = h_free_port();
	started++;
	if (rundir)
		snprintf(r->rundir, sizeof r->rundir, "%s", rundir);
	else
		snprintf(r->rundir, sizeof r->rundir, "%s/run-%d", h_tmpdir(), started);
	snprintf(r->log, sizeof r->log, "%s/runsh-%d.log", h_tmpdir(), started);
	snprintf(r->base, sizeof r->base, "http://127.0.0.1:%d/api/v1", r->port);
	/* make runs the recipe with /bin/sh in the source tree */
	snprintf(cmd, sizeof cmd, "cd %s && exec deploy/run.sh", h_src_dir());
#define ENV(...) CHECK(asprintf(&env[n++], __VA_ARGS__) > 0, "asprintf")
	ENV("POSEIDON_BIN_DIR=%s", h_bin_dir());
	ENV("POSEIDON_RUN_DIR=%s", r->rundir);
	ENV("POSEIDON_SERVER_PORT=%d", r->port);
	ENV("POSEIDON_WSGATE_PORT=%d", r->wsgate_port);
	ENV("POSEIDON_NOMAD_PORT=%d", r->nomad_port);
	ENV("POSEIDON_REDIS_PORT=%d", r->redis_port);
	ENV("ASAN_OPTIONS=log_path=%s/sanitizer:detect_leaks=1", sanitizer_dir);
	ENV("UBSAN_OPTIONS=log_path=%s/sanitizer:print_stacktrace=1", sanitizer_dir);
#undef ENV
	env[n] = NULL;
	char *argv[] = {"/bin/sh", "-c", cmd, NULL};
	r->pid = h_spawn(argv, env, r->log);
	for (int i = 0; i < n; i++)
		free(env[i]);
	CHECK(r->pid > 0, "cannot start run.sh");
}

/* run.sh's output so far (static buffer). */
static const char *runsh_output(const struct runsh *r)
{
	static char out[1 << 16];
	FILE *f = fopen(r->log, "r");
	size_t n = f ? fread(out, 1, sizeof out - 1, f) : 0;
	if (f)
		fclose(f);
	out[n] = '\0';
	return out;
}

/* Only run.sh's own lines ("run: ...") of its output. */
static const char *runsh_lines(const struct runsh *r)
{
	static char lines[8192];
	const char *out = runsh_output(r);
	size_t n = 0;
	lines[0] = '\0';
	for (const char *p = out; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) + 1 : strlen(p);
		if (!strncmp(p, "run: ", 5) && n + len < sizeof lines) {
			memcpy(lines + n, p, len);
			lines[n += len] = '\0';
		}
		p += len;
	}
	return lines;
}

static void reap_orphans(const struct runsh *r);

/* Waits up to ms for run.sh to exit, without reaping it (its group id stays unused until
 * h_stop reaps it). Returns its wait status, or -1 if it still runs. */
static int runsh_exited(const struct runsh *r, int ms)
{
	for (long long end = h_now_ms() + ms;; h_sleep_ms(20)) {
		siginfo_t si = {0};
		reap_orphans(r);
		if (waitid(P_PID, (id_t)r->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == r->pid)
			return si.si_code == CLD_EXITED ? (si.si_status & 0xff) << 8 : si.si_status & 0x7f;
		if (h_now_ms() >= end)
			return -1;
	}
}

/* ---- processes, from /proc ------------------------------------------------------------------ */

struct proc {
	pid_t pid, ppid, pgrp;
	char state;
	unsigned long long start; /* clock ticks after boot: with the pid, safe from pid reuse */
	char comm[32];
};

/* One process's stat; 0 or -1 when it does not exist. */
static int proc_read(pid_t pid, struct proc *p)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
	char *open = strchr(buf, '('), *close = strrchr(buf, ')');
	if (!n || !open || !close)
		return -1;
	memset(p, 0, sizeof *p);
	p->pid = pid;
	snprintf(p->comm, sizeof p->comm, "%.*s", (int)(close - open - 1), open + 1);
	/* after the comm: state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
	 * utime stime cutime cstime priority nice num_threads itrealvalue starttime */
	int ppid, pgrp;
	if (sscanf(close + 2, "%c %d %d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
	           &p->state, &ppid, &pgrp, &p->start) != 4)
		return -1;
	p->ppid = ppid;
	p->pgrp = pgrp;
	return 0;
}

/* Every process on the machine; returns how many were put into ps (at most cap). */
static int proc_all(struct proc *ps, int cap)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;
	while (d && (e = readdir(d)) && n < cap) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (*end == '\0' && pid > 0 && proc_read((pid_t)pid, &ps[n]) == 0)
			n++;
	}
	if (d)
		closedir(d);
	return n;
}

/* The descendants of root (children, their children, ...) into out; returns how many. */
static int proc_descendants(pid_t root, struct proc *out, int cap)
{
	static struct proc all[8192];
	int n = proc_all(all, 8192), found = 0;
	pid_t parents[8192];
	int nparents = 0;
	parents[nparents++] = root;
	for (int i = 0; i < nparents; i++)
		for (int j = 0; j < n; j++)
			if (all[j].ppid == parents[i] && found < cap && nparents < 8192) {
				out[found++] = all[j];
				parents[nparents++] = all[j].pid;
			}
	return found;
}

/* Is the process recorded in p still there (same pid and start time, not a zombie)? */
static int proc_alive(const struct proc *p)
{
	struct proc now;
	return proc_read(p->pid, &now) == 0 && now.start == p->start && now.state != 'Z' && now.state != 'X';
}

/* Processes of process group pgrp that still run (zombies do not count). */
static int group_members(pid_t pgrp, char *names, size_t cap)
{
	static struct proc all[8192];
	int n = proc_all(all, 8192), found = 0;
	names[0] = '\0';
	for (int i = 0; i < n; i++)
		if (all[i].pgrp == pgrp && all[i].state != 'Z') {
			size_t l = strlen(names);
			snprintf(names + l, cap - l, " %d(%s)", (int)all[i].pid, all[i].comm);
			found++;
		}
	return found;
}

/* Processes whose parent is this test other than the first run.sh: orphans of a stopped run.sh
 * come to the test, their subreaper (harness.c), even when they left run.sh's process group. */
static int orphans(char *names, size_t cap)
{
	static struct proc all[8192];
	int n = proc_all(all, 8192), found = 0;
	names[0] = '\0';
	for (int i = 0; i < n; i++)
		if (all[i].ppid == getpid() && all[i].pid != stack.pid && all[i].state != 'Z') {
			size_t l = strlen(names);
			snprintf(names + l, cap - l, " %d(%s)", (int)all[i].pid, all[i].comm);
			found++;
		}
	return found;
}

/* The test is the subreaper of everything it starts (harness.c): the processes whose parent ends
 * first (lighttpd's workers, the sandboxes once nomad-local has exited) come to it, as they come
 * to init under a terminal. Like init, it reaps them when they end (nomad-local -cleanup waits
 * for a sandbox's processes to disappear, and a zombie still has its /proc entry), but never a
 * run.sh, whose status the tests read. */
static void reap_orphans(const struct runsh *r)
{
	static struct proc all[8192];
	int n = proc_all(all, 8192);
	for (int i = 0; i < n; i++)
		if (all[i].ppid == getpid() && all[i].state == 'Z' && all[i].pid != r->pid &&
		    all[i].pid != stack.pid)
			waitpid(all[i].pid, NULL, WNOHANG);
}

/* ---- HTTP ----------------------------------------------------------------------------------- */

/* method on stack.base + path; the answer in r (h_resp_free it). Returns the status. */
static long api(struct h_resp *r, const char *method, const char *path, const char *body, long len)
{
	char url[4096];
	snprintf(url, sizeof url, "%s%s", stack.base, path);
	CHECK(h_http(r, method, url, body, len, NULL) == 0, "%s %s: no HTTP answer", method, path);
	return r->status;
}

/* The same, only the status and the body (copied into out, when given). */
static long api_call(const char *method, const char *path, const char *body, char *out, size_t cap)
{
	struct h_resp r;
	long status = api(&r, method, path, body, -1);
	if (out)
		snprintf(out, cap, "%s", r.body);
	h_resp_free(&r);
	return status;
}

/* Percent-encodes s for a query value. */
static void url_encode(char *out, size_t cap, const char *s)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p && n + 4 < cap; p++)
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("-._~", *p))
			out[n++] = (char)*p;
		else
			n += (size_t)snprintf(out + n, cap - n, "%%%02X", *p);
	out[n] = '\0';
}

static char *base64(const unsigned char *d, size_t n)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc(4 * ((n + 2) / 3) + 1), *o = out;
	CHECK(out != NULL, "out of memory");
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)d[i] << 16 | (i + 1 < n ? (unsigned)d[i + 1] << 8 : 0) |
		             (i + 2 < n ? d[i + 2] : 0);
		*o++ = t[v >> 18 & 63];
		*o++ = t[v >> 12 & 63];
		*o++ = i + 1 < n ? t[v >> 6 & 63] : '=';
		*o++ = i + 2 < n ? t[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

/* Claims a runner of ENV_ID, retrying while the pool is empty (500) for up to WAIT_MS. */
static void claim(char id[128])
{
	char out[1024], body[128];
	snprintf(body, sizeof body, "{\"executionEnvironmentId\":%d,\"inactivityTimeout\":120}", ENV_ID);
	for (long long end = h_now_ms() + WAIT_MS;; h_sleep_ms(100)) {
		long status = api_call("POST", "/runners", body, out, sizeof out);
		if (status == 200) {
			json_object *o = json_tokener_parse(out), *v;
			CHECK(o && json_object_object_get_ex(o, "runnerId", &v), "claim answered %s", out);
			snprintf(id, 128, "%s", json_object_get_string(v));
			json_object_put(o);
			return;
		}
		CHECK(status == 500 && h_now_ms() < end, "claim: %ld %s", status, out);
	}
}

/* ---- executions over the WebSocket, as CodeOcean runs them ---------------------------------- */

struct run {
	char *out, *err; /* stdout and stderr, joined, with the terminal's \r\n kept */
	size_t out_len, err_len;
	char end[128];  /* the terminal message (exit, timeout or error), "" when none came */
	int close_code; /* -1: no close frame */
	int bad;        /* messages that are not a start, output or terminal message */
};

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof *r);
}

static void append(char **p, size_t *len, const char *d, size_t n)
{
	char *np = realloc(*p, *len + n + 1);
	CHECK(np != NULL, "out of memory");
	memcpy(np + *len, d, n);
	*len += n;
	np[*len] = '\0';
	*p = np;
}

/* POST /execute with the JSON body and the WebSocket upgrade through the front, as CodeOcean
 * connects to the websocketUrl it got. c is connected afterwards. */
static void exec_open(const char *runner, const char *body, struct wsc *c)
{
	char path[256], out[2048];
	snprintf(path, sizeof path, "/runners/%s/execute", runner);
	long status = api_call("POST", path, body, out, sizeof out);
	CHECK(status == 200, "execute %s: %ld %s", body, status, out);
	char *u = strstr(out, "\"websocketUrl\":\"ws://");
	CHECK(u != NULL, "execute answered %s", out);
	u = strchr(u + 21, '/');
	char pq[512];
	snprintf(pq, sizeof pq, "%.*s", (int)strcspn(u, "\""), u);
	CHECK(wsc_open(c, stack.port, pq, 1, NULL, NULL, 0) == 101, "no upgrade for %s", pq);
}

/* Takes one text message into r; returns its type (static buffer). */
static const char *take(struct run *r, const char *msg, size_t len)
{
	static char type[32];
	json_object *o = json_tokener_parse(msg), *t = NULL, *d = NULL;
	snprintf(type, sizeof type, "%s",
	         o && json_object_object_get_ex(o, "type", &t) ? json_object_get_string(t) : "?");
	int has_data = o && json_object_object_get_ex(o, "data", &d);
	if (!strcmp(type, "stdout") && has_data)
		append(&r->out, &r->out_len, json_object_get_string(d),
		       (size_t)json_object_get_string_len(d));
	else if (!strcmp(type, "stderr") && has_data)
		append(&r->err, &r->err_len, json_object_get_string(d),
		       (size_t)json_object_get_string_len(d));
	else if (!strcmp(type, "exit") || !strcmp(type, "timeout") || !strcmp(type, "error"))
		snprintf(r->end, sizeof r->end, "%.*s", (int)len, msg);
	else if (strcmp(type, "start"))
		r->bad++;
	json_object_put(o);
	return type;
}

/* Reads messages into r until the server's close frame, the connection's end or timeout_ms;
 * with until_stdout, returns early once stdout contains it (1), else 0. */
static int exec_read(struct wsc *c, struct run *r, int timeout_ms, const char *until_stdout)
{
	for (long long end = h_now_ms() + timeout_ms;;) {
		char *d;
		size_t n;
		int op = wsc_read(c, (int)(end - h_now_ms()), &d, &n);
		if (op <= 0)
			return 0;
		if (op == WSC_TEXT)
			take(r, d, n);
		if (op == WSC_CLOSE)
			r->close_code = n >= 2 ? ((unsigned char)d[0] << 8 | (unsigned char)d[1]) : 0;
		free(d);
		if (op == WSC_CLOSE)
			return 0;
		if (until_stdout && r->out && strstr(r->out, until_stdout))
			return 1;
	}
}

/* One whole execution: the JSON body as CodeOcean posts it, optional input (raw frame, sent
 * after start), everything read until the close. */
static void exec_run(const char *runner, const char *body, const char *input, struct run *r)
{
	struct wsc c;
	memset(r, 0, sizeof *r);
	r->close_code = -1;
	exec_open(runner, body, &c);
	char *d;
	size_t n;
	CHECK(wsc_read(&c, EXEC_MS, &d, &n) == WSC_TEXT && !strcmp(take(r, d, n), "start"),
	      "the first message is not start");
	free(d);
	if (input)
		CHECK(wsc_send(&c, WSC_TEXT, input, strlen(input)) == 0, "cannot send input");
	exec_read(&c, r, EXEC_MS, NULL);
	wsc_close(&c);
}

/* A command of the default shape: {"command":cmd, "timeLimit":limit} with JSON escaping. */
static char *exec_body(const char *cmd, int time_limit)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "command", json_object_new_string(cmd));
	json_object_object_add(o, "timeLimit", json_object_new_int(time_limit));
	char *s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return s;
}

/* Runs cmd on runner and requires exit 0 with empty stderr; r holds the output. */
static void exec_ok(const char *runner, const char *cmd, struct run *r)
{
	char *body = exec_body(cmd, 0);
	exec_run(runner, body, NULL, r);
	free(body);
	CHECK(!strcmp(r->end, "{\"type\":\"exit\",\"data\":0}") && r->close_code == 1000 && !r->err_len &&
	          !r->bad,
	      "%s: ended with '%s', close %d, stderr '%.300s', %d bad messages, stdout '%.300s'", cmd, r->end,
	      r->close_code, r->err ? r->err : "", r->bad, r->out ? r->out : "");
}

/* \r\n -> \n in place (the terminal's line ends). */
static char *unix_lines(char *s)
{
	char *w = s;
	for (char *p = s; s && *p; p++)
		if (!(p[0] == '\r' && p[1] == '\n'))
			*w++ = *p;
	if (s)
		*w = '\0';
	return s;
}

/* ---- submissions: a random tree, sent as CodeOcean sends it, and its local copy ------------- */

struct entry {
	char path[512]; /* a directory ends in '/' */
	unsigned char *data;
	size_t size;
};

struct submission {
	struct entry e[MAX_ENTRIES + 1];
	int n;
};

static const char *name_parts[] = {"main",  "with space", "ü",   "✓",       "日本", "Ünïcödé x", "a  b",
                                   "-dash", "x$y",        "a&b", "it's",    "(p)",  "#h",        "plain",
                                   "ß ø",   "emoji 🎉",    "tab", "semi;co", "q\"t", "1"};
static const char *dir_parts[] = {"src", "dir ✓", "日本 dir", "nested ü", "lib", "a b"};

/* A size from 0 to MAX_SIZE, weighted to small files, never a multiple of 512 but 0. */
static size_t random_size(void)
{
	size_t k = rnd(100), size;
	if (k < 12)
		return 0;
	if (k < 50)
		size = 1 + rnd(4096);
	else if (k < 82)
		size = 1 + rnd(64 * 1024);
	else
		size = 1 + rnd(MAX_SIZE);
	if (size % 512 == 0)
		size -= 1 + rnd(510);
	return size;
}

static unsigned char *random_content(size_t size)
{
	unsigned char *d = malloc(size ? size : 1);
	int text = rnd(2) == 0;
	CHECK(d != NULL, "out of memory");
	for (size_t i = 0; i < size; i++)
		d[i] = text ? (rnd(40) == 0 ? '\n' : (unsigned char)(' ' + rnd(95))) : (unsigned char)rnd64();
	return d;
}

/* A random tree: explicit directories first ("dir/"), nested at random, then files at the top,
 * in those directories, or in directories that only their path creates. Names are unique by an
 * index, so no path is a prefix of another by accident. */
static void submission_make(struct submission *s)
{
	int n = 1 + (int)rnd(MAX_ENTRIES), ndirs = (int)rnd((size_t)(n < 4 ? n : 4) + 1), idx = 0;
	memset(s, 0, sizeof *s);
	for (int i = 0; i < ndirs; i++, s->n++) {
		const char *parent = i && rnd(2) ? s->e[rnd((size_t)i)].path : "";
		snprintf(s->e[s->n].path, sizeof s->e[0].path, "%s%s %d/", parent,
		         dir_parts[rnd(sizeof dir_parts / sizeof *dir_parts)], ++idx);
	}
	for (int i = ndirs; i < n; i++, s->n++) {
		struct entry *e = &s->e[s->n];
		char dir[512] = "";
		size_t where = rnd(10);
		if (ndirs && where < 5)
			snprintf(dir, sizeof dir, "%s", s->e[rnd((size_t)ndirs)].path);
		else if (where == 9)
			snprintf(dir, sizeof dir, "implicit ü %d/deeper/", ++idx);
		const char *hidden =
		    dir[0] && rnd(6) == 0 ? "." : ""; /* the delete glob keeps top-level dot files */
		snprintf(e->path, sizeof e->path, "%s%s%s %d%s", dir, hidden,
		         name_parts[rnd(sizeof name_parts / sizeof *name_parts)], ++idx,
		         rnd(2) ? ".txt" : "");
		e->size = random_size();
		e->data = random_content(e->size);
	}
}

static void submission_free(struct submission *s)
{
	for (int i = 0; i < s->n; i++)
		free(s->e[i].data);
	s->n = 0;
}

/* What was sent, for failure messages. */
static const char *submission_shape(const struct submission *s)
{
	static char out[16384];
	size_t n = 0;
	out[0] = '\0';
	for (int i = 0; i < s->n && n < sizeof out; i++)
		n += (size_t)snprintf(out + n, sizeof out - n, "\n    %s (%zu bytes)", s->e[i].path,
		                      s->e[i].size);
	return out;
}

/* The PATCH body as CodeOcean sends it: delete the glob of the workspace's entries, copy every
 * entry with base64 content (malloc'd). */
static char *submission_body(const struct submission *s)
{
	json_object *o = json_object_new_object(), *del = json_object_new_array(),
	            *copy = json_object_new_array();
	json_object_array_add(del, json_object_new_string("./*"));
	for (int i = 0; i < s->n; i++) {
		json_object *f = json_object_new_object();
		json_object_object_add(f, "path", json_object_new_string(s->e[i].path));
		if (s->e[i].data) {
			char *b = base64(s->e[i].data, s->e[i].size);
			json_object_object_add(f, "content", json_object_new_string(b));
			free(b);
		}
		json_object_array_add(copy, f);
	}
	json_object_object_add(o, "delete", del);
	json_object_object_add(o, "copy", copy);
	char *body = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return body;
}

static void mkdir_p(const char *dir)
{
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s", dir);
	for (char *s = p + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			mkdir(p, 0755);
			*s = '/';
		}
	mkdir(p, 0755);
}

/* Writes the tree into a fresh local directory and returns HASH_COMMAND's output there. */
static char *submission_expected(const struct submission *s, int number)
{
	char root[PATH_MAX], path[PATH_MAX + 600], cmd[PATH_MAX + 400];
	snprintf(root, sizeof root, "%s/expected-%d", h_tmpdir(), number);
	mkdir(root, 0755);
	for (int i = 0; i < s->n; i++) {
		snprintf(path, sizeof path, "%s/%s", root, s->e[i].path);
		char *slash = strrchr(path, '/');
		*slash = '\0';
		mkdir_p(path);
		*slash = '/';
		if (!s->e[i].data)
			continue;
		FILE *f = fopen(path, "wb");
		CHECK(f && fwrite(s->e[i].data, 1, s->e[i].size, f) == s->e[i].size && fclose(f) == 0,
		      "cannot write %s", path);
	}
	snprintf(cmd, sizeof cmd, "cd %s && { %s; } && cd / && rm -rf %s", root, HASH_COMMAND, root);
	FILE *p = popen(cmd, "r");
	char *out = NULL;
	size_t len = 0, n;
	char buf[8192];
	while (p && (n = fread(buf, 1, sizeof buf, p)) > 0)
		append(&out, &len, buf, n);
	CHECK(p && pclose(p) == 0, "local %s failed", HASH_COMMAND);
	return out ? out : strdup("");
}

static int cmp_lines(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The lines of text sorted byte-wise, one string again (malloc'd): the runner's sort need not
 * use the test's locale. */
static char *sorted_lines(const char *text)
{
	char *copy = strdup(text ? text : ""), *lines[4096], *save = NULL;
	int n = 0;
	for (char *l = strtok_r(copy, "\n", &save); l && n < 4096; l = strtok_r(NULL, "\n", &save))
		lines[n++] = l;
	qsort(lines, (size_t)n, sizeof *lines, cmp_lines);
	char *out = NULL;
	size_t len = 0;
	append(&out, &len, "", 0);
	for (int i = 0; i < n; i++) {
		append(&out, &len, lines[i], strlen(lines[i]));
		append(&out, &len, "\n", 1);
	}
	free(copy);
	return out;
}

/* The first line where a and b differ, for a failure message (static buffer). */
static const char *first_difference(const char *a, const char *b)
{
	static char out[2048];
	int line = 1;
	const char *la = a, *lb = b;
	while (*a && *a == *b) {
		if (*a == '\n')
			line++, la = a + 1, lb = b + 1;
		a++, b++;
	}
	snprintf(out, sizeof out, "line %d: runner '%.*s' | expected '%.*s'", line, (int)strcspn(la, "\n"),
	         la, (int)strcspn(lb, "\n"), lb);
	return out;
}

/* One submission on one runner: PATCH, then the runner's digests against the local ones. */
static void submit_and_verify(const char *runner, int number)
{
	struct submission s;
	struct run r;
	char path[256];
	submission_make(&s);
	char *body = submission_body(&s);
	snprintf(path, sizeof path, "/runners/%s/files", runner);
	struct h_resp resp;
	long status = api(&resp, "PATCH", path, body, -1);
	CHECK(status == 204, "submission %d: PATCH files %ld %.500s; sent:%s", number, status, resp.body,
	      submission_shape(&s));
	h_resp_free(&resp);
	free(body);
	exec_ok(runner, HASH_COMMAND, &r);
	char *got = sorted_lines(unix_lines(r.out)), *local = submission_expected(&s, number);
	char *want = sorted_lines(local);
	CHECK(!strcmp(got, want), "submission %d on %s differs: %s\n  sent:%s", number, runner,
	      first_difference(got, want), submission_shape(&s));
	free(got);
	free(want);
	free(local);
	run_free(&r);
	submission_free(&s);
}

/* ---- setup ---------------------------------------------------------------------------------- */

static char runners[RUNNERS][128];
static char spare[128]; /* for input, listing, download and signals */

static int wait_health(const struct runsh *r, int ms)
{
	char url[256];
	snprintf(url, sizeof url, "%s/health", r->base);
	for (long long end = h_now_ms() + ms;; h_sleep_ms(100)) {
		struct h_resp resp;
		int ok = h_http(&resp, "GET", url, NULL, 0, NULL) == 0 && resp.status == 204;
		h_resp_free(&resp);
		if (ok)
			return 0;
		if (runsh_exited(r, 0) >= 0 || h_now_ms() >= end)
			return -1;
	}
}

/* Waits until run.sh's output holds line; 0, or -1 after ms or when run.sh exited. */
static int wait_output(const struct runsh *r, const char *line, int ms)
{
	for (long long end = h_now_ms() + ms;; h_sleep_ms(100)) {
		if (strstr(runsh_output(r), line))
			return 0;
		if (runsh_exited(r, 0) >= 0 || h_now_ms() >= end)
			return -1;
	}
}

static int setup(void **state)
{
	(void)state;
	char line[256];
	snprintf(sanitizer_dir, sizeof sanitizer_dir, "%s/sanitizer", h_tmpdir());
	mkdir(sanitizer_dir, 0755);
	runsh_start(&stack, 0, NULL);
	snprintf(line, sizeof line, "run: Poseidon listens on http://127.0.0.1:%d/api/v1", stack.port);
	if (wait_output(&stack, line, WAIT_MS) < 0) {
		fprintf(stderr, "[seed %llu] run.sh did not say '%s':\n%s\n", seed, line,
		        runsh_output(&stack));
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	h_stop_all();
	return 0;
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_health_answers_once_run_sh_says_it_listens(void **state)
{
	(void)state;
	struct h_resp r;
	CHECK(api(&r, "GET", "/health", NULL, 0) == 204, "GET /health: %ld %s", r.status, r.body);
	h_resp_free(&r);
}

static void test_environment_and_claims(void **state)
{
	(void)state;
	char path[64], body[256];
	snprintf(path, sizeof path, "/execution-environments/%d", ENV_ID);
	snprintf(body, sizeof body,
	         "{\"prewarmingPoolSize\":%d,\"cpuLimit\":100,\"memoryLimit\":256,\"image\":\"demo\","
	         "\"networkAccess\":false,\"exposedPorts\":null}",
	         POOL);
	long status = api_call("PUT", path, body, NULL, 0);
	CHECK(status == 201 || status == 204, "PUT environment: %ld", status);
	for (int i = 0; i < RUNNERS; i++)
		claim(runners[i]);
	claim(spare);
}

static void test_submissions_arrive_byte_exact(void **state)
{
	(void)state;
	long long t0 = h_now_ms();
	for (int i = 0; i < SUBMISSIONS; i++)
		submit_and_verify(runners[i % RUNNERS], i);
	print_message("  %d submissions on %d runners in %.1f s\n", SUBMISSIONS, RUNNERS,
	              (double)(h_now_ms() - t0) / 1000);
}

static void test_input_reaches_the_program(void **state)
{
	(void)state;
	struct run r;
	char *body = exec_body("read -r line; echo \"got: $line\" | tr a-z A-Z", 0);
	exec_run(spare, body, "hello world\n", &r);
	free(body);
	CHECK(!strcmp(r.end, "{\"type\":\"exit\",\"data\":0}") && r.close_code == 1000, "ended with '%s'",
	      r.end);
	/* the terminal echoes the input, then the program answers */
	CHECK(r.out && !strcmp(r.out, "hello world\r\nGOT: HELLO WORLD\r\n"), "stdout '%s'",
	      r.out ? r.out : "");
	run_free(&r);
}

/* The entry of a listing named name, or NULL. */
static json_object *listed(json_object *listing, const char *name)
{
	json_object *files, *v;
	if (!json_object_object_get_ex(listing, "files", &files))
		return NULL;
	for (size_t i = 0; i < json_object_array_length(files); i++) {
		json_object *f = json_object_array_get_idx(files, i);
		if (json_object_object_get_ex(f, "name", &v) && !strcmp(json_object_get_string(v), name))
			return f;
	}
	return NULL;
}

static void check_entry(json_object *listing, const char *name, const char *type, long long size)
{
	json_object *f = listed(listing, name), *t, *s;
	CHECK(f, "no '%s' in the listing %s", name, json_object_to_json_string(listing));
	CHECK(json_object_object_get_ex(f, "entryType", &t) && !strcmp(json_object_get_string(t), type),
	      "%s: %s", name, json_object_to_json_string(f));
	if (size >= 0)
		CHECK(json_object_object_get_ex(f, "size", &s) && json_object_get_int64(s) == size, "%s: %s",
		      name, json_object_to_json_string(f));
}

static json_object *list_files(const char *runner, const char *dir, int recursive)
{
	char path[1024], q[512], out[65536];
	url_encode(q, sizeof q, dir);
	snprintf(path, sizeof path, "/runners/%s/files?path=%s&recursive=%s&privilegedExecution=false",
	         runner, q, recursive ? "true" : "false");
	long status = api_call("GET", path, NULL, out, sizeof out);
	CHECK(status == 200, "listing %s: %ld %s", dir, status, out);
	json_object *o = json_tokener_parse(out);
	CHECK(o, "listing is no JSON: %s", out);
	return o;
}

static void test_listing_and_download(void **state)
{
	(void)state;
	struct submission s = {.n = 3};
	snprintf(s.e[0].path, sizeof s.e[0].path, "dir ✓/");
	snprintf(s.e[1].path, sizeof s.e[1].path, "dir ✓/日本 語.txt");
	snprintf(s.e[2].path, sizeof s.e[2].path, "data ü.bin");
	s.e[1].size = 1234;
	s.e[2].size = 77777; /* odd, and no multiple of 512 */
	for (int i = 1; i < 3; i++) {
		s.e[i].data = random_content(s.e[i].size);
		s.e[i].data[0] = 0xff; /* binary whatever random_content chose */
	}
	char path[512], q[256], out[256];
	char *body = submission_body(&s);
	snprintf(path, sizeof path, "/runners/%s/files", spare);
	CHECK(api_call("PATCH", path, body, out, sizeof out) == 204, "PATCH: %s", out);
	free(body);

	json_object *all = list_files(spare, "./", 1);
	check_entry(all, "./dir ✓", "d", -1);
	check_entry(all, "./dir ✓/日本 語.txt", "-", 1234);
	check_entry(all, "./data ü.bin", "-", 77777);
	json_object_put(all);
	json_object *dir = list_files(spare, "dir ✓/", 0);
	check_entry(dir, "日本 語.txt", "-", 1234);
	json_object_put(dir);

	struct h_resp r;
	char length[32];
	url_encode(q, sizeof q, "data ü.bin");
	snprintf(path, sizeof path, "/runners/%s/files/raw?path=%s&privilegedExecution=false", spare, q);
	CHECK(api(&r, "GET", path, NULL, 0) == 200, "download: %ld %s", r.status, r.body);
	CHECK(r.len == 77777 && !memcmp(r.body, s.e[2].data, 77777), "download: %zu bytes, differ", r.len);
	CHECK(h_header(&r, "Content-Length", length, sizeof length) && !strcmp(length, "77777"),
	      "Content-Length %s", length);
	h_resp_free(&r);
	submission_free(&s);
}

static void test_programs_start_without_ignored_or_blocked_signals(void **state)
{
	(void)state;
	struct run r;
	exec_ok(spare, "grep -E \"^Sig(Ign|Blk)\" /proc/self/status", &r);
	unix_lines(r.out);
	CHECK(r.out && strstr(r.out, "SigIgn:\t0000000000000000\n"),
	      "a program starts with ignored signals:\n%s", r.out ? r.out : "");
	CHECK(strstr(r.out, "SigBlk:\t0000000000000000\n"), "a program starts with blocked signals:\n%s",
	      r.out);
	run_free(&r);
}

/* The program of the QUIT tests: says ready, then loops until SIGQUIT, whose trap writes file. */
static char *quit_trap_body(const char *file, int time_limit)
{
	char cmd[256];
	snprintf(cmd, sizeof cmd,
	         "trap \"echo trapped > %s; exit 3\" QUIT; echo ready; while true; do sleep 0.2; done", file);
	return exec_body(cmd, time_limit);
}

/* Waits for the trap's file to hold "trapped" (it runs as the program gets 0x1C on its terminal). */
static void await_trapped(const char *runner, const char *file)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "cat %s", file);
	char *body = exec_body(cmd, 0);
	struct run r = {0};
	for (long long end = h_now_ms() + 5000;; h_sleep_ms(100)) {
		run_free(&r);
		exec_run(runner, body, NULL, &r);
		if (!strcmp(r.end, "{\"type\":\"exit\",\"data\":0}") || h_now_ms() >= end)
			break;
	}
	free(body);
	CHECK(!strcmp(r.end, "{\"type\":\"exit\",\"data\":0}") && r.out && !strcmp(r.out, "trapped\r\n"),
	      "%s: ended '%s', stdout '%s', stderr '%s'", cmd, r.end, r.out ? r.out : "", r.err ? r.err : "");
	run_free(&r);
}

/* SURVIVE_MS after the signal: the runner still works, its files are there, the program is gone. */
static void assert_runner_survived(const char *runner, const char *file, long long signalled_ms)
{
	long long left = signalled_ms + SURVIVE_MS - h_now_ms();
	if (left > 0)
		h_sleep_ms((int)left); /* waiting for something not to happen: the destruction at 3 s */
	char path[256], cmd[256];
	snprintf(path, sizeof path, "/runners/%s/files?path=.%%2F&recursive=false", runner);
	long status = api_call("GET", path, NULL, NULL, 0);
	CHECK(status == 200, "the runner is gone after the program trapped SIGQUIT: GET files %ld", status);
	struct run r;
	snprintf(cmd, sizeof cmd, "cat %s; ps -eo args", file);
	exec_ok(runner, cmd, &r);
	CHECK(r.out && !strncmp(r.out, "trapped\r\n", 9), "stdout '%s'", r.out ? r.out : "");
	CHECK(!strstr(r.out + 9, file), "the program still runs:\n%s", r.out);
	run_free(&r);
}

static void test_quit_trap_runs_on_time_limit_and_runner_survives(void **state)
{
	(void)state;
	struct run r = {.close_code = -1};
	struct wsc c;
	char runner[128];
	claim(runner); /* its own: a failure here does not take the next test's runner */
	char *body = quit_trap_body("/tmp/q1", 1);
	exec_open(runner, body, &c);
	free(body);
	exec_read(&c, &r, EXEC_MS, NULL);
	long long signalled = h_now_ms();
	wsc_close(&c);
	CHECK(!strcmp(r.end, "{\"type\":\"timeout\"}") && r.close_code == 1000 && !r.bad,
	      "ended with '%s', close %d, %d bad messages, stdout '%s'", r.end, r.close_code, r.bad,
	      r.out ? r.out : "");
	CHECK(r.out && !strcmp(r.out, "ready\r\n"), "stdout '%s'", r.out ? r.out : "");
	run_free(&r);
	await_trapped(runner, "/tmp/q1");
	assert_runner_survived(runner, "/tmp/q1", signalled);
}

static void test_quit_trap_runs_on_client_close_and_runner_survives(void **state)
{
	(void)state;
	struct run r = {.close_code = -1};
	struct wsc c;
	char runner[128];
	claim(runner);
	char *body = quit_trap_body("/tmp/q2", 0);
	exec_open(runner, body, &c);
	free(body);
	CHECK(exec_read(&c, &r, EXEC_MS, "ready\r\n") == 1, "no ready; ended '%s'", r.end);
	h_sleep_ms(500); /* the program runs its loop a while */
	CHECK(wsc_send_close(&c, 1000) == 0, "cannot send close");
	wsc_close(&c);
	long long signalled = h_now_ms();
	run_free(&r);
	await_trapped(runner, "/tmp/q2");
	assert_runner_survived(runner, "/tmp/q2", signalled);
}

/* Starts a second run.sh (port 0 / rundir NULL: its own), which must refuse within REFUSE_MS
 * with a line containing want and leave no process behind. */
static void assert_second_run_sh_refused(int port, const char *rundir, const char *want)
{
	struct runsh second;
	char members[1024];
	long long t0 = h_now_ms();
	runsh_start(&second, port, rundir);
	int status = runsh_exited(&second, REFUSE_MS);
	const char *out = runsh_output(&second);
	CHECK(status >= 0, "the second run.sh still runs after %d ms:\n%s", REFUSE_MS, out);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) != 0, "the second run.sh: status %d:\n%s", status,
	      out);
	CHECK(strstr(out, want), "no '%s' in the second run.sh's output:\n%s", want, out);
	CHECK(group_members(second.pid, members, sizeof members) == 0, "left in its process group:%s",
	      members);
	CHECK(orphans(members, sizeof members) == 0, "left behind, reparented to the test:%s", members);
	print_message("  refused in %lld ms: %s", h_now_ms() - t0, out);
	h_stop(second.pid); /* reaps it */
	CHECK(runsh_exited(&stack, 0) < 0 && wait_health(&stack, 0) == 0,
	      "the first stack is no longer up:\n%s", runsh_output(&stack));
}

static void test_second_run_sh_on_a_taken_port_is_refused(void **state)
{
	(void)state;
	char want[64];
	snprintf(want, sizeof want, "127.0.0.1:%d is already in use", stack.port);
	assert_second_run_sh_refused(stack.port, NULL, want);
}

static void test_second_run_sh_in_the_same_run_dir_is_refused(void **state)
{
	(void)state;
	char want[PATH_MAX + 64];
	snprintf(want, sizeof want, "another 'make run' is using %s", stack.rundir);
	assert_second_run_sh_refused(0, stack.rundir, want);
}

static void test_ctrl_c_stops_everything_run_sh_started(void **state)
{
	(void)state;
	static struct proc before[1024];
	int n = proc_descendants(stack.pid, before, 1024), sandboxes = 0;
	for (int i = 0; i < n; i++)
		sandboxes += !strcmp(before[i].comm, "bwrap");
	CHECK(sandboxes >= POOL, "only %d bwrap processes among run.sh's %d descendants", sandboxes, n);
	long long t0 = h_now_ms();
	kill(-stack.pid, SIGINT); /* what a terminal's Ctrl-C does to the foreground job */
	int status = runsh_exited(&stack, STOP_MS);
	long long ms = h_now_ms() - t0;
	char left[4096] = "";
	for (int i = 0; i < n; i++)
		if (proc_alive(&before[i])) {
			size_t l = strlen(left);
			snprintf(left + l, sizeof left - l, " %d(%s)", (int)before[i].pid, before[i].comm);
			kill(before[i].pid, SIGKILL); /* a failing run leaves nothing on the machine */
		}
	const char *out = runsh_output(&stack);
	CHECK(status >= 0, "run.sh still runs %d ms after SIGINT:\n%s", STOP_MS, out);
	CHECK(!left[0], "still running after run.sh exited %lld ms after SIGINT with status 0x%x (of %d "
			"descendants):%s\nrun.sh said:\n%s",
	      ms, status, n, left, runsh_lines(&stack));
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "run.sh exited with status 0x%x:\n%s", status,
	      out);
	print_message("  %d processes (%d bwrap) stopped in %lld ms\n", n, sandboxes, ms);
	h_stop(stack.pid); /* reaps it */
}

static void test_no_sanitizer_reports(void **state)
{
	(void)state;
	h_stop_all(); /* run.sh, if a test before did not stop it */
	CHECK(h_sanitizer_reports(sanitizer_dir) == 0, "sanitizer reports in %s (printed above)",
	      sanitizer_dir);
}

int main(void)
{
	/* as a terminal starts `make run`: default dispositions (the harness handles INT and TERM,
	 * which exec resets to the default in the children) */
	signal(SIGQUIT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	const char *s = getenv("POSEIDON_TEST_SEED");
	seed = s && *s ? strtoull(s, NULL, 10) : (unsigned long long)time(NULL);
	rng_state = seed;
	printf("test_make_run: seed %llu (POSEIDON_TEST_SEED=%llu repeats it)\n", seed, seed);
	fflush(stdout);
	long long t0 = h_now_ms();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_health_answers_once_run_sh_says_it_listens),
	    cmocka_unit_test(test_environment_and_claims),
	    cmocka_unit_test(test_submissions_arrive_byte_exact),
	    cmocka_unit_test(test_input_reaches_the_program),
	    cmocka_unit_test(test_listing_and_download),
	    cmocka_unit_test(test_programs_start_without_ignored_or_blocked_signals),
	    cmocka_unit_test(test_quit_trap_runs_on_time_limit_and_runner_survives),
	    cmocka_unit_test(test_quit_trap_runs_on_client_close_and_runner_survives),
	    cmocka_unit_test(test_second_run_sh_on_a_taken_port_is_refused),
	    cmocka_unit_test(test_second_run_sh_in_the_same_run_dir_is_refused),
	    cmocka_unit_test(test_ctrl_c_stops_everything_run_sh_started),
	    cmocka_unit_test(test_no_sanitizer_reports),
	};
	int failed = cmocka_run_group_tests(tests, setup, teardown);
	printf("test_make_run: seed %llu, %.1f s\n", seed, (double)(h_now_ms() - t0) / 1000);
	return failed;
}
