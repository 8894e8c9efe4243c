/* Peers that misbehave must neither make an agent spin nor stall it (docs/reliability.md,
 * "hostile learner / hostile client"). Each test puts nomad-local or poseidon-wsgate in a state
 * that a learner's program or a client can bring about on purpose, measures the process's CPU
 * time (utime + stime of /proc/<pid>/stat) while nothing should happen, and then checks that the
 * data still flows:
 *
 *   - a forwarded port (a group network) whose connection one side half-closes while the other
 *     stays idle, in both directions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
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

static void why_add(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void why_add(char *why, size_t cap, const char *fmt, ...)
{
	size_t l = strlen(why);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why + l, cap - l, fmt, ap);
	va_end(ap);
}

static int connect_to(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
		return fd;
	if (fd >= 0)
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_half_closed_forwarded_connection_does_not_spin),
	};
	if (getenv("POSEIDON_TEST_FILTER"))
		cmocka_set_test_filter(getenv("POSEIDON_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
