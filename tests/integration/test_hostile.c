/* Hostile input (issue 8): well over a hundred malformed or hostile requests against the real
 * stack. Each must get a 4xx with a JSON {"message"} (or an empty body where the API defines
 * one), or the documented answer; never a 5xx, never a crash, never a command executed. At the
 * end the service still answers /health 204 and no worker left a sanitizer report. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

static struct h_stack st, locked;
static char runner[128];

enum shape { EMPTY, JSON_MSG, ANY };

struct row {
	const char *method;
	const char *path; /* after /api/v1; $R is replaced by the claimed runner */
	const char *body; /* NULL: none */
	long body_len;    /* -1: strlen */
	long status;      /* expected; 0 = any 4xx; -1 = anything but a 5xx */
	enum shape shape;
};

static int setup(void **state)
{
	(void)state;
	struct h_front_opts o = {.workers = 3};
	static const char *small[] = {"POSEIDON_SERVER_MAXBODYSIZE=65536", NULL};
	o.env = small;
	if (h_redis_start(&st.redis) < 0 || h_stack_start_nomad(&st) < 0 || h_stack_start(&st, &o) < 0 ||
	    h_stack_start_refill(&st, NULL) < 0)
		return -1;
	struct h_front_opts t = {.workers = 1, .token = "0123456789abcdef"};
	if (h_stack_start(&locked, &t) < 0)
		return -1;
	char url[256];
	struct h_resp r;
	snprintf(url, sizeof url, "%s/execution-environments/4", st.base);
	h_http(&r, "PUT", url, "{\"prewarmingPoolSize\":1,\"cpuLimit\":50,\"memoryLimit\":256,\"image\":\"img\"}", -1, NULL);
	h_resp_free(&r);
	snprintf(url, sizeof url, "%s/runners", st.base);
	for (int i = 0; i < 300; i++) {
		h_http(&r, "POST", url, "{\"executionEnvironmentId\":4}", -1, NULL);
		if (r.status == 200 && sscanf(r.body, "{\"runnerId\":\"%127[^\"]\"", runner) == 1) {
			h_resp_free(&r);
			return 0;
		}
		h_resp_free(&r);
		h_sleep_ms(100);
	}
	return -1;
}

static int teardown(void **state)
{
	(void)state;
	h_stack_stop(&locked);
	h_stack_stop(&st);
	return h_sanitizer_reports(st.rundir) + h_sanitizer_reports(locked.rundir) == 0 ? 0 : -1;
}

static void expand(const char *path, char *out, size_t cap)
{
	const char *p = strstr(path, "$R");
	if (p)
		snprintf(out, cap, "%.*s%s%s", (int)(p - path), path, runner, p + 2);
	else
		snprintf(out, cap, "%s", path);
}

static int check(struct h_stack *s, const struct row *row, const char *const *headers)
{
	char path[8192], url[8448]; /* room for the longest row (a 4500-byte query value) */
	struct h_resp r;
	expand(row->path, path, sizeof path);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1%s", s->port, path);
	if (h_http(&r, row->method, url, row->body, row->body_len, headers) < 0)
		return fprintf(stderr, "no answer: %s %s\n", row->method, row->path), 1;
	int bad = 0;
	if (row->status > 0 ? r.status != row->status
			    : row->status == 0 ? (r.status < 400 || r.status >= 500) : r.status >= 500)
		bad = 1;
	if (row->shape == JSON_MSG && (!strstr(r.body, "{\"message\":\"") || !strstr(r.headers, "application/json")))
		bad = 1;
	if (row->shape == EMPTY && r.len != 0)
		bad = 1;
	if (bad)
		fprintf(stderr, "unexpected: %s %s -> %ld %.200s\n", row->method, row->path, r.status, r.body);
	h_resp_free(&r);
	return bad;
}

/* A payload that would leave /workspace/PWNED behind if any shell ran it. */
#define PWN "$(touch /workspace/PWNED)`touch /workspace/PWNED`;touch /workspace/PWNED"

static void assert_not_pwned(void)
{
	char url[512];
	struct h_resp r;
	snprintf(url, sizeof url, "%s/runners/%s/files?path=%%2Fworkspace&recursive=false&privilegedExecution=true", st.base,
		 runner);
	assert_int_equal(h_http(&r, "GET", url, NULL, -1, NULL), 0);
	assert_int_equal(r.status, 200);
	if (strstr(r.body, "PWNED"))
		fprintf(stderr, "a payload ran: %s\n", r.body);
	assert_null(strstr(r.body, "\"PWNED\""));
	h_resp_free(&r);
}

static void test_hostile_table(void **state)
{
	(void)state;
	static char deep[4096], nul_cmd[] = "{\"command\":\"echo\\u0000x\"}";
	size_t n = 0;
	n += (size_t)snprintf(deep, sizeof deep, "{\"executionEnvironmentId\":");
	for (int i = 0; i < 3000 && n < sizeof deep - 2; i++)
		deep[n++] = '[';
	deep[n] = '\0';
	static char bigjson[70000];
	memset(bigjson, ' ', sizeof bigjson - 1);
	bigjson[0] = '{';
	bigjson[sizeof bigjson - 2] = '}';
	static char longpath[6000];
	snprintf(longpath, sizeof longpath, "{\"copy\":[{\"path\":\"");
	memset(longpath + strlen(longpath), 'a', 5000);
	snprintf(longpath + strlen(longpath), 64, "\",\"content\":\"\"}]}");
	static char longq[5000];
	snprintf(longq, sizeof longq, "/runners/$R/files?path=");
	memset(longq + strlen(longq), 'b', 4500);

	const struct row rows[] = {
		/* bodies: JSON syntax */
		{"POST", "/runners", "", -1, 400, JSON_MSG},
		{"POST", "/runners", "{", -1, 400, JSON_MSG},
		{"POST", "/runners", "}", -1, 400, JSON_MSG},
		{"POST", "/runners", "{\"executionEnvironmentId\":}", -1, 400, JSON_MSG},
		{"POST", "/runners", "{\"executionEnvironmentId\":0,}", -1, 400, JSON_MSG},
		{"POST", "/runners", "[", -1, 400, JSON_MSG},
		{"POST", "/runners", "\"string\"", -1, 400, JSON_MSG},
		{"POST", "/runners", "true", -1, 400, JSON_MSG},
		{"POST", "/runners", "NaN", -1, 400, JSON_MSG},
		{"POST", "/runners", "{\"executionEnvironmentId\":\"0\"}", -1, 400, JSON_MSG},
		{"POST", "/runners", "{\"executionEnvironmentId\":1e400}", -1, 400, JSON_MSG},
		{"POST", "/runners", "{\"executionEnvironmentId\":99999999999999999999999999}", -1, 400, JSON_MSG},
		{"POST", "/runners", "{\"executionEnvironmentId\":-99999999999999999999999999}", -1, 400, JSON_MSG},
		{"POST", "/runners", "{\"executionEnvironmentId\":0.5}", -1, 400, JSON_MSG},
		{"POST", "/runners", "{\"inactivityTimeout\":[]}", -1, 400, JSON_MSG},
		{"POST", "/runners", "{\"inactivityTimeout\":{}}", -1, 400, JSON_MSG},
		{"POST", "/runners", deep, -1, 400, JSON_MSG},
		{"POST", "/runners", "\x00\x01\x02", 3, 400, JSON_MSG},
		{"POST", "/runners", "{\"executionEnvironmentId\":0\x00}", 28, 0, ANY},
		{"POST", "/runners", "\xff\xfe{}", 4, 400, JSON_MSG},
		{"POST", "/runners", "{\"executionEnvironmentId\":9223372036854775807}", -1, 400, JSON_MSG},
		{"POST", "/runners", "{\"executionEnvironmentId\":123456789}", -1, 404, JSON_MSG},
		{"POST", "/runners", bigjson, -1, 413, JSON_MSG},
		/* environments */
		{"PUT", "/execution-environments/7", "", -1, 400, JSON_MSG},
		{"PUT", "/execution-environments/7", "{\"prewarmingPoolSize\":-1}", -1, 400, JSON_MSG},
		{"PUT", "/execution-environments/7", "{\"prewarmingPoolSize\":1.5}", -1, 400, JSON_MSG},
		{"PUT", "/execution-environments/7", "{\"cpuLimit\":\"20\"}", -1, 400, JSON_MSG},
		{"PUT", "/execution-environments/7", "{\"memoryLimit\":true}", -1, 400, JSON_MSG},
		{"PUT", "/execution-environments/7", "{\"image\":123}", -1, 400, JSON_MSG},
		{"PUT", "/execution-environments/7", "{\"networkAccess\":\"yes\"}", -1, 400, JSON_MSG},
		{"PUT", "/execution-environments/7", "{\"exposedPorts\":[65536]}", -1, 400, JSON_MSG},
		{"PUT", "/execution-environments/7", "{\"exposedPorts\":[-80]}", -1, 400, JSON_MSG},
		{"PUT", "/execution-environments/7", "{\"exposedPorts\":[\"80\"]}", -1, 400, JSON_MSG},
		{"PUT", "/execution-environments/7", "{\"exposedPorts\":{}}", -1, 400, JSON_MSG},
		{"PUT", "/execution-environments/7", "{\"exposedPorts\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,64,65]}", -1, 400, JSON_MSG},
		{"PUT", "/execution-environments/7", deep, -1, 400, JSON_MSG},
		{"PUT", "/execution-environments/99999999999999999999", "{}", -1, 400, JSON_MSG},
		{"PUT", "/execution-environments/-1", "{}", -1, 404, EMPTY},
		{"PUT", "/execution-environments/1e3", "{}", -1, 404, EMPTY},
		{"PUT", "/execution-environments/0x10", "{}", -1, 404, EMPTY},
		{"PUT", "/execution-environments/%31", "{}", -1, 404, EMPTY},
		{"PUT", "/execution-environments/1%00", "{}", -1, 400, ANY}, /* the front end refuses control characters in URLs */
		{"GET", "/execution-environments?fetch=yes", NULL, -1, 400, JSON_MSG},
		{"GET", "/execution-environments?fetch=%00", NULL, -1, 400, ANY}, /* the front end refuses control characters in URLs */
		{"GET", "/execution-environments?fetch=%zz", NULL, -1, 400, JSON_MSG},
		{"GET", "/execution-environments/4?fetch=2", NULL, -1, 400, JSON_MSG},
		{"DELETE", "/execution-environments/12345", NULL, -1, 404, EMPTY},
		{"POST", "/execution-environments/4", "{}", -1, 405, EMPTY},
		/* routes */
		{"GET", "/", NULL, -1, 404, EMPTY},
		{"GET", "/runners/../health", NULL, -1, 204, EMPTY}, /* the front end resolves dot segments */
		{"GET", "/runners/..%2F..%2Fetc%2Fpasswd/files", NULL, -1, 410, JSON_MSG},
		{"GET", "/runners/%2e%2e/files", NULL, -1, 410, JSON_MSG},
		{"GET", "/runners/$R%2F..%2F/files", NULL, -1, 410, JSON_MSG},
		{"GET", "/runners/$R/files/raw/extra", NULL, -1, 404, EMPTY},
		{"GET", "/runners/%00/files", NULL, -1, 400, ANY}, /* the front end refuses control characters in URLs */
		{"GET", "/runners/a%0d%0aSet-Cookie:x/files", NULL, -1, 400, ANY}, /* the front end refuses control characters in URLs */
		{"GET", "/runners/'$(id)'/files", NULL, -1, 410, JSON_MSG},
		{"GET", "/runners/%24%28touch%20%2Fworkspace%2FPWNED%29/files", NULL, -1, 410, JSON_MSG},
		{"TRACE", "/runners/$R", NULL, -1, 0, ANY},
		{"PATCH", "/runners", "{}", -1, 405, EMPTY},
		{"GET", "/runners/$R", NULL, -1, 405, EMPTY},
		{"DELETE", "/runners/x/files", NULL, -1, 405, EMPTY},
		{"HEAD", "/health", NULL, -1, 405, EMPTY},
		/* files: bodies */
		{"PATCH", "/runners/$R/files", "", -1, 400, JSON_MSG},
		{"PATCH", "/runners/$R/files", "{\"copy\":\"x\"}", -1, 400, JSON_MSG},
		{"PATCH", "/runners/$R/files", "{\"copy\":[1]}", -1, 400, JSON_MSG},
		{"PATCH", "/runners/$R/files", "{\"copy\":[{\"path\":1}]}", -1, 400, JSON_MSG},
		{"PATCH", "/runners/$R/files", "{\"copy\":[{\"path\":\"x\",\"content\":\"===\"}]}", -1, 400, JSON_MSG},
		{"PATCH", "/runners/$R/files", "{\"copy\":[{\"path\":\"x\",\"content\":\"YQ\"}]}", -1, 400, JSON_MSG},
		{"PATCH", "/runners/$R/files", "{\"copy\":[{\"path\":\"x\",\"content\":\"Y!==\"}]}", -1, 400, JSON_MSG},
		{"PATCH", "/runners/$R/files", "{\"copy\":[{\"path\":\"x\",\"content\":\"YQ==YQ==\"}]}", -1, 400, JSON_MSG},
		{"PATCH", "/runners/$R/files", "{\"copy\":[{\"path\":\"\",\"content\":\"\"}]}", -1, 400, JSON_MSG},
		{"PATCH", "/runners/$R/files", longpath, -1, 400, JSON_MSG},
		{"PATCH", "/runners/$R/files", "{\"delete\":\"x\"}", -1, 400, JSON_MSG},
		{"PATCH", "/runners/$R/files", "{\"delete\":[null,1]}", -1, 400, JSON_MSG},
		{"PATCH", "/runners/$R/files", deep, -1, 400, JSON_MSG},
		{"PATCH", "/runners/$R/files", bigjson, -1, 413, JSON_MSG},
		/* files: shell metacharacters reach no shell (documented: 204, written literally) */
		{"PATCH", "/runners/$R/files", "{\"delete\":[\"" PWN "\"]}", -1, 204, EMPTY},
		{"PATCH", "/runners/$R/files", "{\"delete\":[\"x' ; touch /workspace/PWNED ; '\"]}", -1, 204, EMPTY},
		{"PATCH", "/runners/$R/files", "{\"delete\":[\"-rf\",\"--no-preserve-root\"]}", -1, 204, EMPTY},
		{"PATCH", "/runners/$R/files", "{\"copy\":[{\"path\":\"" PWN "\",\"content\":\"\"}]}", -1, 204, EMPTY},
		{"PATCH", "/runners/$R/files", "{\"copy\":[{\"path\":\"a\\nb\",\"content\":\"\"}]}", -1, 204, EMPTY},
		{"PATCH", "/runners/$R/files", "{\"copy\":[{\"path\":\"--checkpoint-action=exec=touch /workspace/PWNED\",\"content\":\"\"}]}", -1, 204, EMPTY},
		/* files: list and download queries */
		{"GET", "/runners/$R/files?path=%24%28touch%20%2Fworkspace%2FPWNED%29", NULL, -1, 424, JSON_MSG},
		{"GET", "/runners/$R/files?path=%27%3Btouch%20%2Fworkspace%2FPWNED%3B%27", NULL, -1, 424, JSON_MSG},
		{"GET", "/runners/$R/files?path=-R%20%2F", NULL, -1, 424, JSON_MSG},
		{"GET", "/runners/$R/files?path=%zz", NULL, -1, 400, JSON_MSG},
		{"GET", "/runners/$R/files?path=a%00b", NULL, -1, 400, ANY}, /* the front end refuses control characters in URLs */
		{"GET", longq, NULL, -1, 400, JSON_MSG},
		{"GET", "/runners/$R/files?recursive=%24(id)&privilegedExecution=%60id%60", NULL, -1, 200, ANY},
		{"GET", "/runners/$R/files/raw?path=%24%28touch%20%2Fworkspace%2FPWNED%29", NULL, -1, 424, JSON_MSG},
		{"GET", "/runners/$R/files/raw?path=x%22%0d%0aSet-Cookie%3a%20a%3db", NULL, -1, 400, ANY}, /* the front end refuses control characters in URLs */
		{"GET", "/runners/$R/files/raw?path=%2Fproc%2F1%2Fenviron", NULL, -1, 424, JSON_MSG},
		{"GET", "/runners/$R/files/raw?path=.", NULL, -1, 424, JSON_MSG},
		{"GET", "/runners/$R/files/raw?path=%2Fdev%2Fzero", NULL, -1, 424, JSON_MSG},
		{"GET", "/runners/$R/files/raw?path=", NULL, -1, 424, JSON_MSG},
		{"GET", "/runners/$R/files/raw?path=%zz", NULL, -1, 400, JSON_MSG},
		/* execute */
		{"POST", "/runners/$R/execute", "", -1, 400, JSON_MSG},
		{"POST", "/runners/$R/execute", "{\"command\":\"echo 'x'\"}", -1, 400, JSON_MSG},
		{"POST", "/runners/$R/execute", nul_cmd, -1, 400, JSON_MSG},
		{"POST", "/runners/$R/execute", "{\"command\":\"x\",\"timeLimit\":-1}", -1, 400, JSON_MSG},
		{"POST", "/runners/$R/execute", "{\"command\":\"x\",\"timeLimit\":99999999999}", -1, 400, JSON_MSG},
		{"POST", "/runners/$R/execute", "{\"command\":\"x\",\"timeLimit\":\"1\"}", -1, 400, JSON_MSG},
		{"POST", "/runners/$R/execute", "{\"command\":[\"x\"]}", -1, 400, JSON_MSG},
		{"POST", "/runners/$R/execute", "{\"command\":\"x\",\"privilegedExecution\":\"true\"}", -1, 400, JSON_MSG},
		{"POST", "/runners/$R/execute", "{\"command\":\"x\",\"environment\":{\"A B\":\"1\"}}", -1, 400, JSON_MSG},
		{"POST", "/runners/$R/execute", "{\"command\":\"x\",\"environment\":{\"1A\":\"1\"}}", -1, 400, JSON_MSG},
		{"POST", "/runners/$R/execute", "{\"command\":\"x\",\"environment\":{\"A;touch /workspace/PWNED\":\"1\"}}", -1, 400, JSON_MSG},
		{"POST", "/runners/$R/execute", "{\"command\":\"x\",\"environment\":{\"\":\"1\"}}", -1, 400, JSON_MSG},
		{"POST", "/runners/$R/execute", "{\"command\":\"x\",\"environment\":{\"A\":1}}", -1, 400, JSON_MSG},
		{"POST", "/runners/$R/execute", "{\"command\":\"x\",\"environment\":[]}", -1, 400, JSON_MSG},
		{"POST", "/runners/$R/execute", "{\"command\":\"\\u00ff\\ud800\"}", -1, 200, ANY},
		{"POST", "/runners/$R/execute", "{\"command\":\"\xc3\x28\"}", -1, -1, ANY}, /* raw invalid UTF-8 */
		{"POST", "/runners/$R/execute", "{\"command\":\"\\x41\"}", -1, 400, JSON_MSG}, /* not a JSON escape */
		{"POST", "/runners/$R/execute", deep, -1, 400, JSON_MSG},
		{"POST", "/runners/nope/execute", "{\"command\":\"x\"}", -1, 410, JSON_MSG},
		/* delete */
		{"DELETE", "/runners/%27%24%28id%29%27", NULL, -1, 410, JSON_MSG},
		{"DELETE", "/runners/0-00000000-0000-0000-0000-000000000000", NULL, -1, 410, JSON_MSG},
	};
	int bad = 0, count = (int)(sizeof rows / sizeof rows[0]);
	for (int i = 0; i < count; i++)
		bad += check(&st, &rows[i], NULL);
	printf("    hostile table: %d requests, %d unexpected\n", count, bad);
	assert_int_equal(bad, 0);
	assert_true(count >= 100);
	assert_not_pwned();
}

static void test_tokens_of_every_length(void **state)
{
	(void)state;
	/* (spaces around a header value are not part of it in HTTP, so " token " is the token) */
	static const char *tokens[] = {"", "0", "0123456789abcde", "0123456789abcdeF", "0123456789abcdef0",
				       "0123456789ABCDEF", "0123456789abcde f", "x0123456789abcdef", "\t"};
	struct row r = {"GET", "/statistics/execution-environments", NULL, -1, 401, EMPTY};
	for (size_t i = 0; i < sizeof tokens / sizeof *tokens; i++) {
		char h[128];
		snprintf(h, sizeof h, "Poseidon-Token: %s", tokens[i]);
		const char *headers[] = {h, NULL};
		assert_int_equal(check(&locked, &r, headers), 0);
	}
	char longtok[9000];
	memset(longtok, 'x', sizeof longtok - 1);
	longtok[sizeof longtok - 1] = '\0';
	memcpy(longtok, "Poseidon-Token: ", 16);
	const char *headers[] = {longtok, NULL};
	struct row big = {"GET", "/statistics/execution-environments", NULL, -1, 0, ANY};
	assert_int_equal(check(&locked, &big, headers), 0); /* 401 from us or 431 from lighttpd: never 5xx */
	const char *good[] = {"Poseidon-Token: 0123456789abcdef", NULL};
	struct row ok = {"GET", "/statistics/execution-environments", NULL, -1, 200, ANY};
	assert_int_equal(check(&locked, &ok, good), 0);
}

static void test_slow_body_does_not_block_others(void **state)
{
	(void)state;
	/* a client that sends headers and a trickle of body: the others are served meanwhile */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)st.port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	const char *head = "POST /api/v1/runners HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{";
	assert_true(write(fd, head, strlen(head)) > 0);
	long long t0 = h_now_ms();
	for (int i = 0; i < 20; i++) {
		char url[256];
		struct h_resp r;
		snprintf(url, sizeof url, "%s/health", st.base);
		assert_int_equal(h_http(&r, "GET", url, NULL, -1, NULL), 0);
		assert_int_equal(r.status, 204);
		h_resp_free(&r);
		assert_true(write(fd, " ", 1) == 1);
	}
	assert_true(h_now_ms() - t0 < 5000);
	close(fd);
}

static void test_still_healthy(void **state)
{
	(void)state;
	char url[256];
	struct h_resp r;
	snprintf(url, sizeof url, "%s/health", st.base);
	assert_int_equal(h_http(&r, "GET", url, NULL, -1, NULL), 0);
	assert_int_equal(r.status, 204);
	h_resp_free(&r);
	assert_not_pwned();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hostile_table),
		cmocka_unit_test(test_tokens_of_every_length),
		cmocka_unit_test(test_slow_body_does_not_block_others),
		cmocka_unit_test(test_still_healthy),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
