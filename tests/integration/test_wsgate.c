/* Executions through the real stack (issue 6; docs/api.md EXE-1..6, WS-1..27, section 3):
 * Redis, nomad-local, lighttpd with workers, poseidon-refill and poseidon-wsgate, every
 * WebSocket going through lighttpd's upgrade proxy as CodeOcean's would. Every message is
 * checked against the schema (exactly the keys of websocket.schema.json). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <json-c/json.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "config.h"
#include "err.h"
#include "harness.h"
#include "store.h"
#include "wsclient.h"

#define ENV     6
#define ENV_OOM 7
#define ENV_NET 8
#define POOL    12
#define TIMEOUT 20000

static struct h_stack st;
static pid_t wsgate;
static const char *refill_env[] = {"POSEIDON_RECONCILE_INTERVAL=5", "POSEIDON_REFILL_TICKMS=100", NULL};
static const char *wsgate_args[] = {"-ping-ms", "400", NULL};

/* ---- what a client sees of one execution ---------------------------------------------------- */

struct seen {
	char *out, *err;
	size_t out_len, err_len;
	int nout, nerr;        /* output messages */
	char controls[16][96]; /* start, exit, timeout, error messages in order */
	int ncontrols;
	int nmsgs;
	int schema_errors; /* messages that CodeOcean would drop */
	int empty_outputs;
	int close_code; /* -1: no close frame */
	size_t close_reason_len;
	int tcp_closed; /* the connection ended (after the close frame or without one) */
	int timed_out;
	int pings;
	long long ms; /* from connect to the end */
};

static void seen_free(struct seen *s)
{
	free(s->out);
	free(s->err);
	memset(s, 0, sizeof *s);
}

/* Appends to a buffer that grows by doubling (its capacity is the next power of two of its
 * length), so that 40 MB of small messages costs no quadratic copying, not even under ASan,
 * whose realloc always copies. */
static void append(char **p, size_t *len, const char *d, size_t n)
{
	size_t cap = 64;
	while (cap < *len + 1)
		cap *= 2;
	if (!*p || *len + n + 1 > cap) {
		while (cap < *len + n + 1)
			cap *= 2;
		char *np = realloc(*p, cap);
		assert_non_null(np);
		*p = np;
	}
	memcpy(*p + *len, d, n);
	*len += n;
	(*p)[*len] = '\0';
}

/* Checks one message against websocket.schema.json and files it. */
static void take_message(struct seen *s, const char *msg, size_t len)
{
	json_tokener *tok = json_tokener_new();
	json_object *o = json_tokener_parse_ex(tok, msg, (int)len), *t = NULL, *d = NULL;
	int ok = o && json_tokener_get_error(tok) == json_tokener_success &&
	         json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, "type", &t) &&
	         json_object_is_type(t, json_type_string);
	json_tokener_free(tok);
	s->nmsgs++;
	const char *type = ok ? json_object_get_string(t) : "";
	int has_data = o && json_object_object_get_ex(o, "data", &d);
	int keys = o ? json_object_object_length(o) : 0;
	if (!strcmp(type, "stdout") || !strcmp(type, "stderr")) {
		ok = ok && has_data && json_object_is_type(d, json_type_string) && keys == 2;
		if (ok) {
			size_t n = (size_t)json_object_get_string_len(d);
			if (!n)
				s->empty_outputs++;
			if (type[3] == 'o') {
				append(&s->out, &s->out_len, json_object_get_string(d), n);
				s->nout++;
			} else {
				append(&s->err, &s->err_len, json_object_get_string(d), n);
				s->nerr++;
			}
		}
	} else if (!strcmp(type, "exit")) {
		ok = ok && has_data && json_object_is_type(d, json_type_int) && json_object_get_int(d) >= 0 &&
		     json_object_get_int(d) <= 255 && keys == 2;
	} else if (!strcmp(type, "error")) {
		ok = ok && has_data && json_object_is_type(d, json_type_string) && keys == 2;
	} else if (!strcmp(type, "start") || !strcmp(type, "timeout")) {
		ok = ok && keys == 1;
	} else {
		ok = 0;
	}
	if (!ok)
		s->schema_errors++;
	if (ok && strcmp(type, "stdout") && strcmp(type, "stderr") && s->ncontrols < 16)
		snprintf(s->controls[s->ncontrols++], sizeof s->controls[0], "%.*s",
		         (int)(len < 95 ? len : 95), msg);
	json_object_put(o);
}

/* Reads until the server closes (or timeout_ms). */
static void read_all(struct wsc *c, struct seen *s, int timeout_ms)
{
	long long t0 = h_now_ms();
	s->close_code = -1;
	for (;;) {
		char *d;
		size_t n;
		int op = wsc_read(c, (int)(timeout_ms - (h_now_ms() - t0)), &d, &n);
		if (op < 0) {
			s->timed_out = 1;
			break;
		}
		if (op == 0) {
			s->tcp_closed = 1;
			break;
		}
		if (op == 1)
			take_message(s, d, n);
		else if (op == 9)
			s->pings++;
		else if (op == 8) {
			s->close_code = n >= 2 ? ((unsigned char)d[0] << 8 | (unsigned char)d[1]) : 0;
			s->close_reason_len = n >= 2 ? n - 2 : 0;
			free(d);
			/* the server hangs up right after its close frame */
			char *rest;
			size_t rn;
			int more = wsc_read(c, 3000, &rest, &rn);
			free(rest);
			s->tcp_closed = more == 0;
			break;
		}
		free(d);
	}
	s->ms = h_now_ms() - t0;
}

/* The NonInteractive check of docs/api.md 0.2, with the exit code it must have. */
static void assert_noninteractive(const struct seen *s, int code)
{
	char want[64];
	snprintf(want, sizeof want, "{\"type\":\"exit\",\"data\":%d}", code);
	if (s->ncontrols != 2 || strcmp(s->controls[0], "{\"type\":\"start\"}") ||
	    strcmp(s->controls[1], want))
		fail_msg(
		    "controls: %d: %s | %s | close %d, timed out %d, tcp closed %d | out=%.200s err=%.200s",
		    s->ncontrols, s->controls[0], s->ncontrols > 1 ? s->controls[1] : "", s->close_code,
		    s->timed_out, s->tcp_closed, s->out ? s->out : "", s->err ? s->err : "");
	assert_int_equal(s->schema_errors, 0);
	assert_int_equal(s->empty_outputs, 0);
	assert_int_equal(s->close_code, 1000);
	assert_int_equal(s->close_reason_len, 0);
	assert_true(s->tcp_closed);
}

/* ---- the REST side -------------------------------------------------------------------------- */

static long call(const char *method, const char *path, const char *body, char *out, size_t cap)
{
	long status = h_api(&st, method, path, body, out, cap);
	assert_true(status >= 0);
	return status;
}

static void claim_env(char id[128], int env, long long timeout)
{
	char body[128], out[1024];
	snprintf(body, sizeof body, "{\"executionEnvironmentId\":%d,\"inactivityTimeout\":%lld}", env,
	         timeout);
	for (int i = 0; i < 300; i++) {
		long status = call("POST", "/runners", body, out, sizeof out);
		if (status == 200) {
			char *p = strstr(out, "\"runnerId\":\"");
			assert_non_null(p);
			p += 12;
			size_t n = strcspn(p, "\"");
			memcpy(id, p, n);
			id[n] = '\0';
			return;
		}
		assert_int_equal(status, 500); /* NOMAD_OVERLOAD: the pool refills */
		h_sleep_ms(100);
	}
	fail_msg("no runner of environment %d", env);
}

static void claim(char id[128])
{
	claim_env(id, ENV, 0);
}

/* POST /execute; returns the status and puts the path+query of websocketUrl into pq. */
static long execute(const char *runner, const char *body, char *pq, size_t cap)
{
	char path[256], out[2048];
	snprintf(path, sizeof path, "/runners/%s/execute", runner);
	long status = call("POST", path, body, out, sizeof out);
	if (status == 200 && pq) {
		char *u = strstr(out, "\"websocketUrl\":\"ws://");
		assert_non_null(u);
		u = strchr(u + 21, '/');
		snprintf(pq, cap, "%.*s", (int)strcspn(u, "\""), u);
	}
	return status;
}

/* RUN(): execute body on runner, connect through lighttpd, send input after start, read all. */
static void run_on(const char *runner, const char *body, const char *input, struct seen *s, int timeout_ms)
{
	char pq[512];
	struct wsc c;
	memset(s, 0, sizeof *s);
	assert_int_equal(execute(runner, body, pq, sizeof pq), 200);
	assert_int_equal(wsc_open(&c, st.port, pq, 1, NULL, NULL, 0), 101);
	if (input) {
		char *d;
		size_t n;
		assert_int_equal(wsc_read(&c, TIMEOUT, &d, &n), 1);
		take_message(s, d, n);
		free(d);
		assert_int_equal(wsc_send(&c, 1, input, strlen(input)), 0);
	}
	read_all(&c, s, timeout_ms);
	wsc_close(&c);
}

static void run_cmd(const char *body, struct seen *s)
{
	char id[128];
	claim(id);
	run_on(id, body, NULL, s, TIMEOUT);
}

/* ---- setup ---------------------------------------------------------------------------------- */

static void put_env(int id, int pool, int memory)
{
	char path[64], body[256];
	snprintf(path, sizeof path, "/execution-environments/%d", id);
	snprintf(body, sizeof body,
	         "{\"prewarmingPoolSize\":%d,\"cpuLimit\":100,\"memoryLimit\":%d,\"image\":\"img\","
	         "\"networkAccess\":false,"
	         "\"exposedPorts\":null}",
	         pool, memory);
	long status = call("PUT", path, body, NULL, 0);
	assert_true(status == 201 || status == 204);
}

static int setup(void **state)
{
	(void)state;
	struct h_front_opts o = {.workers = 4};
	if (h_redis_start(&st.redis) < 0 || h_stack_start_nomad(&st) < 0 || h_stack_start(&st, &o) < 0 ||
	    h_stack_start_refill(&st, refill_env) < 0 ||
	    (wsgate = h_stack_start_wsgate_with(&st, NULL, wsgate_args)) < 0)
		return -1;
	put_env(ENV, POOL, 256);
	h_wait_pool(&st.redis, ENV, POOL, 30000);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (wsgate > 0)
		h_stop(wsgate);
	h_stack_stop(&st);
	return h_sanitizer_reports(st.rundir) == 0 ? 0 : -1;
}

/* ---- helpers for the tests ----------------------------------------------------------------- */

/* GET on the runner's files route: the listing of dir (not recursive) into out. */
static long list_dir(const char *runner, const char *dir, char *out, size_t cap)
{
	char path[512];
	snprintf(path, sizeof path, "/runners/%s/files?path=%s&recursive=false&privilegedExecution=true",
	         runner, dir);
	return call("GET", path, NULL, out, cap);
}

static long runner_status(const char *runner)
{
	char path[256];
	snprintf(path, sizeof path, "/runners/%s/files?path=.%%2F&recursive=false", runner);
	return call("GET", path, NULL, NULL, 0);
}

/* No helper file of the gateway (FIFO, script) in the runner's /tmp (WS-14). */
static void assert_tmp_clean(const char *runner)
{
	char out[65536];
	assert_int_equal(list_dir(runner, "%2Ftmp%2F", out, sizeof out), 200);
	if (strstr(out, ".fifo") || strstr(out, "poseidon-"))
		fail_msg("helper files left in /tmp: %s", out);
}

/* \r\n -> \n, in place */
static char *unix_lines(char *s)
{
	char *w = s;
	for (char *r = s; s && *r; r++)
		if (!(r[0] == '\r' && r[1] == '\n'))
			*w++ = *r;
	if (s)
		*w = '\0';
	return s;
}

static const char *last_control(const struct seen *s)
{
	return s->ncontrols ? s->controls[s->ncontrols - 1] : "";
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_trivial_command_and_stdout(void **state)
{
	(void)state;
	struct seen s;
	run_cmd("{\"command\":\"true\"}", &s); /* WS-4: nothing between start and exit */
	assert_noninteractive(&s, 0);
	assert_int_equal(s.nmsgs, 2);
	seen_free(&s);
	run_cmd("{\"command\":\"echo -n Hello World\"}", &s); /* WS-5 */
	assert_noninteractive(&s, 0);
	assert_string_equal(s.out, "Hello World");
	assert_null(s.err);
	seen_free(&s);
}

static void test_stderr_is_split_and_exit_codes(void **state)
{
	(void)state;
	struct seen s;
	char id[128];
	claim(id);
	run_on(id, "{\"command\":\"cat -invalid\"}", NULL, &s, TIMEOUT); /* WS-6 */
	assert_noninteractive(&s, 1);
	assert_non_null(s.err);
	assert_non_null(strstr(s.err, "cat: invalid option"));
	assert_true(!s.out || !strstr(s.out, "invalid option"));
	seen_free(&s);
	run_on(id, "{\"command\":\"echo out; echo err >&2; exit 42\"}", NULL, &s, TIMEOUT); /* WS-17 */
	assert_noninteractive(&s, 42);
	assert_string_equal(s.out, "out\r\n");
	assert_string_equal(s.err, "err\r\n");
	seen_free(&s);
	run_on(id, "{\"command\":\"kill -KILL $$\"}", NULL, &s, TIMEOUT); /* 128+N for a signal */
	assert_noninteractive(&s, 137);
	seen_free(&s);
	assert_tmp_clean(id); /* WS-14 */
}

static void test_unprivileged_and_privileged_user(void **state)
{
	(void)state;
	struct seen s;
	char id[128];
	claim(id);
	run_on(id, "{\"command\":\"id --name --user\",\"privilegedExecution\":false}", NULL, &s,
	       TIMEOUT); /* WS-7 */
	assert_noninteractive(&s, 0);
	assert_string_equal(s.out, "user\r\n");
	seen_free(&s);
	run_on(id, "{\"command\":\"id --name --user\",\"privilegedExecution\":true}", NULL, &s, TIMEOUT);
	assert_noninteractive(&s, 0);
	assert_string_equal(s.out, "root\r\n");
	seen_free(&s);
	run_on(id, "{\"command\":\"whoami\"}", NULL, &s, TIMEOUT); /* CodeOcean's environment check */
	assert_noninteractive(&s, 0);
	assert_string_equal(s.out, "user\r\n");
	assert_null(s.err);
	seen_free(&s);
}

/* The capability sets CapBnd, CapPrm and CapEff in /proc/<pid>/status text: each must hold no
 * capability outside Docker's default set (0xa80425fb); returns how many sets were seen. */
static int caps_within_docker(const char *status_text)
{
	int seen = 0;
	for (const char *p = status_text; (p = strstr(p, "Cap")) != NULL; p += 3) {
		char name[8];
		unsigned long long v;
		if (sscanf(p, "Cap%3[A-Za-z]:\t%llx", name, &v) != 2 || !strstr("Bnd Prm Eff", name))
			continue;
		if (v & ~0xa80425fbULL)
			fail_msg("Cap%s %llx holds capabilities beyond Docker's defaults:\n%s", name, v, status_text);
		seen++;
	}
	return seen;
}

/* What a hostile learner's program can do through the API, privileged or not: no more
 * capabilities than Docker gives, the kernel's knobs read-only (the value read is written back,
 * so the test is harmless without the protection), no mount, no host secrets. */
static void test_runner_holds_against_a_hostile_program(void **state)
{
	(void)state;
	struct seen s;
	char id[128];
	claim(id);
	run_on(id,
	       "{\"command\":\"grep -E ^Cap /proc/self/status; v=$(cat /proc/sys/kernel/core_pattern); "
	       "(echo \\\"$v\\\" > /proc/sys/kernel/core_pattern) 2>/dev/null && echo SYSCTL-WRITTEN; "
	       "mount -t tmpfs x /tmp 2>/dev/null && echo MOUNTED; unshare -U true 2>/dev/null && echo UNSHARED; "
	       "for f in /etc/shadow /etc/ssh /var/lib /etc/ssl/private; do test -e $f && echo HOST-$f; done; "
	       "true\",\"privilegedExecution\":true}",
	       NULL, &s, TIMEOUT);
	assert_noninteractive(&s, 0);
	assert_int_equal(caps_within_docker(s.out), 3);
	assert_non_null(strstr(s.out, "CapAmb:\t0000000000000000"));
	if (strstr(s.out, "SYSCTL") || strstr(s.out, "MOUNTED") || strstr(s.out, "UNSHARED") || strstr(s.out, "HOST-"))
		fail_msg("a privileged program got through:\n%s", s.out);
	seen_free(&s);
	/* unprivileged: nothing at all, and nothing to regain */
	run_on(id, "{\"command\":\"grep -e ^Cap -e NoNewPrivs /proc/self/status\"}", NULL, &s, TIMEOUT);
	assert_noninteractive(&s, 0);
	assert_non_null(strstr(s.out, "CapPrm:\t0000000000000000"));
	assert_non_null(strstr(s.out, "CapEff:\t0000000000000000"));
	assert_non_null(strstr(s.out, "NoNewPrivs:\t1"));
	seen_free(&s);
}

/* A 3 GiB write is stopped (no space left, or the writer killed at the memory limit) and the
 * host's disk does not grow by it. */
static void test_a_huge_write_does_not_reach_the_host_disk(void **state)
{
	(void)state;
	struct seen s;
	struct statvfs before, after;
	char id[128];
	claim(id);
	assert_int_equal(statvfs(st.rundir, &before), 0);
	run_on(id,
	       "{\"command\":\"head -c 3G /dev/zero > big.bin; echo rc=$?; du -m big.bin\","
	       "\"privilegedExecution\":true}",
	       NULL, &s, 60000);
	assert_int_equal(statvfs(st.rundir, &after), 0);
	long long grown = ((long long)before.f_bfree - (long long)after.f_bfree) * (long long)before.f_frsize;
	printf("3 GiB write: %s%s| host disk grew by %lld MiB\n", s.out ? s.out : "", s.ncontrols > 1 ? s.controls[1] : "",
	       grown / 1048576);
	assert_true(grown < 64LL * 1024 * 1024);
	/* either head failed with ENOSPC at the bound, or it (or the whole command) was OOM-killed */
	int enospc = s.err && strstr(s.err, "No space left on device");
	int killed = s.out && strstr(s.out, "rc=137");
	int oom = s.ncontrols > 1 && (strstr(s.controls[1], "OOM") || strstr(s.controls[1], "\"data\":137"));
	if (!enospc && !killed && !oom)
		fail_msg("the write was not stopped: out=%s err=%s control=%s", s.out ? s.out : "", s.err ? s.err : "",
			 s.ncontrols > 1 ? s.controls[1] : "");
	seen_free(&s);
	char path[256];
	snprintf(path, sizeof path, "/runners/%s", id);
	assert_int_equal(call("DELETE", path, NULL, NULL, 0), 204);
}

/* networkAccess: true reaches a server outside (in a namespace of this test: no packet leaves the
 * machine), and still not the host's loopback (Redis); networkAccess: false reaches neither. */
static void test_network_access_reaches_out_and_not_home(void **state)
{
	(void)state;
	struct h_netns_server srv;
	if (h_netns_server_start(&srv) < 0)
		fail_msg("could not make the test's network namespace (ip netns, veth)");
	char path[64], body[1024], id[128];
	snprintf(path, sizeof path, "/execution-environments/%d", ENV_NET);
	assert_true(call("PUT", path,
			 "{\"prewarmingPoolSize\":1,\"cpuLimit\":100,\"memoryLimit\":256,\"image\":\"img\","
			 "\"networkAccess\":true,\"exposedPorts\":null}",
			 NULL, 0) < 300);
	snprintf(body, sizeof body,
		 "{\"command\":\"(exec 3<>/dev/tcp/%s/%d && head -1 <&3) 2>/dev/null || echo no-way-out; "
		 "for h in 127.0.0.1 10.0.2.2; do (exec 3<>/dev/tcp/$h/%d) 2>/dev/null && echo REACHED-$h; done; "
		 "true\"}",
		 srv.ip, srv.port, st.redis.port);
	struct seen s;
	claim_env(id, ENV_NET, 0);
	run_on(id, body, NULL, &s, TIMEOUT);
	assert_noninteractive(&s, 0);
	if (!strstr(s.out, H_NETNS_GREETING) || strstr(s.out, "REACHED"))
		fail_msg("with network: %s", s.out);
	seen_free(&s);
	claim(id); /* ENV: networkAccess false */
	run_on(id, body, NULL, &s, TIMEOUT);
	assert_noninteractive(&s, 0);
	if (strstr(s.out, H_NETNS_GREETING) || !strstr(s.out, "no-way-out") || strstr(s.out, "REACHED"))
		fail_msg("without network: %s", s.out);
	seen_free(&s);
	assert_int_equal(call("DELETE", path, NULL, NULL, 0), 204);
	h_netns_server_stop(&srv);
}

static void test_stdin_is_echoed_by_the_tty(void **state)
{
	(void)state;
	struct seen s;
	char id[128];
	claim(id);
	/* WS-8: one raw text frame; the tty echoes it, then head prints it */
	run_on(id, "{\"command\":\"head -n 1\"}", "Hello World!\n", &s, TIMEOUT);
	assert_noninteractive(&s, 0);
	assert_string_equal(s.out, "Hello World!\r\nHello World!\r\n");
	seen_free(&s);
	/* input in several frames, read by a program that was waiting before it came */
	char pq[512], *d;
	size_t n;
	struct wsc c;
	memset(&s, 0, sizeof s);
	assert_int_equal(execute(id, "{\"command\":\"read a; read b; echo \\\"<$a|$b>\\\"\"}", pq, sizeof pq),
	                 200);
	assert_int_equal(wsc_open(&c, st.port, pq, 1, NULL, NULL, 0), 101);
	assert_int_equal(wsc_read(&c, TIMEOUT, &d, &n), 1);
	take_message(&s, d, n);
	free(d);
	h_sleep_ms(300);
	assert_int_equal(wsc_send(&c, 1, "one\n", 4), 0);
	assert_int_equal(wsc_send(&c, 1, "tw", 2), 0);
	assert_int_equal(wsc_send(&c, 1, "o\n", 2), 0);
	read_all(&c, &s, TIMEOUT);
	wsc_close(&c);
	assert_noninteractive(&s, 0);
	assert_non_null(strstr(s.out, "<one|two>\r\n"));
	seen_free(&s);
}

static void test_make_and_environment_variables(void **state)
{
	(void)state;
	struct seen s;
	char id[128], path[256];
	claim(id);
	/* WS-9 */
	snprintf(path, sizeof path, "/runners/%s/files", id);
	assert_int_equal(call("PATCH", path,
	                      "{\"copy\":[{\"path\":\"Makefile\",\"content\":"
	                      "\"cnVuOgoJQGVjaG8gTWVpblRleHQKCnRlc3Q6CglAZWNobyBIaQplbnY6CglAZW52Cg==\"}]}",
	                      NULL, 0),
	                 204);
	run_on(id, "{\"command\":\"make run\"}", NULL, &s, TIMEOUT);
	assert_noninteractive(&s, 0);
	assert_string_equal(unix_lines(s.out), "MeinText\n");
	seen_free(&s);
	/* WS-10: the client's variables (quoted: a value stays a value), CODEOCEAN=true wins, no NOMAD_ */
	run_on(id,
	       "{\"command\":\"env\",\"environment\":{\"hello\":\"world\",\"INJECT\":\"a; echo "
	       "PWNED\",\"CODEOCEAN\":\"false\","
	       "\"Q\":\"it is \\\"$HOME\\\" `id`\"}}",
	       NULL, &s, TIMEOUT);
	assert_noninteractive(&s, 0);
	char *out = unix_lines(s.out);
	assert_non_null(strstr(out, "\nhello=world\n"));
	assert_non_null(strstr(out, "\nINJECT=a; echo PWNED\n"));
	assert_non_null(strstr(out, "\nQ=it is \"$HOME\" `id`\n"));
	assert_non_null(strstr(out, "\nCODEOCEAN=true\n"));
	assert_null(strstr(out, "CODEOCEAN=false"));
	assert_null(strstr(out, "\nPWNED"));
	assert_null(strstr(out, "NOMAD_"));
	assert_null(strstr(out, "\nAWS"));
	seen_free(&s);
	/* WS-11: the same in a child process */
	run_on(id, "{\"command\":\"make env\",\"environment\":{\"hello\":\"world\"}}", NULL, &s, TIMEOUT);
	assert_noninteractive(&s, 0);
	out = unix_lines(s.out);
	assert_non_null(strstr(out, "CODEOCEAN=true\n"));
	assert_non_null(strstr(out, "hello=world\n"));
	assert_null(strstr(out, "NOMAD_"));
	seen_free(&s);
	assert_tmp_clean(id);
}

static void test_time_limit(void **state)
{
	(void)state;
	struct seen s;
	char id[128];
	claim(id);
	/* WS-12: timeout within 2 s, last message timeout, no exit */
	long long t0 = h_now_ms();
	run_on(id, "{\"command\":\"sleep 4\",\"timeLimit\":1}", NULL, &s, TIMEOUT);
	assert_true(h_now_ms() - t0 < 2000);
	assert_string_equal(last_control(&s), "{\"type\":\"timeout\"}");
	assert_int_equal(s.ncontrols, 2);
	assert_int_equal(s.close_code, 1000);
	assert_int_equal(s.close_reason_len, 0);
	seen_free(&s);
	/* WS-25 a: sleep died of SIGQUIT, the runner is still usable, also after the grace period */
	run_on(id, "{\"command\":\"true\"}", NULL, &s, TIMEOUT);
	assert_noninteractive(&s, 0);
	seen_free(&s);
	h_sleep_ms(3500);
	assert_int_equal(runner_status(id), 200);
	assert_tmp_clean(id);
	/* WS-25 b: a program that ignores SIGQUIT costs its runner 3 s after the timeout */
	t0 = h_now_ms();
	run_on(id, "{\"command\":\"trap \\\"\\\" QUIT; sleep 30\",\"timeLimit\":1}", NULL, &s, TIMEOUT);
	assert_string_equal(last_control(&s), "{\"type\":\"timeout\"}");
	seen_free(&s);
	assert_int_equal(runner_status(id), 200); /* still within the grace period */
	while (h_now_ms() - t0 < 4500)
		h_sleep_ms(50);
	assert_int_equal(runner_status(id), 410);
	char pq[512];
	assert_int_equal(execute(id, "{\"command\":\"true\"}", pq, sizeof pq), 410);
}

static void test_output_after_time_limit_is_not_sent(void **state)
{
	(void)state;
	struct seen s;
	char id[128];
	claim(id);
	/* output before the limit arrives, the timeout is the end: no exit, no output after it */
	run_on(id, "{\"command\":\"echo before; sleep 2; echo after\",\"timeLimit\":1}", NULL, &s, TIMEOUT);
	assert_string_equal(s.out, "before\r\n");
	assert_int_equal(s.ncontrols, 2);
	assert_string_equal(last_control(&s), "{\"type\":\"timeout\"}");
	seen_free(&s);
}

static void test_inactivity_timeout_during_execution(void **state)
{
	(void)state;
	struct seen s;
	char id[128];
	/* WS-15: the runner's timer is not paused while a program runs */
	long long t0 = h_now_ms();
	claim_env(id, ENV, 2);
	run_on(id, "{\"command\":\"sleep infinity\"}", NULL, &s, 10000);
	assert_true(h_now_ms() - t0 < 7000);
	assert_string_equal(last_control(&s), "{\"type\":\"timeout\"}");
	assert_int_equal(s.close_code, 1000);
	seen_free(&s);
	assert_int_equal(runner_status(id), 410);
}

static void test_connect_pushes_the_deadline_execute_does_not(void **state)
{
	(void)state;
	struct seen s;
	char id[128], pq[512];
	claim_env(id, ENV, 3);
	h_sleep_ms(1500);
	/* EXE-6: preparing an execution is no activity; RUN-11: connecting is */
	assert_int_equal(execute(id, "{\"command\":\"true\"}", pq, sizeof pq), 200);
	h_sleep_ms(1000);
	run_on(id, "{\"command\":\"true\"}", NULL, &s, TIMEOUT); /* t = 2.5 s: pushes to 5.5 s */
	assert_noninteractive(&s, 0);
	seen_free(&s);
	h_sleep_ms(1500); /* t = 4 s: past the claim's deadline, not the connect's */
	assert_int_equal(runner_status(id), 200);
}

static void test_delete_during_execution(void **state)
{
	(void)state;
	char id[128], pq[512], path[256], *d;
	size_t n;
	struct wsc c;
	struct seen s;
	memset(&s, 0, sizeof s);
	claim(id);
	/* WS-23 */
	assert_int_equal(execute(id, "{\"command\":\"sleep infinity\"}", pq, sizeof pq), 200);
	assert_int_equal(wsc_open(&c, st.port, pq, 1, NULL, NULL, 0), 101);
	assert_int_equal(wsc_read(&c, TIMEOUT, &d, &n), 1);
	take_message(&s, d, n);
	free(d);
	h_sleep_ms(300);
	snprintf(path, sizeof path, "/runners/%s", id);
	assert_int_equal(call("DELETE", path, NULL, NULL, 0), 204);
	read_all(&c, &s, 5000);
	wsc_close(&c);
	assert_int_equal(s.ncontrols, 2);
	assert_string_equal(last_control(&s),
	                    "{\"type\":\"error\",\"data\":\"the allocation stopped as expected\"}");
	assert_int_equal(s.close_code, 1000);
	assert_true(s.ms < 3000);
	seen_free(&s);
}

static void test_handshake_checks_and_single_use(void **state)
{
	(void)state;
	char id[128], other[128], pq[512], pq2[512], body[1024], bad[640];
	struct wsc c;
	struct seen s;
	claim(id);
	claim(other);
	assert_int_equal(execute(id, "{\"command\":\"echo once\"}", pq, sizeof pq), 200);
	/* WS-1: unknown execution id, before the upgrade */
	snprintf(bad, sizeof bad, "/api/v1/runners/%s/websocket?executionID=invalid-execution-id", id);
	assert_int_equal(wsc_open(&c, st.port, bad, 1, NULL, body, sizeof body), 404);
	assert_string_equal(body, "{\"message\":\"execution id unknown\"}");
	wsc_close(&c);
	snprintf(bad, sizeof bad, "/api/v1/runners/%s/websocket", id);
	assert_int_equal(wsc_open(&c, st.port, bad, 1, NULL, body, sizeof body), 404);
	wsc_close(&c);
	/* an execution of another runner is unknown for this one */
	snprintf(bad, sizeof bad, "/api/v1/runners/%s/websocket?%s", other, strchr(pq, '?') + 1);
	assert_int_equal(wsc_open(&c, st.port, bad, 1, NULL, body, sizeof body), 404);
	wsc_close(&c);
	/* RUN-9: an unknown runner is 410 first */
	snprintf(bad, sizeof bad, "/api/v1/runners/n0n-3x1st1ng-1d/websocket?%s", strchr(pq, '?') + 1);
	assert_int_equal(wsc_open(&c, st.port, bad, 1, NULL, body, sizeof body), 410);
	assert_non_null(strstr(body, "\"message\":\""));
	assert_non_null(strstr(body, "no runner found"));
	wsc_close(&c);
	/* GEN-2: a wrong method is 405 */
	snprintf(bad, sizeof bad, "%s/runners/%s/websocket?%s", st.base, id, strchr(pq, '?') + 1);
	struct h_resp r;
	assert_int_equal(h_http(&r, "POST", bad, "{}", -1, NULL), 0);
	assert_int_equal(r.status, 405);
	h_resp_free(&r);
	/* WS-2: a plain GET is 400 and leaves the execution valid */
	assert_int_equal(wsc_open(&c, st.port, pq, 0, NULL, body, sizeof body), 400);
	wsc_close(&c);
	/* a foreign Origin is 403 (and leaves it valid too); the same origin is fine */
	const char *foreign[] = {"Origin: http://evil.example", NULL};
	assert_int_equal(wsc_open(&c, st.port, pq, 1, foreign, body, sizeof body), 403);
	wsc_close(&c);
	char same[64];
	snprintf(same, sizeof same, "Origin: http://127.0.0.1:%d", st.port);
	const char *same_origin[] = {same, NULL};
	memset(&s, 0, sizeof s);
	assert_int_equal(wsc_open(&c, st.port, pq, 1, same_origin, NULL, 0), 101);
	read_all(&c, &s, TIMEOUT);
	wsc_close(&c);
	assert_noninteractive(&s, 0);
	assert_string_equal(s.out, "once\r\n");
	seen_free(&s);
	/* WS-24: single use */
	assert_int_equal(wsc_open(&c, st.port, pq, 1, NULL, body, sizeof body), 404);
	wsc_close(&c);
	/* two at once: one runs it, the other is told so (never a silent hang, DIS-10) */
	assert_int_equal(execute(id, "{\"command\":\"echo race\"}", pq2, sizeof pq2), 200);
	struct wsc c1, c2;
	struct seen s1, s2;
	memset(&s1, 0, sizeof s1);
	memset(&s2, 0, sizeof s2);
	int st1 = wsc_open(&c1, st.port, pq2, 1, NULL, NULL, 0),
	    st2 = wsc_open(&c2, st.port, pq2, 1, NULL, NULL, 0);
	if (st1 == 101)
		read_all(&c1, &s1, TIMEOUT);
	if (st2 == 101)
		read_all(&c2, &s2, TIMEOUT);
	wsc_close(&c1);
	wsc_close(&c2);
	assert_true(st1 == 101 || st2 == 101);
	int ran = (s1.out && !strcmp(s1.out, "race\r\n")) + (s2.out && !strcmp(s2.out, "race\r\n"));
	assert_int_equal(ran, 1);
	struct seen *loser = s1.out ? &s2 : &s1;
	if ((s1.out ? st2 : st1) == 101) {
		assert_int_equal(loser->ncontrols, 1);
		assert_string_equal(loser->controls[0],
		                    "{\"type\":\"error\",\"data\":\"Error executing the request\"}");
		assert_int_equal(loser->close_code, 1000);
	} else {
		assert_int_equal(s1.out ? st2 : st1, 404);
	}
	seen_free(&s1);
	seen_free(&s2);
}

static void test_execute_validation(void **state)
{
	(void)state;
	char id[128], out[1024], pq[512];
	claim(id);
	snprintf(pq, sizeof pq, "/runners/%s/execute", id);
	/* EXE-1 */
	assert_int_equal(call("POST", pq, "{\"command\":\"true\"}", out, sizeof out), 200);
	char want[256];
	snprintf(want, sizeof want,
	         "{\"websocketUrl\":\"ws://127.0.0.1:%d/api/v1/runners/%s/websocket?executionID=", st.port,
	         id);
	assert_memory_equal(out, want, strlen(want));
	/* EXE-2 */
	assert_int_equal(call("POST", pq, "", out, sizeof out), 400);
	assert_int_equal(call("POST", pq, "{", out, sizeof out), 400);
	assert_int_equal(call("POST", pq, "{\"command\":1}", out, sizeof out), 400);
	/* EXE-3 */
	assert_int_equal(
	    call("POST", pq, "{\"command\":\"echo 'forbidden'\",\"timeLimit\":10}", out, sizeof out), 400);
	assert_string_equal(out, "{\"message\":\"use of forbidden character\"}");
	/* names that are not shell variable names, absurd time limits */
	assert_int_equal(
	    call("POST", pq, "{\"command\":\"env\",\"environment\":{\"a b\":\"x\"}}", out, sizeof out), 400);
	assert_int_equal(
	    call("POST", pq, "{\"command\":\"env\",\"environment\":{\"1x\":\"x\"}}", out, sizeof out), 400);
	assert_int_equal(
	    call("POST", pq, "{\"command\":\"env\",\"environment\":{\"x;id\":\"x\"}}", out, sizeof out), 400);
	assert_int_equal(
	    call("POST", pq, "{\"command\":\"env\",\"environment\":{\"\":\"x\"}}", out, sizeof out), 400);
	assert_int_equal(call("POST", pq, "{\"command\":\"true\",\"timeLimit\":-1}", out, sizeof out), 400);
	assert_int_equal(
	    call("POST", pq, "{\"command\":\"true\",\"timeLimit\":99999999999}", out, sizeof out), 400);
	/* EXE-4 */
	assert_int_equal(
	    call("POST", "/runners/n0n-3x1st1ng-1d/execute", "{\"command\":\"true\"}", out, sizeof out), 410);
}

static void test_unicode_and_invalid_bytes(void **state)
{
	(void)state;
	struct seen s;
	char id[128];
	claim(id);
	/* WS-26 */
	run_on(id, "{\"command\":\"printf \\\"\\u00e4\\u00f6\\u00fc\\u20ac\\ud83d\\ude00\\\\n\\\"\"}", NULL,
	       &s, TIMEOUT);
	assert_noninteractive(&s, 0);
	assert_string_equal(s.out, "äöü€😀\r\n");
	seen_free(&s);
	/* a character split across two output chunks arrives whole */
	run_on(id,
	       "{\"command\":\"printf \\\"\\\\xe2\\\\x82\\\"; sleep 0.3; printf "
	       "\\\"\\\\xac\\\\xf0\\\\x9f\\\"; sleep 0.3; printf \\\"\\\\x98\\\\x80.\\\"\"}",
	       NULL, &s, TIMEOUT);
	assert_noninteractive(&s, 0);
	assert_string_equal(s.out, "€😀.");
	assert_true(s.nout >= 2);
	seen_free(&s);
	/* bytes that are not UTF-8 become U+FFFD; every message stays valid JSON, on stderr too */
	run_on(id,
	       "{\"command\":\"printf \\\"a\\\\xffb\\\\xc0\\\\xafc\\\"; printf \\\"\\\\xfe\\\" >&2; head -c "
	       "4096 /dev/urandom\"}",
	       NULL, &s, TIMEOUT);
	assert_noninteractive(&s, 0);
	assert_memory_equal(s.out,
	                    "a\xEF\xBF\xBD"
	                    "b\xEF\xBF\xBD\xEF\xBF\xBD"
	                    "c",
	                    12);
	assert_string_equal(s.err, "\xEF\xBF\xBD");
	seen_free(&s);
}

static void test_long_output_is_complete(void **state)
{
	(void)state;
	struct seen s;
	char id[128];
	claim(id);
	/* WS-27 */
	run_on(id, "{\"command\":\"seq 1 200000\"}", NULL, &s, 60000);
	assert_noninteractive(&s, 0);
	unix_lines(s.out);
	char *p = s.out;
	for (int i = 1; i <= 200000; i++) {
		char *nl = strchr(p, '\n');
		assert_non_null(nl);
		if (atoi(p) != i)
			fail_msg("line %d is %.20s", i, p);
		p = nl + 1;
	}
	assert_string_equal(p, "");
	seen_free(&s);
}

static void test_long_command_goes_through_a_script(void **state)
{
	(void)state;
	struct seen s;
	char id[128];
	claim(id);
	/* 20 KiB of command: far beyond the exec request line; also a long variable */
	size_t big = 20 * 1024;
	char *body = malloc(big * 2 + 512), *val = malloc(big + 1);
	memset(val, 'v', big);
	val[big] = '\0';
	size_t cap = big * 2 + 512;
	int n = snprintf(body, cap, "{\"command\":\"x=");
	memset(body + n, 'y', big);
	n += (int)big;
	snprintf(body + n, cap - (size_t)n,
	        "; echo ${#x} ${#LONG} $(id -un); echo e >&2; exit 7\",\"environment\":{\"LONG\":\"%s\"}}",
	        val);
	run_on(id, body, NULL, &s, TIMEOUT);
	assert_noninteractive(&s, 7);
	assert_string_equal(s.out, "20480 20480 user\r\n");
	assert_string_equal(s.err, "e\r\n");
	seen_free(&s);
	free(body);
	free(val);
	assert_tmp_clean(id);
}

/* A learner's process watches /proc for the root shells of executions, reads the name of their
 * stderr rendezvous from a command line and plants a symlink (to a root-owned directory, or to a
 * file that would be created in it) or a directory of its own there before the root shell gets
 * to it. Over 200 executions, every one either runs normally or fails closed (exit 125), the
 * root-owned directory gains nothing and its secret never reaches an output. */
static void test_a_learner_racing_the_rendezvous_redirects_nothing(void **state)
{
	(void)state;
	enum { RUNS = 200 };
	struct seen s;
	char id[128];
	claim(id);
	/* the root-owned target, and the watcher (as the user, in its own session so that it
	 * outlives the execution that starts it) */
	run_on(id, "{\"command\":\"mkdir -m 700 /tmp/victim && echo TOPSECRET > /tmp/victim/secret\","
		   "\"privilegedExecution\":true}",
	       NULL, &s, TIMEOUT);
	assert_noninteractive(&s, 0);
	seen_free(&s);
	static const char watcher[] =
	    "import os, re\n"
	    "seen, n = set(), 0\n"
	    "pat = re.compile(rb'/tmp/poseidon-[0-9a-f-]+[.a-z]*')\n"
	    "while not os.path.exists('/workspace/stop'):\n"
	    "    for p in os.listdir('/proc'):\n"
	    "        try:\n"
	    "            c = open('/proc/' + p + '/cmdline', 'rb').read()\n"
	    "        except OSError:\n"
	    "            continue\n"
	    "        for m in pat.findall(c):\n"
	    "            t = m.decode()\n"
	    "            if t in seen:\n"
	    "                continue\n"
	    "            seen.add(t)\n"
	    "            try:\n"
	    "                if n % 3 == 0: os.symlink('/tmp/victim', t)\n"
	    "                elif n % 3 == 1: os.symlink('/tmp/victim/p%d' % n, t)\n"
	    "                else: os.mkdir(t)\n"
	    "                n += 1\n"
	    "                open('/tmp/plants', 'w').write(str(n))\n"
	    "            except OSError:\n"
	    "                pass\n";
	assert_int_equal(h_copy_file(&st, id, "watch.py", watcher, sizeof watcher - 1), 204);
	run_on(id, "{\"command\":\"setsid python3 watch.py </dev/null >/dev/null 2>&1 & sleep 0.5\"}", NULL, &s, TIMEOUT);
	assert_noninteractive(&s, 0);
	seen_free(&s);
	int normal = 0, closed = 0;
	for (int i = 0; i < RUNS; i++) {
		char body[128], want[32];
		snprintf(body, sizeof body, "{\"command\":\"echo run-%d; echo err-%d >&2\"}", i, i);
		snprintf(want, sizeof want, "run-%d\r\n", i);
		run_on(id, body, NULL, &s, TIMEOUT);
		const char *last = s.ncontrols > 1 ? s.controls[s.ncontrols - 1] : "";
		if ((s.out && strstr(s.out, "TOPSECRET")) || (s.err && strstr(s.err, "TOPSECRET")))
			fail_msg("run %d: the secret reached the client: %s %s", i, s.out ? s.out : "", s.err ? s.err : "");
		if (!strcmp(last, "{\"type\":\"exit\",\"data\":0}") && s.out && !strcmp(s.out, want))
			normal++;
		else if (!strcmp(last, "{\"type\":\"exit\",\"data\":125}") || strstr(last, "\"error\""))
			closed++;
		else
			fail_msg("run %d ended neither normally nor closed: %s out=%s err=%s", i, last, s.out ? s.out : "",
				 s.err ? s.err : "");
		seen_free(&s);
	}
	/* the watcher stops (told through the file route, which needs no rendezvous); what it did,
	 * and what the root-owned directory holds now */
	assert_int_equal(h_copy_file(&st, id, "stop", "", 0), 204);
	h_sleep_ms(500);
	run_on(id, "{\"command\":\"cat /tmp/plants; echo; ls -A /tmp/victim; cat /tmp/victim/secret\","
		   "\"privilegedExecution\":true}",
	       NULL, &s, TIMEOUT);
	printf("rendezvous race: %d runs normal, %d failed closed; the watcher planted %s", normal, closed,
	       s.out ? s.out : "");
	assert_non_null(s.out);
	int plants = atoi(s.out);
	char *rest = strchr(s.out, '\n');
	assert_non_null(rest);
	assert_string_equal(unix_lines(rest + 1), "secret\nTOPSECRET\n");
	assert_true(plants > 0); /* the race was run, not only offered */
	seen_free(&s);
	char path[256];
	snprintf(path, sizeof path, "/runners/%s", id);
	assert_int_equal(call("DELETE", path, NULL, NULL, 0), 204);
}

static void test_client_close_stops_the_program(void **state)
{
	(void)state;
	char id[128], pq[512], path[512], out[256], *d;
	size_t n;
	struct wsc c;
	claim(id);
	/* WS-19: the program receives SIGQUIT within 1 s, no terminal message, close 1000 */
	assert_int_equal(
	    execute(
	        id,
	        "{\"command\":\"trap \\\"echo quit > /tmp/q; exit 3\\\" QUIT; echo ready; sleep 30 & wait\"}",
	        pq, sizeof pq),
	    200);
	assert_int_equal(wsc_open(&c, st.port, pq, 1, NULL, NULL, 0), 101);
	struct seen s;
	memset(&s, 0, sizeof s);
	while (!s.out || !strstr(s.out, "ready")) {
		assert_int_equal(wsc_read(&c, TIMEOUT, &d, &n), 1);
		take_message(&s, d, n);
		free(d);
	}
	long long t0 = h_now_ms();
	assert_int_equal(wsc_send_close(&c, 1001), 0);
	int ncontrols = s.ncontrols;
	read_all(&c, &s, 5000);
	wsc_close(&c);
	assert_int_equal(s.ncontrols, ncontrols); /* nothing after start */
	assert_int_equal(s.close_code, 1000);
	snprintf(path, sizeof path, "/runners/%s/files/raw?path=%%2Ftmp%%2Fq&privilegedExecution=true", id);
	long status = 0;
	while (h_now_ms() - t0 < 1000 && (status = call("GET", path, NULL, out, sizeof out)) != 200)
		h_sleep_ms(50);
	assert_int_equal(status, 200);
	assert_string_equal(out, "quit\n");
	seen_free(&s);
	/* WS-25: the runner stays usable */
	h_sleep_ms(3500);
	run_on(id, "{\"command\":\"true\"}", NULL, &s, TIMEOUT);
	assert_noninteractive(&s, 0);
	seen_free(&s);
	assert_tmp_clean(id);
}

/* A client cannot pin a gateway with open executions: beyond wsgate.maxexecutionsperrunner on one
 * runner the handshake is 429, beyond wsgate.maxexecutions in all 503, both with a JSON message
 * and the execution left valid for a retry; once programs end there is room again. */
static void test_open_executions_are_bounded(void **state)
{
	(void)state;
	struct h_stack small = st;
	small.wsgate_port = 0;
	static const char *env[] = {"POSEIDON_WSGATE_MAXEXECUTIONSPERRUNNER=2", "POSEIDON_WSGATE_MAXEXECUTIONS=3", NULL};
	pid_t gate = h_stack_start_wsgate_with(&small, env, NULL);
	assert_true(gate > 0);
	char a[128], b[128], pq[512], body[1024];
	claim(a);
	claim(b);
	struct wsc c[4];
	for (int i = 0; i < 2; i++) {
		assert_int_equal(execute(a, "{\"command\":\"sleep 3\"}", pq, sizeof pq), 200);
		assert_int_equal(wsc_open(&c[i], small.wsgate_port, pq, 1, NULL, NULL, 0), 101);
	}
	h_sleep_ms(300); /* both programs run */
	assert_int_equal(execute(a, "{\"command\":\"true\"}", pq, sizeof pq), 200);
	struct wsc x;
	assert_int_equal(wsc_open(&x, small.wsgate_port, pq, 1, NULL, body, sizeof body), 429);
	assert_non_null(strstr(body, "\"message\":\"too many open executions on this runner"));
	wsc_close(&x);
	assert_int_equal(execute(b, "{\"command\":\"sleep 3\"}", pq, sizeof pq), 200);
	assert_int_equal(wsc_open(&c[2], small.wsgate_port, pq, 1, NULL, NULL, 0), 101);
	h_sleep_ms(300);
	char pq_b[512];
	assert_int_equal(execute(b, "{\"command\":\"echo again\"}", pq_b, sizeof pq_b), 200);
	assert_int_equal(wsc_open(&x, small.wsgate_port, pq_b, 1, NULL, body, sizeof body), 503);
	assert_non_null(strstr(body, "too many open executions on this gateway"));
	wsc_close(&x);
	/* the programs end: the refused executions were not used up and go through now */
	for (int i = 0; i < 3; i++) {
		struct seen s = {0};
		read_all(&c[i], &s, TIMEOUT);
		wsc_close(&c[i]);
		seen_free(&s);
	}
	assert_int_equal(wsc_open(&x, small.wsgate_port, pq_b, 1, NULL, NULL, 0), 101);
	struct seen s = {0};
	read_all(&x, &s, TIMEOUT);
	wsc_close(&x);
	assert_noninteractive(&s, 0);
	assert_string_equal(s.out, "again\r\n");
	seen_free(&s);
	h_stop(gate);
}

static void test_client_close_storms(void **state)
{
	(void)state;
	char ids[4][128], pq[512];
	for (int i = 0; i < 4; i++)
		claim(ids[i]);
	/* WS-16: connect and close at once (after 1 ms, or not even that), with and without a close
	 * frame, many at a time; the gateway stays up and the runners stay usable. Under ASan every
	 * exec costs several times as much: with 80 of them the last programs had not ended 3 s
	 * after their cancellation (every run), and the gateway destroys such a runner, as it
	 * must; with 32 they end in time. */
#ifdef __SANITIZE_ADDRESS__
	const int rounds = 4;
#else
	const int rounds = 10;
#endif
	for (int round = 0; round < rounds; round++) {
		struct wsc c[8];
		for (int k = 0; k < 8; k++) {
			assert_int_equal(execute(ids[k % 4], "{\"command\":\"sleep 2\"}", pq, sizeof pq),
			                 200);
			assert_int_equal(wsc_open(&c[k], st.port, pq, 1, NULL, NULL, 0), 101);
		}
		h_sleep_ms(round % 3);
		for (int k = 0; k < 8; k++) {
			if (k % 2)
				wsc_send_close(&c[k], 1000);
			wsc_close(&c[k]);
		}
	}
	assert_int_equal(kill(wsgate, 0), 0);
	h_sleep_ms(2000); /* the last programs get their SIGQUIT, leftovers are swept */
	for (int i = 0; i < 4; i++) {
		struct seen s;
		run_on(ids[i], "{\"command\":\"echo ok\"}", NULL, &s, TIMEOUT);
		assert_noninteractive(&s, 0);
		assert_string_equal(s.out, "ok\r\n");
		seen_free(&s);
		assert_int_equal(runner_status(ids[i]), 200);
		assert_tmp_clean(ids[i]);
	}
}

struct par {
	char runner[128];
	int index;
	int ok;
	char why[256];
};

static void *one_parallel(void *arg)
{
	struct par *p = arg;
	char body[256], want[64], pq[512];
	struct wsc c;
	struct seen s;
	memset(&s, 0, sizeof s);
	snprintf(body, sizeof body, "{\"command\":\"sleep 0.5; echo n%d; echo e%d >&2; exit %d\"}", p->index,
	         p->index, p->index % 50);
	if (execute(p->runner, body, pq, sizeof pq) != 200 ||
	    wsc_open(&c, st.port, pq, 1, NULL, NULL, 0) != 101) {
		snprintf(p->why, sizeof p->why, "execute or connect failed");
		return NULL;
	}
	read_all(&c, &s, 30000);
	wsc_close(&c);
	snprintf(want, sizeof want, "{\"type\":\"exit\",\"data\":%d}", p->index % 50);
	char o[32], e[32];
	snprintf(o, sizeof o, "n%d\r\n", p->index);
	snprintf(e, sizeof e, "e%d\r\n", p->index);
	p->ok = s.ncontrols == 2 && !strcmp(s.controls[1], want) && s.out && !strcmp(s.out, o) && s.err &&
	        !strcmp(s.err, e) && s.close_code == 1000 && !s.schema_errors;
	if (!p->ok)
		snprintf(p->why, sizeof p->why, "%d controls, last %s, out %s, err %s", s.ncontrols,
		         last_control(&s), s.out ? s.out : "-", s.err ? s.err : "-");
	seen_free(&s);
	return NULL;
}

static void test_50_concurrent_executions_on_10_runners(void **state)
{
	(void)state;
	static struct par ps[50];
	pthread_t t[50];
	char ids[10][128];
	for (int i = 0; i < 10; i++)
		claim(ids[i]);
	long long t0 = h_now_ms();
	for (int i = 0; i < 50; i++) {
		memset(&ps[i], 0, sizeof ps[i]);
		snprintf(ps[i].runner, sizeof ps[i].runner, "%s", ids[i % 10]);
		ps[i].index = i;
		assert_int_equal(pthread_create(&t[i], NULL, one_parallel, &ps[i]), 0);
	}
	int ok = 0;
	for (int i = 0; i < 50; i++) {
		pthread_join(t[i], NULL);
		ok += ps[i].ok;
		if (!ps[i].ok)
			fprintf(stderr, "execution %d: %s\n", i, ps[i].why);
	}
	fprintf(stderr, "50 concurrent executions on 10 runners: %lld ms\n", h_now_ms() - t0);
	assert_int_equal(ok, 50);
	for (int i = 0; i < 10; i++)
		assert_tmp_clean(ids[i]);
}

static void test_pings_keep_idle_sockets_alive(void **state)
{
	(void)state;
	struct seen s;
	char id[128];
	claim(id);
	/* a silent program: the gateway pings (every 400 ms in this test, 30 s by default) */
	run_on(id, "{\"command\":\"sleep 1.5\"}", NULL, &s, TIMEOUT);
	assert_noninteractive(&s, 0);
	assert_true(s.pings >= 2);
	seen_free(&s);
}

/* VmRSS of pid in KiB */
static long rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	snprintf(path, sizeof path, "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "VmRSS:", 6))
			kb = atol(line + 6);
	if (f)
		fclose(f);
	return kb;
}

static void test_slow_client_back_pressures_the_program(void **state)
{
	(void)state;
	char id[128], pq[512], out[256], path[512], *d;
	size_t n;
	struct wsc c;
	struct seen s;
	claim(id);
	memset(&s, 0, sizeof s);
	/* 40 MB of output to a client that does not read: the program must stall (its progress
	 * file stops growing) while neither the gateway's nor lighttpd's memory grows */
	assert_int_equal(
	    execute(
	        id,
	        "{\"command\":\"i=0; while [ $i -lt 40 ]; do head -c 1000000 /dev/zero | tr \\\"\\\\0\\\" x; "
	        "i=$((i+1)); echo $i > /tmp/progress; done; echo done\"}",
	        pq, sizeof pq),
	    200);
	long rss0 = rss_kib(wsgate), lrss0 = rss_kib(st.lighttpd);
	assert_int_equal(wsc_open(&c, st.port, pq, 1, NULL, NULL, 0), 101);
	h_sleep_ms(2500);
	snprintf(path, sizeof path, "/runners/%s/files/raw?path=%%2Ftmp%%2Fprogress&privilegedExecution=true",
	         id);
	assert_int_equal(call("GET", path, NULL, out, sizeof out), 200);
	int progress = atoi(out);
	long rss1 = rss_kib(wsgate), lrss1 = rss_kib(st.lighttpd);
	fprintf(stderr,
	        "slow client: program at %d of 40 MB after 2.5 s, RSS gateway %ld -> %ld KiB, lighttpd %ld "
	        "-> %ld KiB\n",
	        progress, rss0, rss1, lrss0, lrss1);
	assert_true(progress < 40);
#ifndef __SANITIZE_ADDRESS__
	/* (under ASan, freed memory waits in its quarantine, so RSS says nothing about queues) */
	assert_true(rss1 - rss0 < 16 * 1024);
#endif
	assert_true(lrss1 - lrss0 < 16 * 1024);
	/* then the client reads: everything arrives, in order, complete */
	read_all(&c, &s, 60000);
	wsc_close(&c);
	assert_noninteractive(&s, 0);
	assert_int_equal(s.out_len, 40 * 1000000 + strlen("done\r\n"));
	assert_string_equal(s.out + s.out_len - 6, "done\r\n");
	seen_free(&s);
	(void)d;
	(void)n;
}

static void test_memory_limit(void **state)
{
	(void)state;
	struct seen s;
	char id[128], pq[512];
	put_env(ENV_OOM, 1, 100);
	claim_env(id, ENV_OOM, 0);
	/* WS-13 as the reference's e2e test runs it */
	run_on(id, "{\"command\":\"</dev/zero head -c 110MB | tail > /dev/null\"}", NULL, &s, TIMEOUT);
	fprintf(stderr, "memory limit: controls %s | %s, stderr %s\n", s.controls[0], last_control(&s),
	        s.err ? s.err : "-");
	int runner_ok = execute(id, "{\"command\":\"true\"}", pq, sizeof pq) == 200;
	assert_noninteractive(&s, 137);
	assert_non_null(s.err);
	assert_non_null(strstr(s.err, "Killed"));
	assert_null(s.out);
	assert_true(runner_ok);
	seen_free(&s);
}

/* WS-22: exit 128 with an OOM restart of the runner's allocation is reported as Nomad's OOM. On
 * a real kernel the task's own process is never the victim of a runner's memory limit (the
 * largest process is: WS-13), and this machine's kernel ignores oom_score_adj, so the OOM news
 * goes into Redis as poseidon-refill writes it when the allocation restarts OOM-killed. */
static void test_exit_128_after_an_oom_restart(void **state)
{
	(void)state;
	char id[128], pq[512], *d;
	size_t n;
	struct wsc c;
	struct seen s;
	struct store *store = h_stack_store(&st);
	assert_non_null(store);
	for (int oom = 1; oom >= 0; oom--) {
		memset(&s, 0, sizeof s);
		claim(id);
		assert_int_equal(execute(id, "{\"command\":\"sleep 0.5; exit 128\"}", pq, sizeof pq), 200);
		assert_int_equal(wsc_open(&c, st.port, pq, 1, NULL, NULL, 0), 101);
		assert_int_equal(wsc_read(&c, TIMEOUT, &d, &n), 1);
		take_message(&s, d, n);
		free(d);
		if (oom) {
			struct perr e = {0};
			long long now = 0;
			char t[24];
			assert_int_equal(store_time_ms(store, &now, &e), 0);
			snprintf(t, sizeof t, "%lld", now);
			assert_int_equal(store_runner_set(store, id, &e, "oomAt", t, (char *)0), 1);
		}
		long long t0 = h_now_ms();
		read_all(&c, &s, 5000);
		wsc_close(&c);
		assert_int_equal(s.ncontrols, 2);
		assert_string_equal(last_control(&s), oom ? "{\"type\":\"error\",\"data\":\"the allocation was OOM Killed\"}"
		                                          : "{\"type\":\"exit\",\"data\":128}");
		/* without OOM news, exit 128 is held back for the documented second */
		if (!oom)
			assert_true(h_now_ms() - t0 >= 1000);
		assert_int_equal(s.close_code, 1000);
		seen_free(&s);
	}
	store_close(store);
}

/* The value of one line of GET /metrics, 0 when absent. */
static double metric(const char *name)
{
	static char body[1 << 20];
	assert_int_equal(call("GET", "/metrics", NULL, body, sizeof body), 200);
	const char *p = body;
	size_t n = strlen(name);
	while ((p = strstr(p, name)) != NULL) {
		if ((p == body || p[-1] == '\n') && p[n] == ' ')
			return atof(p + n + 1);
		p += n;
	}
	return 0;
}

/* poseidon_executions_total counts what the gateway saw end, by outcome. */
static void test_executions_are_counted_by_outcome(void **state)
{
	(void)state;
	struct seen s;
	double exits = metric("poseidon_executions_total{outcome=\"exit\"}");
	double timeouts = metric("poseidon_executions_total{outcome=\"timeout\"}");
	run_cmd("{\"command\":\"exit 3\"}", &s);
	assert_noninteractive(&s, 3);
	seen_free(&s);
	run_cmd("{\"command\":\"sleep 5\",\"timeLimit\":1}", &s);
	assert_string_equal(last_control(&s), "{\"type\":\"timeout\"}");
	seen_free(&s);
	assert_true(metric("poseidon_executions_total{outcome=\"exit\"}") == exits + 1);
	assert_true(metric("poseidon_executions_total{outcome=\"timeout\"}") == timeouts + 1);
}

static void test_interactivestderr_false_merges_stderr(void **state)
{
	(void)state;
	struct h_stack other = st;
	struct seen s;
	char id[128], pq[512];
	struct wsc c;
	other.wsgate_port = 0;
	const char *env[] = {"POSEIDON_SERVER_INTERACTIVESTDERR=false", NULL};
	pid_t pid = h_stack_start_wsgate_with(&other, env, NULL);
	assert_true(pid > 0);
	claim(id);
	memset(&s, 0, sizeof s);
	assert_int_equal(execute(id, "{\"command\":\"echo out; echo err >&2; exit 5\"}", pq, sizeof pq), 200);
	assert_int_equal(wsc_open(&c, other.wsgate_port, pq, 1, NULL, NULL, 0), 101);
	read_all(&c, &s, TIMEOUT);
	wsc_close(&c);
	assert_noninteractive(&s, 5);
	assert_string_equal(s.out, "out\r\nerr\r\n");
	assert_null(s.err);
	seen_free(&s);
	h_stop(pid);
}

static void test_token_on_the_handshake(void **state)
{
	(void)state;
	struct h_stack sec;
	struct h_front_opts o = {.workers = 1, .token = "S3cr3t"};
	char url[512], pq[512], body[512], id[128];
	struct wsc c;
	struct seen s;
	memset(&sec, 0, sizeof sec);
	sec.redis = st.redis;
	sec.nomad = st.nomad;
	assert_int_equal(h_stack_start(&sec, &o), 0);
	const char *env[] = {"POSEIDON_SERVER_TOKEN=S3cr3t", NULL};
	pid_t pid = h_stack_start_wsgate_with(&sec, env, NULL);
	assert_true(pid > 0);
	claim(id);
	const char *hdr[] = {"Poseidon-Token: S3cr3t", NULL};
	struct h_resp r;
	snprintf(url, sizeof url, "%s/runners/%s/execute", sec.base, id);
	assert_int_equal(h_http(&r, "POST", url, "{\"command\":\"echo authorised\"}", -1, hdr), 0);
	assert_int_equal(r.status, 200);
	char *u = strchr(strstr(r.body, "ws://") + 5, '/');
	snprintf(pq, sizeof pq, "%.*s", (int)strcspn(u, "\""), u);
	h_resp_free(&r);
	/* AUTH-6: the handshake needs the token; without or with a wrong one it is 401, empty */
	assert_int_equal(wsc_open(&c, sec.port, pq, 1, NULL, body, sizeof body), 401);
	assert_string_equal(body, "");
	wsc_close(&c);
	const char *wrong[] = {"Poseidon-Token: Wr0ngT0k3n", NULL};
	assert_int_equal(wsc_open(&c, sec.port, pq, 1, wrong, body, sizeof body), 401);
	wsc_close(&c);
	const char *empty[] = {"Poseidon-Token:", NULL};
	assert_int_equal(wsc_open(&c, sec.port, pq, 1, empty, body, sizeof body), 401);
	wsc_close(&c);
	/* auth comes before the runner lookup: an unknown runner without a token is 401 too */
	assert_int_equal(wsc_open(&c, sec.port, "/api/v1/runners/n0n-3x1st1ng-1d/websocket?executionID=x", 1,
	                          NULL, body, sizeof body),
	                 401);
	wsc_close(&c);
	memset(&s, 0, sizeof s);
	assert_int_equal(wsc_open(&c, sec.port, pq, 1, hdr, NULL, 0), 101);
	read_all(&c, &s, TIMEOUT);
	wsc_close(&c);
	assert_noninteractive(&s, 0);
	assert_string_equal(s.out, "authorised\r\n");
	seen_free(&s);
	h_stop(pid);
	h_stop(sec.lighttpd);
}

static void test_restart_ends_streams_with_an_error_and_loses_nothing(void **state)
{
	(void)state;
	char id[128], pq[512], later[512], *d;
	size_t n;
	struct wsc c;
	struct seen s;
	claim(id);
	memset(&s, 0, sizeof s);
	assert_int_equal(execute(id, "{\"command\":\"sleep 30\"}", pq, sizeof pq), 200);
	assert_int_equal(execute(id, "{\"command\":\"echo after restart\"}", later, sizeof later), 200);
	assert_int_equal(wsc_open(&c, st.port, pq, 1, NULL, NULL, 0), 101);
	assert_int_equal(wsc_read(&c, TIMEOUT, &d, &n), 1);
	take_message(&s, d, n);
	free(d);
	h_sleep_ms(300);
	/* a second gateway on the same port (SO_REUSEPORT) takes over while the first stops */
	pid_t second = h_stack_start_wsgate_with(&st, NULL, wsgate_args);
	assert_true(second > 0);
	/* the stream ends at once, before the stopping gateway has exited (its exit may take a
	 * while under ASan's leak check) */
	kill(wsgate, SIGTERM);
	long long t0 = h_now_ms();
	read_all(&c, &s, 5000);
	wsc_close(&c);
	assert_true(h_now_ms() - t0 < 3000);
	assert_int_equal(WEXITSTATUS(h_stop(wsgate)), 0);
	wsgate = second;
	assert_int_equal(s.ncontrols, 2);
	assert_string_equal(last_control(&s),
	                    "{\"type\":\"error\",\"data\":\"Error executing the request\"}");
	assert_int_equal(s.close_code, 1000);
	seen_free(&s);
	/* the runner and the execution prepared before the restart are still there */
	memset(&s, 0, sizeof s);
	assert_int_equal(wsc_open(&c, st.port, later, 1, NULL, NULL, 0), 101);
	read_all(&c, &s, TIMEOUT);
	wsc_close(&c);
	assert_noninteractive(&s, 0);
	assert_string_equal(s.out, "after restart\r\n");
	seen_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_trivial_command_and_stdout),
	    cmocka_unit_test(test_stderr_is_split_and_exit_codes),
	    cmocka_unit_test(test_unprivileged_and_privileged_user),
	    cmocka_unit_test(test_stdin_is_echoed_by_the_tty),
	    cmocka_unit_test(test_make_and_environment_variables),
	    cmocka_unit_test(test_execute_validation),
	    cmocka_unit_test(test_handshake_checks_and_single_use),
	    cmocka_unit_test(test_unicode_and_invalid_bytes),
	    cmocka_unit_test(test_long_output_is_complete),
	    cmocka_unit_test(test_long_command_goes_through_a_script),
	    cmocka_unit_test(test_time_limit),
	    cmocka_unit_test(test_output_after_time_limit_is_not_sent),
	    cmocka_unit_test(test_inactivity_timeout_during_execution),
	    cmocka_unit_test(test_connect_pushes_the_deadline_execute_does_not),
	    cmocka_unit_test(test_delete_during_execution),
	    cmocka_unit_test(test_client_close_stops_the_program),
	    cmocka_unit_test(test_client_close_storms),
	    cmocka_unit_test(test_50_concurrent_executions_on_10_runners),
	    cmocka_unit_test(test_pings_keep_idle_sockets_alive),
	    cmocka_unit_test(test_slow_client_back_pressures_the_program),
	    cmocka_unit_test(test_interactivestderr_false_merges_stderr),
	    cmocka_unit_test(test_executions_are_counted_by_outcome),
	    cmocka_unit_test(test_token_on_the_handshake),
	    cmocka_unit_test(test_a_learner_racing_the_rendezvous_redirects_nothing),
	    cmocka_unit_test(test_open_executions_are_bounded),
	    cmocka_unit_test(test_runner_holds_against_a_hostile_program),
	    cmocka_unit_test(test_a_huge_write_does_not_reach_the_host_disk),
	    cmocka_unit_test(test_network_access_reaches_out_and_not_home),
	    cmocka_unit_test(test_memory_limit),
	    cmocka_unit_test(test_exit_128_after_an_oom_restart),
	    cmocka_unit_test(test_restart_ends_streams_with_an_error_and_loses_nothing),
	};
	if (getenv("POSEIDON_TEST_FILTER")) /* e.g. "*time_limit*" */
		cmocka_set_test_filter(getenv("POSEIDON_TEST_FILTER"));
	return cmocka_run_group_tests(tests, setup, teardown);
}
