/* Fault injection (issue 8): scripted faults against the real stack, each followed by an
 * invariant check: every runner id of the environment is in exactly one of pool, starting or used
 * (or gone from both Redis and Nomad), Redis and Nomad agree on the set of runners, no runner was
 * handed to two clients, and the pool is back at its size, within a bound. Prints a table:
 * scenario, operations, runners lost, runners duplicated, time to heal.
 * The short version runs in `make test`; `make test-fault` sets POSEIDON_FAULT_FULL=1 for longer
 * storms, the 30 s Nomad outage and three gateway kills after longer streams. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "nomad.h"
#include "store.h"

#define ENV           21
#define POOL          6
#define HEAL_BOUND_MS 30000

static struct h_stack st;
static struct nomad *nomad;
static pid_t wsgate;
static int full;
static int proxy_port;
static const char *refill_env_fmt = "POSEIDON_NOMAD_PORT=%d";

/* ---- a TCP proxy in front of nomad-local for the refill daemon, able to cut streams ---------- */

static atomic_int cut_now;
static int proxy_listen = -1;

struct pair {
	int a, b;
};

static void *pump(void *arg)
{
	struct pair *p = arg;
	char buf[16384];
	struct pollfd fds[2] = {{p->a, POLLIN, 0}, {p->b, POLLIN, 0}};
	for (;;) {
		if (poll(fds, 2, 50) < 0 && errno != EINTR)
			break;
		if ((fds[1].revents & POLLIN) && atomic_exchange(&cut_now, 0)) {
			/* cut in the middle of what Nomad is sending: half of this chunk, then nothing */
			ssize_t n = read(p->b, buf, sizeof buf);
			if (n > 1 && write(p->a, buf, (size_t)n / 2) < 0)
				break;
			break;
		}
		int done = 0;
		for (int i = 0; i < 2 && !done; i++) {
			if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t n = read(fds[i].fd, buf, sizeof buf);
			if (n <= 0 || write(fds[1 - i].fd, buf, (size_t)n) != n)
				done = 1;
		}
		if (done)
			break;
	}
	close(p->a);
	close(p->b);
	free(p);
	return NULL;
}

static void *proxy_accept(void *arg)
{
	(void)arg;
	for (;;) {
		int c = accept(proxy_listen, NULL, NULL);
		if (c < 0)
			continue;
		int s = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a = {.sin_family = AF_INET,
		                        .sin_port = htons((uint16_t)st.nomad.port),
		                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
			close(c);
			close(s);
			continue;
		}
		struct pair *p = malloc(sizeof *p);
		p->a = c;
		p->b = s;
		pthread_t t;
		pthread_create(&t, NULL, pump, p);
		pthread_detach(t);
	}
	return NULL;
}

static void start_proxy(void)
{
	proxy_port = h_free_port();
	proxy_listen = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(proxy_listen, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)proxy_port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(proxy_listen, (struct sockaddr *)&a, sizeof a), 0);
	listen(proxy_listen, 64);
	pthread_t t;
	pthread_create(&t, NULL, proxy_accept, NULL);
	pthread_detach(t);
}

static pid_t start_refill(void)
{
	static char port[64];
	snprintf(port, sizeof port, refill_env_fmt, proxy_port);
	const char *env[] = {port, "POSEIDON_RECONCILE_INTERVAL=3", "POSEIDON_REFILL_TICKMS=100", NULL};
	return h_stack_start_refill(&st, env);
}

/* ---- the invariant checker --------------------------------------------------------------------- */

struct verdict {
	int ok;
	long long heal_ms;
	int lost, duplicated;
	char why[256];
};

/* Is every runner of ENV in exactly one place, known to both Redis and Nomad, and the pool full?
 * held: ids clients hold right now (must be in used); returns 1 when all holds. */
static int invariants(char (*held)[64], int nheld, struct verdict *v)
{
	struct nomad_job_stub *stubs = NULL;
	size_t njobs = 0;
	struct perr e;
	char prefix[16];
	snprintf(prefix, sizeof prefix, "%d-", ENV);
	if (nomad_jobs_list(nomad, prefix, &stubs, &njobs, &e) < 0)
		return snprintf(v->why, sizeof v->why, "nomad: %s", e.msg), 0;
	char ids[512][64];
	int n = 0;
	FILE *p;
	char cmd[256], line[128];
	snprintf(cmd, sizeof cmd,
	         "redis-cli -p %d --raw EVAL \"local o = redis.call('LRANGE', KEYS[1], 0, -1) "
	         "for _, s in ipairs({KEYS[2], KEYS[3]}) do for _, x in ipairs(redis.call('SMEMBERS', s)) do "
	         "o[#o+1] = x end end "
	         "return o\" 3 poseidon:pool:%d poseidon:starting:%d poseidon:used:%d",
	         st.redis.port, ENV, ENV, ENV);
	p = popen(cmd, "r");
	while (p && n < 512 && fgets(line, sizeof line, p)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] && strcmp(line, "(empty array)") != 0)
			snprintf(ids[n++], sizeof ids[0], "%s", line);
	}
	if (p)
		pclose(p);
	int ok = 1;
	v->duplicated = 0;
	for (int i = 0; i < n && ok; i++)
		for (int j = i + 1; j < n; j++)
			if (strcmp(ids[i], ids[j]) == 0) {
				v->duplicated++;
				ok = 0, snprintf(v->why, sizeof v->why, "%s is in two places", ids[i]);
			}
	int live = 0;
	for (size_t k = 0; k < njobs; k++)
		if (strcmp(stubs[k].status, "dead") != 0)
			live++;
	if (ok && live != n)
		ok = 0,
		snprintf(v->why, sizeof v->why, "Nomad has %d runner jobs, Redis %d runners", live, n);
	for (int i = 0; i < n && ok; i++) {
		int found = 0;
		for (size_t k = 0; k < njobs && !found; k++)
			found = strcmp(stubs[k].id, ids[i]) == 0 && strcmp(stubs[k].status, "dead") != 0;
		if (!found)
			ok = 0, snprintf(v->why, sizeof v->why, "%s is in Redis, not in Nomad", ids[i]);
	}
	v->lost = 0;
	for (int i = 0; i < nheld; i++)
		if (strcmp(h_redis_cli(&st.redis, "SISMEMBER poseidon:used:%d %s", ENV, held[i]), "1") != 0)
			v->lost++;
	if (v->lost)
		ok = 0, snprintf(v->why, sizeof v->why, "%d runners held by clients are gone", v->lost);
	if (ok && (atoi(h_redis_cli(&st.redis, "LLEN poseidon:pool:%d", ENV)) != POOL ||
	           atoi(h_redis_cli(&st.redis, "SCARD poseidon:starting:%d", ENV)) != 0))
		ok = 0, snprintf(v->why, sizeof v->why, "pool not full yet");
	free(stubs);
	return ok;
}

static struct verdict heal(char (*held)[64], int nheld)
{
	struct verdict v = {0};
	long long t0 = h_now_ms();
	while (!(v.ok = invariants(held, nheld, &v)) && h_now_ms() - t0 < HEAL_BOUND_MS)
		h_sleep_ms(200);
	v.heal_ms = h_now_ms() - t0;
	return v;
}

static void row(const char *scenario, long ops, const struct verdict *v)
{
	printf("  | %-44s | %6ld | %4d | %4d | %6.1f s | %s\n", scenario, ops, v->lost, v->duplicated,
	       v->heal_ms / 1000.0, v->ok ? "ok" : v->why);
	fflush(stdout);
}

/* ---- a claim/delete storm from client threads -------------------------------------------------- */

static atomic_int storm_on;
static atomic_long storm_ops;
static pthread_mutex_t held_mu = PTHREAD_MUTEX_INITIALIZER;
static char held[256][64];
static int uncertain[256]; /* held[i]'s delete got no answer: it may have happened */
static int nheld, vanished;
static int handed_twice;

static void hold(const char *id)
{
	pthread_mutex_lock(&held_mu);
	for (int i = 0; i < nheld; i++)
		if (strcmp(held[i], id) == 0)
			handed_twice++;
	if (nheld < 256) {
		uncertain[nheld] = 0;
		snprintf(held[nheld++], sizeof held[0], "%s", id);
	}
	pthread_mutex_unlock(&held_mu);
}

static void release(const char *id)
{
	pthread_mutex_lock(&held_mu);
	for (int i = 0; i < nheld; i++)
		if (strcmp(held[i], id) == 0) {
			memmove(held[i], held[nheld - 1], sizeof held[0]);
			uncertain[i] = uncertain[nheld - 1];
			nheld--;
			break;
		}
	pthread_mutex_unlock(&held_mu);
}

static void mark_uncertain(const char *id)
{
	pthread_mutex_lock(&held_mu);
	for (int i = 0; i < nheld; i++)
		if (strcmp(held[i], id) == 0)
			uncertain[i] = 1;
	pthread_mutex_unlock(&held_mu);
}

static void *storm_client(void *arg)
{
	(void)arg;
	char url[256], id[64];
	while (storm_on) {
		struct h_resp r;
		snprintf(url, sizeof url, "%s/runners", st.base);
		if (h_http(&r, "POST", url, "{\"executionEnvironmentId\":21}", -1, NULL) == 0 &&
		    r.status == 200 && sscanf(r.body, "{\"runnerId\":\"%63[^\"]\"", id) == 1) {
			h_resp_free(&r);
			hold(id);
			storm_ops++;
			snprintf(url, sizeof url, "%s/runners/%s", st.base, id);
			/* a delete that fails (a killed worker, Nomad away) leaves the runner held, and
			 * whether it happened is unknown */
			if (h_http(&r, "DELETE", url, NULL, -1, NULL) == 0 &&
			    (r.status == 204 || r.status == 410))
				release(id);
			else
				mark_uncertain(id);
			storm_ops++;
		} else {
			h_sleep_ms(20);
		}
		h_resp_free(&r);
	}
	return NULL;
}

static void storm(int seconds, void (*fault)(void), int every_ms)
{
	pthread_t t[6];
	storm_on = 1;
	for (int i = 0; i < 6; i++)
		pthread_create(&t[i], NULL, storm_client, NULL);
	for (long long end = h_now_ms() + seconds * 1000LL; h_now_ms() < end;) {
		h_sleep_ms(every_ms);
		if (fault)
			fault();
	}
	storm_on = 0;
	for (int i = 0; i < 6; i++)
		pthread_join(t[i], NULL);
}

/* Deletes what clients still hold (their delete failed during the fault), as CodeOcean would retry:
 * until an answer says what happened (204, or 410 when the lost answer's delete had happened),
 * for up to 20 s while killed workers are being replaced. */
static void release_all(void)
{
	for (long long end = h_now_ms() + 20000; nheld > 0 && h_now_ms() < end;) {
		for (int i = nheld - 1; i >= 0; i--) {
			char url[256];
			struct h_resp r;
			snprintf(url, sizeof url, "%s/runners/%s", st.base, held[i]);
			if (h_http(&r, "DELETE", url, NULL, -1, NULL) == 0 && (r.status == 204 || r.status == 410)) {
				/* 410 for a runner nobody tried to delete: it vanished under its user */
				vanished += r.status == 410 && !uncertain[i];
				release(held[i]);
			}
			h_resp_free(&r);
		}
		if (nheld > 0)
			h_sleep_ms(200);
	}
}

/* ---- scenarios ------------------------------------------------------------------------------- */

static int setup(void **state)
{
	(void)state;
	full = getenv("POSEIDON_FAULT_FULL") && strcmp(getenv("POSEIDON_FAULT_FULL"), "1") == 0;
	struct h_front_opts o = {.workers = 4};
	if (h_redis_start(&st.redis) < 0 || h_stack_start_nomad(&st) < 0 || h_stack_start(&st, &o) < 0)
		return -1;
	start_proxy();
	if (start_refill() < 0 || (wsgate = h_stack_start_wsgate(&st)) < 0)
		return -1;
	struct config c;
	struct nomad_endpoint ep;
	h_stack_config(&st, &c);
	nomad_endpoint_from_config(&ep, &c);
	nomad = nomad_open(&ep);
	char url[256];
	struct h_resp r;
	snprintf(url, sizeof url, "%s/execution-environments/%d", st.base, ENV);
	h_http(&r, "PUT", url,
	       "{\"prewarmingPoolSize\":6,\"cpuLimit\":20,\"memoryLimit\":100,\"image\":\"img\"}", -1, NULL);
	h_resp_free(&r);
	struct verdict v = heal(NULL, 0);
	if (!v.ok)
		fprintf(stderr, "the stack did not settle: %s (logs in %s)\n", v.why, h_tmpdir());
	printf("  | %-44s | %6s | %4s | %4s | %8s | %s\n", "scenario", "ops", "lost", "dup", "heal",
	       "invariants");
	return v.ok ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	nomad_close(nomad);
	if (wsgate > 0)
		h_stop(wsgate);
	h_stack_stop(&st);
	return 0;
}

static void kill_a_worker(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "pkill -KILL -n -g %d -f poseidon-api >/dev/null 2>&1", (int)st.lighttpd);
	if (system(cmd) != 0)
		return;
}

static void check(const char *scenario, long ops)
{
	release_all();
	struct verdict v = heal(held, nheld);
	v.duplicated += handed_twice;
	if (vanished) {
		v.lost += vanished;
		v.ok = 0;
		snprintf(v.why, sizeof v.why, "%d runners vanished under their users", vanished);
	}
	vanished = 0;
	row(scenario, ops, &v);
	assert_true(v.ok);
	assert_int_equal(handed_twice, 0);
	storm_ops = 0;
}

static void test_workers_killed_during_claims_and_deletes(void **state)
{
	(void)state;
	storm(full ? 30 : 5, kill_a_worker, 300);
	check("SIGKILL of workers in a claim/delete storm", storm_ops);
}

static void test_refill_killed_mid_refill(void **state)
{
	(void)state;
	/* drain the pool so that the daemon is in the middle of refilling, then kill it */
	for (int i = 0; i < POOL; i++) {
		char url[256], id[64];
		struct h_resp r;
		snprintf(url, sizeof url, "%s/runners", st.base);
		if (h_http(&r, "POST", url, "{\"executionEnvironmentId\":21}", -1, NULL) == 0 &&
		    sscanf(r.body, "{\"runnerId\":\"%63[^\"]\"", id) == 1)
			hold(id);
		h_resp_free(&r);
	}
	h_sleep_ms(150);
	h_kill(st.refill);
	st.refill = 0;
	h_sleep_ms(500);
	start_refill();
	check("SIGKILL of poseidon-refill mid-refill", POOL);
}

static void restart_redis(void)
{
	static int done;
	if (!done++)
		h_redis_restart(&st.redis);
}

static void test_redis_restart_under_load(void **state)
{
	(void)state;
	storm(full ? 20 : 5, restart_redis, 1000);
	check("Redis restart (appendonly) under load", storm_ops);
}

static void test_nomad_restart_and_outage(void **state)
{
	(void)state;
	int outage = full ? 30 : 5;
	h_nomad_stop(&st.nomad);
	storm(outage, NULL, 200);
	long ops = storm_ops;
	assert_int_equal(h_stack_start_nomad(&st), 0);
	char name[64];
	snprintf(name, sizeof name, "nomad-local down %d s, restarted", outage);
	check(name, ops);
}

static void test_allocations_killed_behind_nomads_back(void **state)
{
	(void)state;
	int killed = 0;
	char victims[3][64];
	for (int i = 0; i < 3; i++) {
		char alloc[64], cmd[512];
		snprintf(victims[i], sizeof victims[i], "%s",
		         h_redis_cli(&st.redis, "LINDEX poseidon:pool:%d %d", ENV, i));
		snprintf(alloc, sizeof alloc, "%s",
		         h_redis_cli(&st.redis, "HGET poseidon:runner:%s allocId", victims[i]));
		snprintf(cmd, sizeof cmd,
		         /* a short-lived process may be gone before the kill: success is finding the
		          * allocation's processes, not every kill landing */
		         "p=$(for f in $(find /sys/fs/cgroup -type d -name '*%s*' 2>/dev/null); do cat "
		         "$f/cgroup.procs; done | sort -u); [ -n \"$p\" ] && { kill -9 $p 2>/dev/null; true; }",
		         alloc);
		killed += alloc[0] && system(cmd) == 0;
	}
	assert_int_equal(killed, 3);
	/* healing starts when the daemon notices: wait until the victims are out of Redis */
	for (long long t0 = h_now_ms(); h_now_ms() - t0 < HEAL_BOUND_MS; h_sleep_ms(100)) {
		int left = 0;
		for (int i = 0; i < 3; i++)
			left +=
			    strcmp(h_redis_cli(&st.redis, "EXISTS poseidon:runner:%s", victims[i]), "1") == 0;
		if (!left)
			break;
	}
	for (int i = 0; i < 3; i++)
		assert_string_equal(h_redis_cli(&st.redis, "EXISTS poseidon:runner:%s", victims[i]), "0");
	check("3 allocations killed behind Nomad's back", 3);
}

static void test_event_stream_cut_mid_line(void **state)
{
	(void)state;
	/* claim the pool empty, then cut the daemon's connections to Nomad half-way through a chunk,
	 * several times, while it refills */
	for (int i = 0; i < POOL; i++) {
		char url[256], id[64];
		struct h_resp r;
		snprintf(url, sizeof url, "%s/runners", st.base);
		if (h_http(&r, "POST", url, "{\"executionEnvironmentId\":21}", -1, NULL) == 0 &&
		    sscanf(r.body, "{\"runnerId\":\"%63[^\"]\"", id) == 1)
			hold(id);
		h_resp_free(&r);
	}
	for (int i = 0; i < (full ? 20 : 5); i++) {
		cut_now = 1;
		h_sleep_ms(200);
	}
	check("event stream cut mid-line, 5 times", POOL);
}

/* ---- a gateway killed under live executions ---------------------------------------------------- */

#define LIVE           20 /* executions streaming when the gateway dies */
#define LIVE_RUNNERS   5  /* 4 executions each; the last runner has a short inactivity timeout */
#define CLOSE_BOUND_MS 5000
#define LOOP_CMD       "echo started; while :; do echo tick; sleep 0.2; done"
/* Counts the processes of LOOP_CMD in a runner (its own command line spells the marker "ti""ck", so
 * it does not count itself) and all its processes, and lists /tmp; JSON-escaped. A loop's child
 * between its fork and the exec of `sleep` still carries the loop's command line: a process whose
 * parent carries the marker too is that child, not another loop. A runner at rest runs 2 (bwrap
 * and the task's sleep); the scan adds 2 (its bash and the cat of its stderr session). */
#define SCAN_CMD                                                                                             \
	"n=0; m=0; for p in /proc/[1-9]*; do mapfile -d \\\"\\\" -t a < $p/cmdline 2>/dev/null || "          \
	"continue; "                                                                                         \
	"m=$((m+1)); case \\\"${a[*]}\\\" in *ti\\\"\\\"ck*) read -r _ _ _ pp _ < $p/stat 2>/dev/null; "     \
	"mapfile -d \\\"\\\" -t b < /proc/$pp/cmdline 2>/dev/null; case \\\"${b[*]}\\\" in *ti\\\"\\\"ck*) ;; "  \
	"*) n=$((n+1));; esac;; esac; done; "                                                                \
	"echo left=$n procs=$m; ls -A /tmp"

static int tcp_closes, close_frames; /* how the clients of the last round saw their end */
static atomic_int live_abort;        /* a check failed before the kill: clients hang up */

struct live {
	pthread_t thread;
	const char *runner;
	atomic_int started; /* start and the first output seen */
	atomic_int ended;   /* the connection ended: 1 TCP close, 8 close frame, -1 not within the bound */
	int close_code;     /* of a close frame, 0 when none */
	long long ended_ms; /* h_now_ms() at the end */
	char why[128];
};

static void *live_client(void *arg)
{
	struct live *l = arg;
	char url[256], pq[512];
	struct h_resp r;
	struct h_ws w;
	snprintf(url, sizeof url, "%s/runners/%s/execute", st.base, l->runner);
	if (h_http(&r, "POST", url, "{\"command\":\"" LOOP_CMD "\"}", -1, NULL) < 0 || r.status != 200 ||
	    !strstr(r.body, "ws://")) {
		snprintf(l->why, sizeof l->why, "execute: %ld %s", r.status, r.body ? r.body : "");
		h_resp_free(&r);
		l->ended = -1;
		return NULL;
	}
	char *u = strchr(strstr(r.body, "ws://") + 5, '/');
	snprintf(pq, sizeof pq, "%.*s", (int)strcspn(u, "\""), u);
	h_resp_free(&r);
	int status = h_ws_connect(&w, st.port, pq, NULL, NULL, 0);
	if (status != 101) {
		snprintf(l->why, sizeof l->why, "connect: %d", status);
		h_ws_close(&w);
		l->ended = -1;
		return NULL;
	}
	int saw_start = 0;
	for (long long give_up = h_now_ms() + 60000; !l->ended && !live_abort;) {
		char *d;
		size_t n;
		int op = h_ws_recv(&w, 500, &d, &n);
		if (op == 1 && strstr(d, "\"type\":\"start\""))
			saw_start = 1;
		else if (op == 1 && saw_start && strstr(d, "\"type\":\"stdout\""))
			l->started = 1;
		else if (op == 8) {
			l->close_code = n >= 2 ? ((unsigned char)d[0] << 8 | (unsigned char)d[1]) : 0;
			l->ended_ms = h_now_ms();
			l->ended = 8;
		} else if (op == 0) {
			l->ended_ms = h_now_ms();
			l->ended = 1;
		} else if (op < 0 && h_now_ms() > give_up) {
			snprintf(l->why, sizeof l->why, "still open after 60 s");
			l->ended = -1;
		}
		free(d);
	}
	h_ws_close(&w);
	return NULL;
}

/* Runs cmd (JSON-escaped) on runner through lighttpd and the gateway; its stdout into out.
 * Returns the exit code, or -1 when there was no exit message (retries lighttpd's 503 while it
 * still holds the restarted gateway for down). */
static int run_once(const char *runner, const char *cmd, char *out, size_t cap)
{
	char url[256], body[1024], pq[512];
	struct h_resp r;
	struct h_ws w;
	out[0] = '\0';
	snprintf(url, sizeof url, "%s/runners/%s/execute", st.base, runner);
	snprintf(body, sizeof body, "{\"command\":\"%s\",\"privilegedExecution\":true}", cmd);
	if (h_http(&r, "POST", url, body, -1, NULL) < 0 || r.status != 200 || !strstr(r.body, "ws://")) {
		h_resp_free(&r);
		return -1;
	}
	char *u = strchr(strstr(r.body, "ws://") + 5, '/');
	snprintf(pq, sizeof pq, "%.*s", (int)strcspn(u, "\""), u);
	h_resp_free(&r);
	int status;
	for (long long t0 = h_now_ms();
	     (status = h_ws_connect(&w, st.port, pq, NULL, NULL, 0)) == 503 && h_now_ms() - t0 < 6000;
	     h_sleep_ms(100))
		h_ws_close(&w);
	int code = -1;
	for (int op = status == 101 ? 1 : -1; op > 0 && op != 8;) {
		char *d, *p;
		size_t n;
		op = h_ws_recv(&w, 10000, &d, &n);
		if (op == 1 && (p = strstr(d, "{\"type\":\"stdout\",\"data\":\""))) {
			size_t have = strlen(out);
			snprintf(out + have, cap - have, "%.*s", (int)strcspn(p + 25, "\""), p + 25);
		} else if (op == 1 && (p = strstr(d, "{\"type\":\"exit\",\"data\":"))) {
			code = atoi(p + 22);
		}
		free(d);
	}
	h_ws_close(&w);
	return code;
}

/* One round: LIVE executions on LIVE_RUNNERS claimed runners stream for stream_ms, then SIGKILL
 * of poseidon-wsgate. Every client must see its connection end within CLOSE_BOUND_MS, the gateway
 * comes back on its port, the first 4 runners must be usable again with nothing of the killed
 * executions left running in them (nomad-local hangs up a program whose exec stream is cut, as
 * docker exec does) and nothing left in /tmp, and the last one (inactivity timeout) must be
 * reaped by its deadline, gone from Redis and Nomad. Returns the time from the kill until the
 * usable runners worked again and the invariants held; *close_ms the slowest connection end. */
static long long wsgate_kill_round(int stream_ms, long long *close_ms, struct verdict *v)
{
	const int reap_s = stream_ms / 1000 + 6;
	char ids[LIVE_RUNNERS][64], url[256], body[128], out[4096];
	struct live live[LIVE];
	memset(live, 0, sizeof live);
	for (int i = 0; i < LIVE_RUNNERS; i++) {
		struct h_resp r;
		snprintf(url, sizeof url, "%s/runners", st.base);
		snprintf(body, sizeof body, "{\"executionEnvironmentId\":%d,\"inactivityTimeout\":%d}", ENV,
		         i == LIVE_RUNNERS - 1 ? reap_s : 120);
		ids[i][0] = '\0';
		for (int k = 0; k < 100 && !ids[i][0]; k++) {
			if (h_http(&r, "POST", url, body, -1, NULL) == 0 && r.status == 200)
				sscanf(r.body, "{\"runnerId\":\"%63[^\"]\"", ids[i]);
			else
				h_sleep_ms(100);
			h_resp_free(&r);
		}
		assert_true(ids[i][0]);
		if (i < LIVE_RUNNERS - 1)
			hold(ids[i]);
	}
	for (int i = 0; i < LIVE; i++) {
		live[i].runner = ids[i % LIVE_RUNNERS];
		pthread_create(&live[i].thread, NULL, live_client, &live[i]);
	}
	int streaming = 0;
	for (long long t0 = h_now_ms(); streaming < LIVE && h_now_ms() - t0 < 20000; h_sleep_ms(50)) {
		streaming = 0;
		for (int i = 0; i < LIVE; i++)
			streaming += live[i].started && !live[i].ended;
	}
	/* the scan sees live loops: the 4 on the first runner, before the kill */
	int scanned = streaming == LIVE ? run_once(ids[0], SCAN_CMD, out, sizeof out) : -1;
	if (streaming < LIVE || scanned != 0 || !strstr(out, "left=4 ")) {
		live_abort = 1; /* the threads use live[]: they end before this frame does */
		for (int i = 0; i < LIVE; i++) {
			pthread_join(live[i].thread, NULL);
			if (!live[i].started || live[i].ended)
				fprintf(stderr, "execution %d on %s: started %d ended %d %s\n", i,
				        live[i].runner, (int)live[i].started, (int)live[i].ended,
				        live[i].why);
		}
		live_abort = 0;
		fail_msg("%d of %d executions streaming; the scan of runner %s: exit %d, %s", streaming, LIVE,
		         ids[0], scanned, out);
	}
	h_sleep_ms(stream_ms);

	long long t_kill = h_now_ms();
	h_kill(wsgate);
	wsgate = 0;
	*close_ms = 0;
	tcp_closes = close_frames = 0;
	for (int i = 0; i < LIVE; i++) {
		pthread_join(live[i].thread, NULL);
		if (live[i].ended <= 0)
			fail_msg("execution %d: %s", i, live[i].why);
		if (live[i].ended_ms - t_kill > *close_ms)
			*close_ms = live[i].ended_ms - t_kill;
		tcp_closes += live[i].ended == 1;
		close_frames += live[i].ended == 8;
	}
	assert_true(*close_ms < CLOSE_BOUND_MS);

	wsgate = h_stack_start_wsgate(&st); /* same port: lighttpd proxies there */
	assert_true(wsgate > 0);
	/* usable again, and nothing of the killed executions runs on or is left in /tmp; out is the
	 * raw JSON string, so its line ends read \r\n with the backslashes */
	for (int i = 0; i < LIVE_RUNNERS - 1; i++) {
		int code = -1;
		for (long long t0 = h_now_ms(); h_now_ms() - t0 < 10000; h_sleep_ms(200))
			if ((code = run_once(ids[i], SCAN_CMD, out, sizeof out)) == 0 &&
			    strstr(out, "left=0 procs=4\\r\\n") && !strstr(out, "fifo") &&
			    !strstr(out, "poseidon-"))
				break;
		if (code != 0 || !strstr(out, "left=0 procs=4\\r\\n") || strstr(out, "fifo") ||
		    strstr(out, "poseidon-"))
			fail_msg("runner %s after the kill: exit %d, %s", ids[i], code, out);
	}
	*v = heal(held, nheld);
	long long healed = h_now_ms() - t_kill;

	/* the runner with a short inactivity timeout: nothing pushes its deadline once its streams are
	 * gone, so it is reaped (Redis and Nomad) and the API says 410 */
	const char *last = ids[LIVE_RUNNERS - 1];
	for (long long t0 = h_now_ms();
	     h_now_ms() - t0 < (reap_s + 15) * 1000LL &&
	     strcmp(h_redis_cli(&st.redis, "EXISTS poseidon:runner:%s", last), "0");
	     h_sleep_ms(200))
		;
	assert_string_equal(h_redis_cli(&st.redis, "EXISTS poseidon:runner:%s", last), "0");
	struct nomad_job_stub *stubs = NULL;
	size_t njobs = 0;
	struct perr e;
	int alive = 1;
	for (long long t0 = h_now_ms(); alive && h_now_ms() - t0 < 10000; h_sleep_ms(200)) {
		assert_int_equal(nomad_jobs_list(nomad, last, &stubs, &njobs, &e), 0);
		alive = 0;
		for (size_t k = 0; k < njobs; k++)
			alive += strcmp(stubs[k].status, "dead") != 0;
		free(stubs);
		stubs = NULL;
	}
	assert_int_equal(alive, 0);
	snprintf(url, sizeof url, "%s/runners/%s", st.base, last);
	struct h_resp r;
	assert_int_equal(h_http(&r, "DELETE", url, NULL, -1, NULL), 0);
	assert_int_equal(r.status, 410);
	h_resp_free(&r);
	return healed;
}

static void test_wsgate_killed_during_live_executions(void **state)
{
	(void)state;
	int rounds = full ? 3 : 1;
	long long worst_heal = 0;
	struct verdict v = {0};
	for (int i = 0; i < rounds; i++) {
		long long close_ms, healed = wsgate_kill_round(full ? 5000 : 500, &close_ms, &v);
		printf("  round %d: all %d connections ended within %lld ms of the SIGKILL "
		       "(%d TCP closes, %d close frames); runners usable, invariants %s %lld ms after it\n",
		       i + 1, LIVE, close_ms, tcp_closes, close_frames, v.ok ? "held" : "broken", healed);
		if (!v.ok)
			break;
		worst_heal = healed > worst_heal ? healed : worst_heal;
		release_all();
		if (vanished) {
			v.lost += vanished;
			v.ok = 0;
			snprintf(v.why, sizeof v.why, "%d runners vanished under their users", vanished);
			vanished = 0;
			break;
		}
	}
	v.heal_ms = worst_heal;
	v.duplicated += handed_twice;
	char name[64];
	snprintf(name, sizeof name, "SIGKILL of wsgate, %d live executions", LIVE);
	row(name, (long)LIVE * rounds, &v);
	assert_true(v.ok);
	assert_int_equal(handed_twice, 0);
	struct verdict after = heal(held, nheld); /* the runners given back: the pool as it was */
	if (!after.ok)
		fail_msg("after the runners were deleted: %s", after.why);
	assert_int_equal(nheld, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_workers_killed_during_claims_and_deletes),
	    cmocka_unit_test(test_refill_killed_mid_refill),
	    cmocka_unit_test(test_redis_restart_under_load),
	    cmocka_unit_test(test_nomad_restart_and_outage),
	    cmocka_unit_test(test_allocations_killed_behind_nomads_back),
	    cmocka_unit_test(test_event_stream_cut_mid_line),
	    cmocka_unit_test(test_wsgate_killed_during_live_executions),
	};
	if (getenv("POSEIDON_TEST_FILTER")) /* e.g. "*wsgate*" */
		cmocka_set_test_filter(getenv("POSEIDON_TEST_FILTER"));
	return cmocka_run_group_tests(tests, setup, teardown);
}
