/* The service through nginx running the repository's site, deploy/nginx/poseidon.conf (issue 7),
 * in front of the real stack: Redis, nomad-local, poseidon-refill, poseidon-wsgate and the
 * poseidon-api workers under spawn-fcgi + multiwatch on a unix socket, as the systemd units run
 * them. Every request goes through the front's port as a client's would: health, version, the
 * status page, auth, bad JSON, bodies over the limits, environments, a claim, a file copy, listing
 * and download, executions streamed over the WebSocket through the upgrade proxy (stdout, stderr,
 * exit, stdin, the gateway's own refusals, wss behind TLS), and the JSON errors the front answers
 * itself while the workers or the gateway are down. The site file itself is read to check that the
 * WebSocket route keeps idle streams open for long (the gateway pings every 30 s; executions run
 * long), that the REST route waits longer than the workers' longest file operation, and that the
 * front's body limit is the workers' own (test_front_limits.c measures what the fronts store of
 * bodies over it and of downloads nobody reads).
 *
 * test_apache.c compiles this file again with FRONT_APACHE defined, for
 * deploy/apache/poseidon.conf; the few places where the two servers differ say why. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "harness.h"
#include "wsclient.h"

/* test_apache.c defines FRONT_APACHE before it includes this file */
#ifdef FRONT_APACHE
#define FRONT H_FRONT_APACHE
#define SITE  "apache"
#else
#define FRONT H_FRONT_NGINX
#define SITE  "nginx"
#endif

#define ENV      4
#define POOL     2
#define MAX_BODY 1048576 /* the workers' server.maxbodysize here */
#define TOKEN    "Tok3n"
#define WAIT_MS  20000

static struct h_stack st;
static pid_t wsgate;
static const char *const with_token[] = {"Poseidon-Token: " TOKEN, NULL};

/* ---- HTTP through the front ---------------------------------------------------------------- */

/* method path (from the root) with an optional body (len -1: strlen) and header lines; the
 * status, the answer in *r (caller frees). */
static long req(struct h_resp *r, const char *method, const char *path, const char *body, long len,
                const char *const *headers)
{
	char url[1024];
	snprintf(url, sizeof url, "http://127.0.0.1:%d%s", st.port, path);
	assert_int_equal(h_http(r, method, url, body, len, headers), 0);
	return r->status;
}

/* The same, for the status alone; the body must be empty when expect_empty. */
static long status_of(const char *method, const char *path, const char *body, const char *const *headers,
                      int expect_empty)
{
	struct h_resp r;
	long status = req(&r, method, path, body, -1, headers);
	if (expect_empty && r.len)
		fail_msg("%s %s: %ld with a body: %s", method, path, status, r.body);
	h_resp_free(&r);
	return status;
}

static void assert_header(const struct h_resp *r, const char *name, const char *want)
{
	char v[512];
	if (!h_header(r, name, v, sizeof v))
		fail_msg("no %s header in: %s", name, r->headers);
	assert_string_equal(v, want);
}

/* A JSON error as the API answers them: application/json, {"message":"...fragment..."...}. */
static void assert_json_message(const struct h_resp *r, const char *fragment)
{
	assert_header(r, "Content-Type", "application/json");
	if (strncmp(r->body, "{\"message\":\"", 12) != 0 || (fragment && !strstr(r->body, fragment)))
		fail_msg("not the JSON message \"%s\": %s", fragment ? fragment : "", r->body);
}

/* r must be GET /api/v1/openapi.yaml's answer: api/openapi.yaml of the source tree, byte for byte. */
static void assert_openapi_document(const struct h_resp *r)
{
	char why[512];
	if (h_openapi_mismatch(r, why, sizeof why))
		fail_msg("GET /api/v1/openapi.yaml: %s", why);
}

/* The value of "key":"value" in a flat JSON body, into out. */
static void json_string(const char *body, const char *key, char *out, size_t cap)
{
	char pat[128];
	snprintf(pat, sizeof pat, "\"%s\":\"", key);
	const char *p = strstr(body, pat);
	if (!p)
		fail_msg("no \"%s\" in %s", key, body);
	p += strlen(pat);
	size_t n = strcspn(p, "\"");
	assert_true(n < cap);
	memcpy(out, p, n);
	out[n] = '\0';
}

/* ---- WebSockets through the front (wsclient.h) ---------------------------------------------- */

/* GET of a websocketUrl's path and query through the front, with the upgrade when upgrade is
 * set, the token and the given Origin (NULL: none). The status; a refusal's body in body. */
static int ws_open(struct wsc *c, const char *path_query, int upgrade, const char *origin, char *body,
                   size_t cap)
{
	char origin_line[300];
	const char *const headers[] = {"Poseidon-Token: " TOKEN, origin ? origin_line : NULL, NULL};
	snprintf(origin_line, sizeof origin_line, "Origin: %s", origin ? origin : "");
	return wsc_open(c, st.port, path_query, upgrade, headers, body, cap);
}

/* What a client saw of one execution. */
struct seen {
	char out[8192], err[8192];
	char first[64], last[64]; /* the first and the last control message */
	int close_code;           /* -1: no close frame */
	int messages;
};

static void append(char *to, size_t cap, const char *data)
{
	size_t have = strlen(to);
	snprintf(to + have, cap - have, "%s", data);
}

/* Files one text message: {"type":"stdout"|"stderr","data":"..."} or a control message. */
static void take(struct seen *s, const char *msg)
{
	char data[8192];
	s->messages++;
	if (!strncmp(msg, "{\"type\":\"stdout\",\"data\":\"", 25) ||
	    !strncmp(msg, "{\"type\":\"stderr\",\"data\":\"", 25)) {
		snprintf(data, sizeof data, "%s", msg + 25);
		char *q = strrchr(data, '"');
		if (q)
			*q = '\0';
		append(msg[12] == 'o' ? s->out : s->err, sizeof s->out, data);
		return;
	}
	if (!s->first[0])
		snprintf(s->first, sizeof s->first, "%s", msg);
	snprintf(s->last, sizeof s->last, "%s", msg);
}

/* Reads messages until the close frame (and the end of the connection) or a timeout. */
static void read_all(struct wsc *c, struct seen *s)
{
	char *msg;
	size_t n;
	s->close_code = -1;
	for (;;) {
		int op = wsc_read(c, WAIT_MS, &msg, &n);
		if (op <= 0)
			break;
		if (op == 1)
			take(s, msg);
		if (op == 9) /* a ping: the gateway wants its pong */
			wsc_send(c, 10, msg, n);
		if (op == 8)
			s->close_code = n >= 2 ? ((unsigned char)msg[0] << 8 | (unsigned char)msg[1]) : 0;
		free(msg);
		if (op == 8)
			break;
	}
}

/* ---- the runner side ------------------------------------------------------------------------- */

static void claim(char id[128])
{
	char body[128];
	struct h_resp r;
	snprintf(body, sizeof body, "{\"executionEnvironmentId\":%d,\"inactivityTimeout\":60}", ENV);
	for (int i = 0; i < 200; i++) {
		if (req(&r, "POST", "/api/v1/runners", body, -1, with_token) == 200)
			break;
		assert_int_equal(r.status, 500); /* NOMAD_OVERLOAD while the pool refills */
		h_resp_free(&r);
		h_sleep_ms(100);
	}
	assert_int_equal(r.status, 200);
	json_string(r.body, "runnerId", id, 128);
	h_resp_free(&r);
}

/* POST /execute with extra header lines; the websocketUrl into url, its path and query into pq. */
static void execute(const char *runner, const char *body, const char *const *headers, char *url,
                    size_t url_cap, char *pq, size_t pq_cap)
{
	char path[256];
	struct h_resp r;
	snprintf(path, sizeof path, "/api/v1/runners/%s/execute", runner);
	assert_int_equal(req(&r, "POST", path, body, -1, headers ? headers : with_token), 200);
	json_string(r.body, "websocketUrl", url, url_cap);
	h_resp_free(&r);
	const char *p = strstr(url, "://");
	assert_non_null(p);
	p = strchr(p + 3, '/');
	assert_non_null(p);
	snprintf(pq, pq_cap, "%s", p);
}

static void origin(char *out, size_t cap)
{
	snprintf(out, cap, "http://127.0.0.1:%d", st.port);
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int setup(void **state)
{
	(void)state;
	static const char *worker_env[] = {"POSEIDON_SERVER_MAXBODYSIZE=1048576", NULL};
	static const char *refill_env[] = {"POSEIDON_RECONCILE_INTERVAL=5", "POSEIDON_REFILL_TICKMS=100",
	                                   NULL};
	static const char *wsgate_env[] = {"POSEIDON_SERVER_TOKEN=" TOKEN, NULL};
	struct h_front_opts o = {.workers = 3, .token = TOKEN, .env = worker_env, .server = FRONT};
	if (h_redis_start(&st.redis) < 0 || h_stack_start_nomad(&st) < 0 || h_stack_start(&st, &o) < 0 ||
	    h_stack_start_refill(&st, refill_env) < 0 ||
	    (wsgate = h_stack_start_wsgate_with(&st, wsgate_env, NULL)) < 0)
		return -1;
	if (st.server != FRONT)
		return -1;
	char path[64], body[256];
	snprintf(path, sizeof path, "/api/v1/execution-environments/%d", ENV);
	snprintf(body, sizeof body,
	         "{\"prewarmingPoolSize\":%d,\"cpuLimit\":100,\"memoryLimit\":256,\"image\":\"img\","
	         "\"networkAccess\":false,\"exposedPorts\":null}",
	         POOL);
	if (status_of("PUT", path, body, with_token, 1) != 201)
		return -1;
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

/* ---- tests ----------------------------------------------------------------------------------- */

static void test_health_version_and_status_page(void **state)
{
	(void)state;
	struct h_resp r;
	assert_int_equal(status_of("GET", "/api/v1/health", NULL, NULL, 1), 204); /* no token needed */
	assert_int_equal(req(&r, "GET", "/api/v1/version", NULL, -1, NULL), 200);
	assert_header(&r, "Content-Type", "application/json");
	assert_true(r.len > 2 && r.body[0] == '"' && r.body[r.len - 1] == '"');
	h_resp_free(&r);
	/* the OpenAPI document: public, reaches the workers through this front, byte for byte */
	req(&r, "GET", "/api/v1/openapi.yaml", NULL, -1, NULL);
	assert_openapi_document(&r);
	h_resp_free(&r);
	/* everything but /status is the API's, with its empty 404 */
	assert_int_equal(status_of("GET", "/", NULL, NULL, 1), 404);
	assert_int_equal(status_of("GET", "/api/v1/nope", NULL, NULL, 1), 404);
	assert_int_equal(status_of("GET", "/statusx", NULL, NULL, 1), 404);
	/* the static page, with lighttpd's types */
	char location[256], want[128];
	assert_int_equal(req(&r, "GET", "/status", NULL, -1, NULL), 301);
	assert_true(h_header(&r, "Location", location, sizeof location));
	snprintf(want, sizeof want, "127.0.0.1:%d/status/", st.port);
	if (!strstr(location, want))
		fail_msg("Location: %s", location);
	h_resp_free(&r);
	assert_int_equal(req(&r, "GET", "/status/", NULL, -1, NULL), 200);
	assert_header(&r, "Content-Type", "text/html; charset=utf-8");
	assert_non_null(strstr(r.body, "status.js"));
	assert_non_null(strstr(r.body, "href=\"../api/v1/openapi.yaml\"")); /* the page links the document */
	h_resp_free(&r);
	assert_int_equal(req(&r, "GET", "/status/status.js", NULL, -1, NULL), 200);
	assert_header(&r, "Content-Type", "text/javascript; charset=utf-8");
	h_resp_free(&r);
	assert_int_equal(req(&r, "GET", "/status/status.css", NULL, -1, NULL), 200);
	assert_header(&r, "Content-Type", "text/css; charset=utf-8");
	h_resp_free(&r);
}

static void test_token_method_and_bad_json_are_answered_by_the_api(void **state)
{
	(void)state;
	const char *wrong[] = {"Poseidon-Token: wrong", NULL};
	struct h_resp r;
	assert_int_equal(status_of("POST", "/api/v1/runners", "{}", NULL, 1), 401);
	assert_int_equal(status_of("POST", "/api/v1/runners", "{}", wrong, 1), 401);
	assert_int_equal(status_of("GET", "/api/v1/execution-environments", NULL, NULL, 1), 401);
	assert_int_equal(status_of("GET", "/api/v1/runners", NULL, NULL, 1), 405);
	assert_int_equal(req(&r, "POST", "/api/v1/runners", "{", -1, with_token), 400);
	assert_json_message(&r, "unexpected EOF");
	h_resp_free(&r);
	assert_int_equal(req(&r, "POST", "/api/v1/runners", "not json", -1, with_token), 400);
	assert_json_message(&r, "invalid character");
	h_resp_free(&r);
	/* the query string reaches the workers as the client sent it */
	assert_int_equal(req(&r, "GET", "/api/v1/execution-environments?fetch=maybe", NULL, -1, with_token),
	                 400);
	assert_json_message(&r, "fetch");
	h_resp_free(&r);
}

static void test_oversized_bodies_get_a_json_413(void **state)
{
	(void)state;
	/* over the workers' limit, which is the front's too: the front answers, in the API's JSON,
	 * before the body reaches a worker (tests/integration/test_front_limits.c measures that it
	 * stores nothing of it) */
	size_t len = MAX_BODY + MAX_BODY / 2;
	char *big = malloc(len + 1);
	assert_non_null(big);
	memset(big, ' ', len);
	big[0] = '{';
	big[len - 1] = '}';
	big[len] = '\0';
	struct h_resp r;
	assert_int_equal(req(&r, "POST", "/api/v1/runners", big, (long)len, with_token), 413);
	assert_json_message(&r, "request body exceeds the limit of the web server");
	h_resp_free(&r);
	/* just under it: parsed (environment 0 does not exist) */
	assert_int_equal(req(&r, "POST", "/api/v1/runners", big, MAX_BODY - 10, with_token), 400);
	h_resp_free(&r);
	free(big);
	/* 3 GiB announced, never sent: answered at once, in JSON instead of the server's HTML page */
	struct wsc c;
	char head[4096], body[1024], request[512];
	snprintf(request, sizeof request,
	         "POST /api/v1/runners HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nPoseidon-Token: " TOKEN
	         "\r\nContent-Type: application/json\r\nContent-Length: 3221225472\r\n\r\n",
	         st.port);
	assert_int_equal(wsc_connect(&c, st.port), 0);
	assert_int_equal(wsc_request(&c, request, head, sizeof head, body, sizeof body), 413);
	assert_non_null(strcasestr(head, "\r\nContent-Type: application/json"));
	assert_string_equal(body, "{\"message\":\"request body exceeds the limit of the web server\"}");
	wsc_close(&c);
}

static void test_environment_create_read_list_delete(void **state)
{
	(void)state;
	const char *body =
	    "{\"prewarmingPoolSize\":0,\"cpuLimit\":20,\"memoryLimit\":128,\"image\":\"img21\","
	    "\"networkAccess\":false,\"exposedPorts\":null}";
	struct h_resp r;
	assert_int_equal(status_of("PUT", "/api/v1/execution-environments/21", body, with_token, 1), 201);
	assert_int_equal(status_of("PUT", "/api/v1/execution-environments/21", body, with_token, 1), 204);
	assert_int_equal(req(&r, "GET", "/api/v1/execution-environments/21", NULL, -1, with_token), 200);
	assert_header(&r, "Content-Type", "application/json");
	assert_non_null(strstr(r.body, "\"id\":21"));
	assert_non_null(strstr(r.body, "\"image\":\"img21\""));
	h_resp_free(&r);
	assert_int_equal(req(&r, "GET", "/api/v1/execution-environments", NULL, -1, with_token), 200);
	assert_non_null(strstr(r.body, "\"id\":21"));
	h_resp_free(&r);
	assert_int_equal(status_of("DELETE", "/api/v1/execution-environments/21", NULL, with_token, 1), 204);
	assert_int_equal(status_of("GET", "/api/v1/execution-environments/21", NULL, with_token, 1), 404);
	assert_int_equal(status_of("DELETE", "/api/v1/execution-environments/21", NULL, with_token, 1), 404);
}

static void test_claim_copy_list_download_execute_and_stream(void **state)
{
	(void)state;
	/* "line one\nzwei \xe2\x82\xac\n" (UTF-8), base64 */
	static const char content[] = "line one\nzwei \xe2\x82\xac\n";
	static const char copy[] =
	    "{\"copy\":[{\"path\":\"poseidon.txt\",\"content\":\"bGluZSBvbmUKendlaSDigqwK\"}]}";
	char id[128], path[512], url[512], pq[512], want[256], own_origin[128];
	struct h_resp r;
	claim(id);
	snprintf(path, sizeof path, "/api/v1/runners/%s/files", id);
	assert_int_equal(status_of("PATCH", path, copy, with_token, 1), 204);
	snprintf(path, sizeof path, "/api/v1/runners/%s/files?path=.%%2F&recursive=false", id);
	assert_int_equal(req(&r, "GET", path, NULL, -1, with_token), 200);
	assert_non_null(strstr(r.body, "poseidon.txt"));
	h_resp_free(&r);
	snprintf(path, sizeof path, "/api/v1/runners/%s/files/raw?path=poseidon.txt", id);
	assert_int_equal(req(&r, "GET", path, NULL, -1, with_token), 200);
	assert_int_equal(r.len, strlen(content));
	assert_memory_equal(r.body, content, r.len);
	h_resp_free(&r);

	/* the websocketUrl names the front the client used (its Host), over ws:// */
	execute(id, "{\"command\":\"cat poseidon.txt; echo oops >&2; exit 3\"}", NULL, url, sizeof url, pq,
	        sizeof pq);
	snprintf(want, sizeof want, "ws://127.0.0.1:%d/api/v1/runners/%s/websocket?executionID=", st.port,
	         id);
	if (strncmp(url, want, strlen(want)) != 0)
		fail_msg("websocketUrl %s, wanted %s...", url, want);
	struct wsc c;
	struct seen s = {0};
	origin(own_origin, sizeof own_origin);
	assert_int_equal(ws_open(&c, pq, 1, own_origin, NULL, 0), 101);
	read_all(&c, &s);
	wsc_close(&c);
	assert_string_equal(s.first, "{\"type\":\"start\"}");
	assert_string_equal(s.last, "{\"type\":\"exit\",\"data\":3}");
	assert_string_equal(s.out, "line one\\r\\nzwei \xe2\x82\xac\\r\\n");
	assert_string_equal(s.err, "oops\\r\\n");
	assert_int_equal(s.close_code, 1000);

	snprintf(path, sizeof path, "/api/v1/runners/%s", id);
	assert_int_equal(status_of("DELETE", path, NULL, with_token, 1), 204);
	assert_int_equal(status_of("DELETE", path, NULL, with_token, 0), 410);
}

static void test_websocket_stdin_refusals_and_wss(void **state)
{
	(void)state;
	char id[128], url[512], pq[512], body[1024], own_origin[128], *msg;
	size_t n;
	struct wsc c;
	struct seen s = {0};
	claim(id);
	execute(id, "{\"command\":\"echo ready; read -r l; echo \\\"<$l>\\\"\"}", NULL, url, sizeof url, pq,
	        sizeof pq);
	/* the gateway's own answers come through the proxy: a plain GET is 400 and leaves the
	 * execution usable (WS-2), a foreign Origin is 403 */
	assert_int_equal(ws_open(&c, pq, 0, NULL, body, sizeof body), 400);
	wsc_close(&c);
	assert_int_equal(ws_open(&c, pq, 1, "http://elsewhere.example", body, sizeof body), 403);
	wsc_close(&c);
	/* input flows the other way: a text frame is the program's stdin */
	origin(own_origin, sizeof own_origin);
	assert_int_equal(ws_open(&c, pq, 1, own_origin, NULL, 0), 101);
	/* input once the shell has said it runs, so that the order of what comes back is fixed */
	while (!strstr(s.out, "ready\\r\\n")) {
		assert_int_equal(wsc_read(&c, WAIT_MS, &msg, &n), 1);
		take(&s, msg);
		free(msg);
	}
	assert_int_equal(wsc_send(&c, 1, "through the proxy\n", 18), 0);
	read_all(&c, &s);
	wsc_close(&c);
	if (strcmp(s.last, "{\"type\":\"exit\",\"data\":0}") != 0)
		fail_msg("first %s, last %s, stdout %s, stderr %s", s.first, s.last, s.out, s.err);
	assert_string_equal(s.first, "{\"type\":\"start\"}");
	/* the terminal's echo, then the line the shell read */
	assert_string_equal(s.out, "ready\\r\\nthrough the proxy\\r\\n<through the proxy>\\r\\n");
	assert_int_equal(s.close_code, 1000);
	/* behind a TLS-terminating load balancer the URL is wss:// */
	const char *behind_tls[] = {"Poseidon-Token: " TOKEN, "X-Forwarded-Proto: https", NULL};
	execute(id, "{\"command\":\"true\"}", behind_tls, url, sizeof url, pq, sizeof pq);
	assert_int_equal(strncmp(url, "wss://", 6), 0);
	char path[256];
	snprintf(path, sizeof path, "/api/v1/runners/%s", id);
	assert_int_equal(status_of("DELETE", path, NULL, with_token, 1), 204);
}

/* ---- the site file ------------------------------------------------------------------------------ */

static char *site_file(void)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/deploy/" SITE "/poseidon.conf", h_src_dir());
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char *text = calloc(1, 1 << 20);
	assert_non_null(text);
	size_t n = fread(text, 1, (1 << 20) - 1, f);
	fclose(f);
	text[n] = '\0';
	return text;
}

#ifndef FRONT_APACHE /* nginx's blocks and times */
/* The text from `start` to the line that closes its block (nginx), NUL-terminated in place. */
static char *block_at(char *text, const char *start)
{
	char *b = strstr(text, start);
	if (!b)
		fail_msg("the site has no \"%s\"", start);
	int depth = 0;
	for (char *p = b; *p; p++) {
		if (*p == '#') { /* comments may hold braces */
			p += strcspn(p, "\n");
			if (!*p)
				break;
		} else if (*p == '{') {
			depth++;
		} else if (*p == '}' && --depth == 0) {
			p[1] = '\0';
			return b;
		}
	}
	fail_msg("\"%s\" opens a block that never closes", start);
	return NULL;
}

/* Seconds in an nginx time ("3600s", "1h", "90"; "ms" counts as 0) or a plain number. */
static long long seconds_of(const char *v)
{
	char *end;
	long long n = strtoll(v, &end, 10);
	switch (*end) {
	case 'm': return end[1] == 's' ? 0 : n * 60;
	case 'h': return n * 3600;
	case 'd': return n * 86400;
	default: return n;
	}
}

/* The value after `name` on the first line of text that is a directive (not a comment). */
static long long directive_seconds(const char *text, const char *name)
{
	size_t nl = strlen(name);
	for (const char *line = text; line && *line;
	     line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		const char *p = line + strspn(line, " \t");
		if (!strncmp(p, name, nl) && (p[nl] == ' ' || p[nl] == '\t' || p[nl] == '='))
			return seconds_of(p + nl + strspn(p + nl, " \t="));
	}
	fail_msg("no %s", name);
	return -1;
}
#endif

static void test_site_keeps_streams_open_and_lets_the_api_answer(void **state)
{
	(void)state;
	char *text = site_file();
#ifndef FRONT_APACHE
	char *copy = strdup(text);
	assert_non_null(copy);
	/* the WebSocket route: long idle limits both ways (above the 60 s defaults that would cut an
	 * execution printing nothing for a minute), HTTP/1.1 upgrade, no buffering */
	char *ws = block_at(copy, "location ~ ^/api/v1/runners/[^/]+/websocket$ {");
	assert_true(directive_seconds(ws, "proxy_read_timeout") > 60);
	assert_true(directive_seconds(ws, "proxy_send_timeout") > 60);
	assert_non_null(strstr(ws, "proxy_http_version 1.1;"));
	assert_non_null(strstr(ws, "proxy_set_header Upgrade $http_upgrade;"));
	assert_non_null(strstr(ws, "proxy_buffering off;"));
	free(copy);
	/* the REST route waits longer than the workers' longest file operation (10 minutes) */
	copy = strdup(text);
	assert_non_null(copy);
	assert_true(directive_seconds(block_at(copy, "location / {"), "fastcgi_read_timeout") > 600);
	free(copy);
	/* the body limit is the workers' default server.maxbodysize (64 MiB); responses are never
	 * spooled to disk, and a client that takes nothing of one is cut after a while */
	const char *limit = strstr(text, "\tclient_max_body_size ");
	assert_non_null(limit);
	char *end;
	long long size = strtoll(limit + 22, &end, 10);
	size *= *end == 'g' ? 1LL << 30 : *end == 'm' ? 1LL << 20 : *end == 'k' ? 1LL << 10 : 1;
	assert_true(size == 64LL << 20);
	copy = strdup(text);
	assert_non_null(copy);
	assert_non_null(strstr(block_at(copy, "location / {"), "\tfastcgi_max_temp_file_size 0;"));
	free(copy);
	long long idle = directive_seconds(text, "send_timeout");
	assert_true(idle > 0 && idle <= 600);
#else
	/* the WebSocket route's ProxyPassMatch: upgrade and an idle limit over 60 s; the REST
	 * route's ProxyPass waits longer than the workers' longest file operation */
	const char *ws = strstr(text, "\tProxyPassMatch \"^/api/v1/runners/[^/]+/websocket$\"");
	assert_non_null(ws);
	char line[512];
	snprintf(line, sizeof line, "%.*s", (int)strcspn(ws, "\n"), ws);
	assert_non_null(strstr(line, " upgrade=websocket"));
	const char *t = strstr(line, " timeout=");
	assert_non_null(t);
	assert_true(atoll(t + 9) > 60);
	const char *rest = strstr(text, "\tProxyPass / \"unix:");
	assert_non_null(rest);
	snprintf(line, sizeof line, "%.*s", (int)strcspn(rest, "\n"), rest);
	t = strstr(line, " timeout=");
	assert_non_null(t);
	assert_true(atoll(t + 9) > 600);
	assert_non_null(strstr(line, " retry=0"));
	/* the body limit is the workers' default server.maxbodysize (64 MiB), checked on the
	 * Content-Length before the body is read */
	assert_non_null(strstr(text, "\tDefine POSEIDON_MAXBODY 67108864\n"));
	assert_non_null(
	    strstr(text, "\tRewriteCond expr \"%{HTTP:Content-Length} -gt ${POSEIDON_MAXBODY}\""));
#endif
	free(text);
}

/* The file as an operator installs it, with its own defaults (port 7200, /run/poseidon/api.sock,
 * 127.0.0.1:7201, /usr/local/share/poseidon/www), passes the server's configuration test. */
static void test_site_as_shipped_passes_the_servers_config_test(void **state)
{
	(void)state;
	char out[8192];
	if (h_front_check_site(FRONT, out, sizeof out) != 0)
		fail_msg("%s", out);
}

/* Last: the workers and the gateway go away and come back. */
static void test_front_answers_json_while_backends_are_down(void **state)
{
	(void)state;
	static const char *wsgate_env[] = {"POSEIDON_SERVER_TOKEN=" TOKEN, NULL};
	/* nginx says 502, Apache 503 (mod_proxy's "no backend"); both in the API's JSON shape */
	long down = FRONT == H_FRONT_NGINX ? 502 : 503;
	struct h_resp r;
	h_stack_stop_workers(&st);
	assert_int_equal(req(&r, "GET", "/api/v1/health", NULL, -1, NULL), down);
	assert_json_message(&r, "not answering");
	assert_non_null(strstr(r.body, "\"errorCode\":\"UNKNOWN\""));
	h_resp_free(&r);
	assert_int_equal(h_stack_restart_workers(&st), 0);
	assert_int_equal(status_of("GET", "/api/v1/health", NULL, NULL, 1), 204);
	/* the WebSocket route with the gateway gone, then back on its port: the front goes to it
	 * at once, as it went back to the restarted workers */
	char body[1024];
	struct wsc c;
	const char *pq = "/api/v1/runners/n0n-3x1st1ng-1d/websocket?executionID=e";
	h_stop(wsgate);
	wsgate = 0;
	assert_int_equal(ws_open(&c, pq, 1, NULL, body, sizeof body), down);
	wsc_close(&c);
	assert_non_null(strstr(body, "\"errorCode\":\"UNKNOWN\""));
	wsgate = h_stack_start_wsgate_with(&st, wsgate_env, NULL);
	assert_true(wsgate > 0);
	assert_int_equal(ws_open(&c, pq, 1, NULL, body, sizeof body), 410); /* the gateway's answer */
	wsc_close(&c);
	assert_non_null(strstr(body, "no runner found"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_health_version_and_status_page),
	    cmocka_unit_test(test_token_method_and_bad_json_are_answered_by_the_api),
	    cmocka_unit_test(test_oversized_bodies_get_a_json_413),
	    cmocka_unit_test(test_environment_create_read_list_delete),
	    cmocka_unit_test(test_claim_copy_list_download_execute_and_stream),
	    cmocka_unit_test(test_websocket_stdin_refusals_and_wss),
	    cmocka_unit_test(test_site_keeps_streams_open_and_lets_the_api_answer),
	    cmocka_unit_test(test_site_as_shipped_passes_the_servers_config_test),
	    cmocka_unit_test(test_front_answers_json_while_backends_are_down),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
