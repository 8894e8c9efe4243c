/* Peers that misbehave must neither make an agent spin nor stall it (docs/reliability.md,
 * "hostile learner / hostile client"). Each test puts nomad-local or poseidon-wsgate in a state
 * that a learner's program or a client can bring about on purpose, measures the process's CPU
 * time (utime + stime of /proc/<pid>/stat) while nothing should happen, and then checks that the
 * data still flows:
 *
 *   - a forwarded port (a group network) whose connection one side half-closes while the other
 *     stays idle, in both directions;
 *   - API connections half-closed by the client: an exec WebSocket paused for back-pressure, and
 *     pipelined requests whose answers are never read;
 *   - exec with a tty fed more stdin than the terminal holds at once, and a 0x1C behind it;
 *   - more connections than the process has descriptors, on nomad-local's API port, on a
 *     forwarded port and on the gateway. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "harness_nomad.h"

#define TIMEOUT_MS      10000
#define IDLE_MS         2000   /* how long a quiet state is watched */
#define IDLE_CPU_MAX_MS 200    /* the CPU time a process may use meanwhile: 10 % of one core */
#define FORWARD_BYTES   600000 /* more than portfwd's buffer and the sockets' together */

/* ---- small helpers ---- */

static long long cpu_ms(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	assert_non_null(p);
	p += 2; /* field 3, the state */
	for (int i = 3; i < 14; i++)
		p = strchr(p, ' ') + 1;
	unsigned long long ut = strtoull(p, &p, 10), st = strtoull(p, NULL, 10);
	return (long long)(ut + st) * 1000 / sysconf(_SC_CLK_TCK);
}

/* CPU time pid used over IDLE_MS of wall time. */
static long long idle_cpu_ms(pid_t pid)
{
	long long before = cpu_ms(pid);
	h_sleep_ms(IDLE_MS);
	return cpu_ms(pid) - before;
}

/* Waits (at most 30 s) until pid has been quiet for a quarter second: work it was given (50,000
 * answers take seconds under ASan) is done then, while a spin never gets quiet. ms waited. */
static long long until_quiet(pid_t pid)
{
	long long t0 = h_now_ms();
	while (h_now_ms() - t0 < 30000) {
		long long before = cpu_ms(pid);
		h_sleep_ms(250);
		if (cpu_ms(pid) - before < 25)
			break;
	}
	return h_now_ms() - t0;
}

static void why_add(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void why_add(char *why, size_t cap, const char *fmt, ...)
{
	size_t l = strlen(why);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why + l, cap - l, fmt, ap);
	va_end(ap);
}

/* A blocking socket connected to port, or -1. The connect gives up after 2 s: a listener whose
 * queue is full drops the SYN, and a plain connect() would retry for about two minutes. */
static int connect_to(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (fd < 0)
		return -1;
	int rc = connect(fd, (struct sockaddr *)&a, sizeof a);
	if (rc < 0 && errno == EINPROGRESS) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		int err = 0;
		socklen_t len = sizeof err;
		if (poll(&p, 1, 2000) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0)
			rc = 0;
	}
	if (rc == 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) == 0)
		return fd;
	close(fd);
	return -1;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads until EOF (returns the byte count, data in *out) or timeout (-1). */
static long recv_to_eof(int fd, int timeout_ms, char **out)
{
	size_t len = 0, cap = 65536;
	char *b = malloc(cap);
	long long end = h_now_ms() + timeout_ms;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		long long left = end - h_now_ms();
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		if (len + 65536 > cap)
			b = realloc(b, cap *= 2);
		ssize_t r = recv(fd, b + len, 65536, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			b[len] = '\0';
			*out = b;
			return r == 0 ? (long)len : -1;
		}
		len += (size_t)r;
	}
	b[len] = '\0';
	*out = b;
	return -1;
}

/* ---- a forwarded port ---- */

static void run_job(struct h_nomad *n, const char *id, const char *extra, char alloc[64])
{
	char *body = h_nomad_job(id, 256, extra);
	assert_int_equal(h_nomad_register(n, body, NULL), 200);
	free(body);
	assert_int_equal(h_nomad_wait_running(n, id, alloc, TIMEOUT_MS), 0);
}

#define NETWORK_8080                                                                                         \
	"\"Networks\":[{\"Mode\":\"bridge\",\"DynamicPorts\":[{\"Label\":\"8080\",\"To\":8080}]}]"

/* The host port forwarded to the allocation's port 8080. */
static int forwarded_port(struct h_nomad *n, const char *alloc)
{
	char url[256];
	struct h_resp r;
	snprintf(url, sizeof url, "%s/v1/allocation/%s", n->url, alloc);
	assert_int_equal(h_http(&r, "GET", url, NULL, 0, h_nomad_headers(n)), 0);
	json_object *o = json_tokener_parse(r.body), *ar, *sh, *ports, *v;
	h_resp_free(&r);
	assert_true(json_object_object_get_ex(o, "AllocatedResources", &ar));
	assert_true(json_object_object_get_ex(ar, "Shared", &sh));
	assert_true(json_object_object_get_ex(sh, "Ports", &ports));
	assert_true(json_object_object_get_ex(json_object_array_get_idx(ports, 0), "Value", &v));
	int port = json_object_get_int(v);
	json_object_put(o);
	return port;
}

/* Runs `sh -c script` in the allocation (stdin: data, then closed, when given). */
static void sh(struct h_nomad *n, const char *alloc, const char *script, const char *stdin_data,
               struct h_exec *x)
{
	json_object *a = json_object_new_array();
	json_object_array_add(a, json_object_new_string("/bin/sh"));
	json_object_array_add(a, json_object_new_string("-c"));
	json_object_array_add(a, json_object_new_string(script));
	int rc = h_nomad_exec(n, alloc, json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN), 0,
	                      stdin_data, stdin_data != NULL, x);
	json_object_put(a);
	assert_int_equal(rc, 0);
}

/* Starts a program (python3 source) in the background in the allocation, and waits until it
 * has created /tmp/ready. */
static void start_server(struct h_nomad *n, const char *alloc, const char *python)
{
	struct h_exec x;
	sh(n, alloc, "cat > /tmp/server.py", python, &x);
	assert_int_equal(x.exit_code, 0);
	h_exec_free(&x);
	sh(n, alloc,
	   "rm -f /tmp/ready; python3 /tmp/server.py </dev/null >/tmp/server.log 2>&1 &\n"
	   "for i in $(seq 200); do [ -e /tmp/ready ] && exit 0; sleep 0.05; done; cat /tmp/server.log; exit "
	   "1",
	   NULL, &x);
	if (x.exit_code != 0)
		fail_msg("the server in the runner did not start: %s%s", x.out, x.err);
	h_exec_free(&x);
}

static int all_bytes_are(const char *p, size_t n, char c)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != c)
			return 0;
	return 1;
}

/* A program in the runner that half-closes a forwarded connection (sends, shuts its write side
 * down, then reads), and a client on the host that half-closes one (sends, shuts down, then
 * reads), each with the other end idle for a while: the agent must sleep meanwhile (it spun at
 * 100 % when it kept asking for EPOLLRDHUP after that side's EOF), and the data must arrive
 * whole in both directions. */
static void test_half_closed_forwarded_connection_does_not_spin(void **state)
{
	(void)state;
	struct h_nomad n;
	struct h_exec x;
	char alloc[64], why[4096] = "", *data;
	assert_int_equal(h_nomad_start(&n, NULL), 0);
	run_job(&n, "spin-halfclose", NETWORK_8080, alloc);
	start_server(&n, alloc,
	             "import os, socket, time\n"
	             "N = 600000\n"
	             "s = socket.socket()\n"
	             "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
	             "s.bind((\"127.0.0.1\", 8080))\n"
	             "s.listen(8)\n"
	             "open(\"/tmp/ready\", \"w\").close()\n"
	             "def drain(c):\n"
	             "    got, ok = 0, True\n"
	             "    while True:\n"
	             "        d = c.recv(65536)\n"
	             "        if not d:\n"
	             "            return got, ok\n"
	             "        got += len(d)\n"
	             "        ok = ok and d == b\"h\" * len(d)\n"
	             "c, _ = s.accept()\n"
	             "c.sendall(b\"r\" * N)\n"
	             "c.shutdown(socket.SHUT_WR)\n"
	             "got, ok = drain(c)\n"
	             "open(\"/tmp/first\", \"w\").write(\"%d %s\" % (got, ok))\n"
	             "c.close()\n"
	             "c, _ = s.accept()\n"
	             "got, ok = drain(c)\n"
	             "while not os.path.exists(\"/tmp/go\"):\n"
	             "    time.sleep(0.05)\n"
	             "c.sendall((\"%d %s\\n\" % (got, ok)).encode() + b\"r\" * N)\n"
	             "c.close()\n");
	int port = forwarded_port(&n, alloc);
	char *mine = malloc(FORWARD_BYTES);
	memset(mine, 'h', FORWARD_BYTES);

	/* 1: the runner sends and half-closes; the client on the host stays idle, then answers */
	int fd = connect_to(port);
	assert_true(fd >= 0);
	long got = recv_to_eof(fd, TIMEOUT_MS, &data);
	if (got != FORWARD_BYTES || !all_bytes_are(data, (size_t)got, 'r'))
		why_add(why, sizeof why, "runner to host: %ld bytes (want %d 'r') before the runner's EOF; ",
		        got, FORWARD_BYTES);
	free(data);
	long long cpu = idle_cpu_ms(n.pid);
	if (cpu > IDLE_CPU_MAX_MS)
		why_add(why, sizeof why,
		        "runner half-closed, host idle: the agent used %lld ms of CPU in %d ms; ", cpu,
		        IDLE_MS);
	printf("runner half-closed, host idle: agent CPU %lld ms in %d ms\n", cpu, IDLE_MS);
	assert_int_equal(send_all(fd, mine, FORWARD_BYTES), 0);
	shutdown(fd, SHUT_WR);
	if (recv_to_eof(fd, TIMEOUT_MS, &data) != 0)
		why_add(why, sizeof why, "host to runner: the connection did not end after both EOFs; ");
	free(data);
	close(fd);
	sh(&n, alloc, "for i in $(seq 100); do [ -s /tmp/first ] && break; sleep 0.05; done; cat /tmp/first",
	   NULL, &x);
	if (strcmp(x.out, "600000 True") != 0)
		why_add(why, sizeof why, "host to runner after the runner's EOF: the runner got \"%s\"; ",
		        x.out);
	h_exec_free(&x);

	/* 2: the client on the host sends and half-closes; the runner stays idle, then answers */
	fd = connect_to(port);
	assert_true(fd >= 0);
	assert_int_equal(send_all(fd, mine, FORWARD_BYTES), 0);
	shutdown(fd, SHUT_WR);
	h_sleep_ms(300); /* the data reaches the runner, which then waits for /tmp/go */
	cpu = idle_cpu_ms(n.pid);
	if (cpu > IDLE_CPU_MAX_MS)
		why_add(why, sizeof why,
		        "host half-closed, runner idle: the agent used %lld ms of CPU in %d ms; ", cpu,
		        IDLE_MS);
	printf("host half-closed, runner idle: agent CPU %lld ms in %d ms\n", cpu, IDLE_MS);
	sh(&n, alloc, "touch /tmp/go", NULL, &x);
	h_exec_free(&x);
	got = recv_to_eof(fd, TIMEOUT_MS, &data);
	const char *want = "600000 True\n";
	if (got != (long)strlen(want) + FORWARD_BYTES || strncmp(data, want, strlen(want)) != 0 ||
	    !all_bytes_are(data + strlen(want), FORWARD_BYTES, 'r'))
		why_add(why, sizeof why,
		        "runner to host after the host's EOF: %ld bytes starting \"%.12s\"; ", got,
		        got > 0 ? data : "");
	free(data);
	close(fd);
	free(mine);
	h_nomad_stop(&n);
	h_nomad_cleanup(&n);
	if (why[0])
		fail_msg("%s", why);
}

/* ---- exec over the WebSocket, and the API's own connections ---- */

static void b64enc(const unsigned char *in, size_t n, char *out)
{
	static const char *t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) |
		             (i + 2 < n ? in[i + 2] : 0);
		out[o++] = t[v >> 18 & 63];
		out[o++] = t[v >> 12 & 63];
		out[o++] = i + 1 < n ? t[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? t[v & 63] : '=';
	}
	out[o] = '\0';
}

static size_t b64dec(const char *in, char *out)
{
	size_t o = 0;
	unsigned v = 0;
	int bits = 0;
	for (; *in && *in != '='; in++) {
		const char *t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
		const char *q = strchr(t, *in);
		if (!q)
			continue;
		v = v << 6 | (unsigned)(q - t);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)(v >> bits & 0xff);
		}
	}
	out[o] = '\0';
	return o;
}

/* An exec session over the WebSocket: sends stdin frames, collects stdout. */
struct exec_ws {
	struct h_ws w;
	char out[65536];
	size_t out_len;
	int exited, exit_code;
};

/* Runs `sh -c script`, on a tty or on pipes. */
static void exec_open(struct exec_ws *t, struct h_nomad *n, const char *alloc, const char *script, int tty)
{
	char path[4096], esc[3000];
	size_t o = 0;
	json_object *a = json_object_new_array();
	json_object_array_add(a, json_object_new_string("/bin/sh"));
	json_object_array_add(a, json_object_new_string("-c"));
	json_object_array_add(a, json_object_new_string(script));
	for (const unsigned char *p =
	         (const unsigned char *)json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN);
	     *p && o + 4 < sizeof esc; p++)
		o += (size_t)snprintf(esc + o, 4, "%%%02X", *p);
	json_object_put(a);
	snprintf(path, sizeof path, "/v1/client/allocation/%s/exec?command=%s&task=default-task&tty=%s",
	         alloc, esc, tty ? "true" : "false");
	memset(t, 0, sizeof *t);
	assert_int_equal(h_ws_connect(&t->w, n->port, path, NULL, NULL, 0), 101);
}

/* Reads frames until stdout contains want (1), the session ends or timeout_ms pass (0). */
static int exec_wait_for(struct exec_ws *t, const char *want, int timeout_ms)
{
	long long end = h_now_ms() + timeout_ms;
	while (!strstr(t->out, want)) {
		long long left = end - h_now_ms();
		char *p;
		size_t len;
		if (left <= 0)
			return 0;
		int op = h_ws_recv(&t->w, (int)left, &p, &len);
		if (op != 1) {
			free(p);
			return 0;
		}
		json_object *o = json_tokener_parse(p), *s, *d, *v;
		if (o && json_object_object_get_ex(o, "stdout", &s) &&
		    json_object_object_get_ex(s, "data", &d)) {
			char raw[2048];
			size_t rl = b64dec(json_object_get_string(d), raw);
			if (t->out_len + rl < sizeof t->out) {
				memcpy(t->out + t->out_len, raw, rl);
				t->out_len += rl;
				t->out[t->out_len] = '\0';
			}
		}
		if (o && json_object_object_get_ex(o, "exited", &v)) {
			t->exited = 1;
			json_object *r, *ec;
			if (json_object_object_get_ex(o, "result", &r) &&
			    json_object_object_get_ex(r, "exit_code", &ec))
				t->exit_code = json_object_get_int(ec);
		}
		json_object_put(o);
		free(p);
	}
	return 1;
}

/* Sends total bytes of c as stdin frames of at most frame bytes each. */
static void exec_send_stdin(struct exec_ws *t, char c, size_t total, size_t frame)
{
	unsigned char *raw = malloc(frame);
	char *b64 = malloc(frame * 4 / 3 + 8), *msg = malloc(frame * 4 / 3 + 64);
	memset(raw, (unsigned char)c, frame);
	for (size_t sent = 0; sent < total; sent += frame) {
		size_t n = total - sent < frame ? total - sent : frame;
		b64enc(raw, n, b64);
		snprintf(msg, frame * 4 / 3 + 64, "{\"stdin\":{\"data\":\"%s\"}}", b64);
		assert_int_equal(h_ws_send_text(&t->w, msg), 0);
	}
	free(raw);
	free(b64);
	free(msg);
}

/* The status of GET path on port (HTTP/1.0, the server closes), 0 without an answer in 2 s. */
static int http_status(int port, const char *path)
{
	char req[512], *data = NULL;
	int status = 0;
	int fd = connect_to(port);
	if (fd < 0)
		return 0;
	int n = snprintf(req, sizeof req,
	                 "GET %s HTTP/1.0\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", path, port);
	if (send_all(fd, req, (size_t)n) == 0) {
		recv_to_eof(fd, 2000, &data);
		if (data && sscanf(data, "HTTP/1.%*d %d", &status) != 1)
			status = 0;
	}
	free(data);
	close(fd);
	return status;
}

static int nomad_answers(void *arg)
{
	struct h_nomad *n = arg;
	return http_status(n->port, "/v1/status/leader") == 200;
}

/* The API's clients may half-close too: a WebSocket client whose stdin the program does not
 * read (the connection is paused for back-pressure), and a client that pipelines requests and
 * half-closes without reading the answers (the connection waits to flush them). The agent kept
 * asking for EPOLLRDHUP / EPOLLIN after that EOF and spun until the connection ended. */
static void test_half_closed_api_connections_do_not_spin(void **state)
{
	(void)state;
	struct h_nomad n;
	char alloc[64], why[2048] = "";
	assert_int_equal(h_nomad_start(&n, NULL), 0);
	run_job(&n, "spin-api-halfclose", "", alloc);

	/* 1: exec stdin beyond EXEC_STDIN_MAX (1 MiB) to a program that does not read it, then EOF;
	 * little enough beyond it that the socket holds the rest and the FIN arrives */
	struct exec_ws t;
	exec_open(&t, &n, alloc, "echo READY; exec sleep 30", 0);
	assert_true(exec_wait_for(&t, "READY\n", TIMEOUT_MS));
	exec_send_stdin(&t, 'a', 1200 * 1024, 65536);
	shutdown(t.w.fd, SHUT_WR);
	h_sleep_ms(300);
	long long cpu = idle_cpu_ms(n.pid);
	printf("exec WebSocket paused and half-closed: agent CPU %lld ms in %d ms\n", cpu, IDLE_MS);
	if (cpu > IDLE_CPU_MAX_MS)
		why_add(why, sizeof why, "exec WebSocket paused and half-closed: %lld ms of CPU in %d ms; ",
		        cpu, IDLE_MS);
	h_ws_close(&t.w);

	/* 2: pipelined requests, half-closed, answers never read */
	int fd = connect_to(n.port);
	assert_true(fd >= 0);
	static const char one[] = "GET /v1/agent/self HTTP/1.1\r\nHost: x\r\n\r\n";
	size_t count = 50000, len = (sizeof one - 1) * count;
	char *reqs = malloc(len);
	for (size_t i = 0; i < count; i++)
		memcpy(reqs + i * (sizeof one - 1), one, sizeof one - 1);
	assert_int_equal(send_all(fd, reqs, len), 0);
	free(reqs);
	shutdown(fd, SHUT_WR);
	/* all answered: about 15 MB, more than the sockets hold */
	long long answered = until_quiet(n.pid);
	cpu = idle_cpu_ms(n.pid);
	printf("pipelined requests half-closed, answers unread: quiet after %lld ms, then agent CPU %lld ms in %d ms\n",
	       answered, cpu, IDLE_MS);
	if (cpu > IDLE_CPU_MAX_MS)
		why_add(why, sizeof why,
		        "pipelined requests half-closed, answers unread: %lld ms of CPU in %d ms; ", cpu,
		        IDLE_MS);
	close(fd);
	if (!nomad_answers(&n))
		why_add(why, sizeof why, "the agent does not answer afterwards; ");
	h_nomad_stop(&n);
	h_nomad_cleanup(&n);
	if (why[0])
		fail_msg("%s", why);
}

/* More stdin than a terminal takes at once (its buffers hold about 68 KB): the rest must follow
 * as the program reads, without waiting for more frames (the pty master was written only when
 * a frame arrived), and a 0x1C behind a large input must reach the program. */
static void test_tty_stdin_flows_and_a_quit_behind_it_arrives(void **state)
{
	(void)state;
	struct h_nomad n;
	struct exec_ws t;
	char alloc[64], why[2048] = "";
	assert_int_equal(h_nomad_start(&n, NULL), 0);
	run_job(&n, "spin-tty", "", alloc);

	/* 100,000 bytes in one frame, read by head in non-canonical mode */
	exec_open(&t, &n, alloc, "stty -icanon -echo; echo READY; head -c 100000 | wc -c", 1);
	assert_true(exec_wait_for(&t, "READY\r\n", TIMEOUT_MS));
	long long t0 = h_now_ms();
	exec_send_stdin(&t, 'a', 100000, 100000);
	if (!exec_wait_for(&t, "100000\r\n", 5000))
		why_add(why, sizeof why, "100000 bytes of tty stdin: wc printed \"%s\" within 5 s; ", t.out);
	else
		printf("100000 bytes through the tty: wc answered after %lld ms\n", h_now_ms() - t0);
	h_ws_close(&t.w);

	/* 200,000 bytes for cat, then a 0x1C: SIGQUIT through the terminal, trapped */
	exec_open(&t, &n, alloc,
	          "ulimit -c 0; trap 'echo QUIT-TRAPPED; exit 7' QUIT; stty -icanon -echo; echo READY; cat "
	          ">/dev/null",
	          1);
	assert_true(exec_wait_for(&t, "READY\r\n", TIMEOUT_MS));
	t0 = h_now_ms();
	exec_send_stdin(&t, 'a', 200000, 25000);
	exec_send_stdin(&t, 0x1c, 1, 1);
	if (!exec_wait_for(&t, "QUIT-TRAPPED\r\n", 5000))
		why_add(why, sizeof why,
		        "a 0x1C after 200000 bytes of tty stdin did not reach the program: \"%s\"; ", t.out);
	else {
		printf("0x1C behind 200000 bytes: trapped after %lld ms\n", h_now_ms() - t0);
		exec_wait_for(&t, "\001never", 5000); /* to the exit frame */
		if (!t.exited || t.exit_code != 7)
			why_add(why, sizeof why, "after the trap: exited %d, exit code %d (want 7); ",
			        t.exited, t.exit_code);
	}
	h_ws_close(&t.w);
	h_nomad_stop(&n);
	h_nomad_cleanup(&n);
	if (why[0])
		fail_msg("%s", why);
}

/* ---- descriptors running out ---- */

#define NOFILE_LIMIT 64  /* descriptors left to a process in the accept tests */
#define CLIENTS      100 /* connections opened against it */

static void limit_nofile(pid_t pid, rlim_t n)
{
	struct rlimit rl = {.rlim_cur = n, .rlim_max = n};
	assert_int_equal(prlimit(pid, RLIMIT_NOFILE, &rl, NULL), 0);
}

static void limit_nofile_restore(pid_t pid)
{
	struct rlimit rl = {.rlim_cur = 4096, .rlim_max = 4096};
	prlimit(pid, RLIMIT_NOFILE, &rl, NULL);
}

/* Lines of a log that report accept() failing or a listener waiting for descriptors. */
static int accept_log_lines(const char *log, long from)
{
	FILE *f = fopen(log, "r");
	char line[4096];
	int n = 0;
	if (!f)
		return -1;
	fseek(f, from, SEEK_SET);
	while (fgets(line, sizeof line, f))
		if (strcasestr(line, "accept") || strcasestr(line, "did not take a connection"))
			n++;
	fclose(f);
	return n;
}

static long file_size(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fclose(f);
	return n;
}

/* Opens CLIENTS idle connections to port; returns how many connected. */
static int open_clients(int port, int fds[CLIENTS])
{
	int ok = 0;
	for (int i = 0; i < CLIENTS; i++) {
		fds[i] = connect_to(port);
		ok += fds[i] >= 0;
	}
	return ok;
}

static void close_clients(int fds[CLIENTS])
{
	for (int i = 0; i < CLIENTS; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* The process pid, left NOFILE_LIMIT descriptors, gets CLIENTS connections on port: while they
 * are open it must sleep and log at most a few lines; once they are closed, answer() must
 * succeed again. */
static void flood_and_recover(pid_t pid, int port, const char *log, const char *what, int (*answer)(void *),
                              void *arg, char *why, size_t cap)
{
	int fds[CLIENTS];
	long from = file_size(log);
	limit_nofile(pid, NOFILE_LIMIT);
	int opened = open_clients(port, fds);
	h_sleep_ms(300); /* it takes what it can */
	long long cpu = idle_cpu_ms(pid);
	int lines = accept_log_lines(log, from);
	printf("%s: %d connections, %d descriptors: CPU %lld ms in %d ms, %d log lines about accepting\n",
	       what, opened, NOFILE_LIMIT, cpu, IDLE_MS, lines);
	if (opened < CLIENTS)
		why_add(why, cap, "%s: only %d of %d connections opened; ", what, opened, CLIENTS);
	if (cpu > IDLE_CPU_MAX_MS)
		why_add(why, cap, "%s out of descriptors: %lld ms of CPU in %d ms; ", what, cpu, IDLE_MS);
	if (lines > 3)
		why_add(why, cap, "%s out of descriptors: %d log lines about accepting; ", what, lines);
	close_clients(fds);
	long long t0 = h_now_ms();
	int ok = 0;
	while (!(ok = answer(arg)) && h_now_ms() - t0 < 5000)
		h_sleep_ms(100);
	if (!ok)
		why_add(why, cap, "%s: no answer within 5 s after the connections closed; ", what);
	else
		printf("%s: answering again %lld ms after the connections closed\n", what, h_now_ms() - t0);
	lines = accept_log_lines(log, from);
	if (lines > 3)
		why_add(why, cap, "%s: %d log lines about accepting in all; ", what, lines);
	limit_nofile_restore(pid);
}

struct fwd {
	int port;
};

static int forward_answers(void *arg)
{
	struct fwd *f = arg;
	int fd = connect_to(f->port);
	char *data = NULL;
	if (fd < 0)
		return 0;
	shutdown(fd, SHUT_WR);
	long got = recv_to_eof(fd, 2000, &data);
	int ok = got > 0 && strcmp(data, "hi\n") == 0;
	free(data);
	close(fd);
	return ok;
}

/* nomad-local's API port and a forwarded port, each flooded with more connections than the
 * agent has descriptors: it stopped accepting until one was free instead of failing accept()
 * at 100 % CPU with a log line each time (1.14 million lines in 6 s). */
static void test_nomad_local_out_of_descriptors_waits(void **state)
{
	(void)state;
	struct h_nomad n;
	char alloc[64], why[2048] = "";
	assert_int_equal(h_nomad_start(&n, NULL), 0);
	run_job(&n, "spin-nofile", NETWORK_8080, alloc);
	/* a server in the runner that keeps every connection and greets it */
	start_server(&n, alloc,
	             "import socket\n"
	             "s = socket.socket()\n"
	             "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
	             "s.bind((\"127.0.0.1\", 8080))\n"
	             "s.listen(256)\n"
	             "open(\"/tmp/ready\", \"w\").close()\n"
	             "keep = []\n"
	             "while True:\n"
	             "    c, _ = s.accept()\n"
	             "    try:\n"
	             "        c.sendall(b\"hi\\n\")\n"
	             "        c.shutdown(socket.SHUT_WR)\n"
	             "    except OSError:\n"
	             "        pass\n"
	             "    keep.append(c)\n");
	struct fwd f = {.port = forwarded_port(&n, alloc)};
	assert_true(forward_answers(&f));
	flood_and_recover(n.pid, n.port, n.log, "nomad-local API", nomad_answers, &n, why, sizeof why);
	flood_and_recover(n.pid, f.port, n.log, "nomad-local forwarded port", forward_answers, &f, why,
	                  sizeof why);
	h_nomad_stop(&n);
	h_nomad_cleanup(&n);
	if (why[0])
		fail_msg("%s", why);
}

struct gate {
	int port;
};

static int gate_answers(void *arg)
{
	struct gate *g = arg;
	int status = http_status(g->port, "/api/v1/runners/nope/websocket?executionID=x");
	return status >= 400 && status < 500;
}

/* The same for poseidon-wsgate's listener (lws watches it for us). */
static void test_wsgate_out_of_descriptors_waits(void **state)
{
	(void)state;
	struct h_stack s;
	char why[2048] = "", log[600];
	memset(&s, 0, sizeof s);
	assert_int_equal(h_redis_start(&s.redis), 0);
	pid_t pid = h_stack_start_wsgate_with(&s, NULL, NULL);
	assert_true(pid > 0);
	snprintf(log, sizeof log, "%s/wsgate-%d-1.log", h_tmpdir(), s.wsgate_port);
	struct gate g = {.port = s.wsgate_port};
	assert_true(gate_answers(&g));
	flood_and_recover(pid, s.wsgate_port, log, "poseidon-wsgate", gate_answers, &g, why, sizeof why);
	h_stop(pid);
	if (why[0])
		fail_msg("%s", why);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_half_closed_forwarded_connection_does_not_spin),
	    cmocka_unit_test(test_half_closed_api_connections_do_not_spin),
	    cmocka_unit_test(test_tty_stdin_flows_and_a_quit_behind_it_arrives),
	    cmocka_unit_test(test_nomad_local_out_of_descriptors_waits),
	    cmocka_unit_test(test_wsgate_out_of_descriptors_waits),
	};
	if (getenv("POSEIDON_TEST_FILTER"))
		cmocka_set_test_filter(getenv("POSEIDON_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
