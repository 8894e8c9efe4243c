/* harness_nomad: see harness_nomad.h. Everything is blocking and bounded by timeouts; nothing
 * talks to anything but 127.0.0.1. */
#include "harness_nomad.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define MAX_AGENTS 16

static char agent_states[MAX_AGENTS][512];
static int nagents;
static pid_t owner;
static void (*prev_handler[32])(int);

static void run_cleanup(const char *state)
{
	char bin[PATH_MAX];
	snprintf(bin, sizeof bin, "%s/nomad-local", h_bin_dir());
	pid_t pid = fork();
	if (pid == 0) {
		int nul = open("/dev/null", 1);
		if (nul >= 0) {
			dup2(nul, 1);
			dup2(nul, 2);
		}
		execl(bin, "nomad-local", "-state", state, "-cleanup", (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, NULL, 0);
}

static void cleanup_all(void)
{
	if (getpid() != owner)
		return;
	for (int i = 0; i < nagents; i++)
		if (agent_states[i][0])
			run_cleanup(agent_states[i]);
	nagents = 0;
}

static void on_fatal(int sig)
{
	cleanup_all();
	if (sig < 32 && prev_handler[sig] && prev_handler[sig] != SIG_DFL && prev_handler[sig] != SIG_IGN)
		prev_handler[sig](sig);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void remember(const char *state)
{
	if (!owner) {
		h_tmpdir(); /* the harness's own exit handlers come first, so ours run before them */
		owner = getpid();
		atexit(cleanup_all);
		int sigs[] = {SIGINT, SIGTERM, SIGABRT, SIGSEGV};
		for (int i = 0; i < 4; i++)
			prev_handler[sigs[i]] = signal(sigs[i], on_fatal);
	}
	for (int i = 0; i < nagents; i++)
		if (strcmp(agent_states[i], state) == 0)
			return;
	if (nagents < MAX_AGENTS)
		snprintf(agent_states[nagents++], sizeof agent_states[0], "%s", state);
}

static int spawn_agent(struct h_nomad *n)
{
	char bin[PATH_MAX], port[16];
	snprintf(bin, sizeof bin, "%s/nomad-local", h_bin_dir());
	snprintf(port, sizeof port, "%d", n->port);
	char *argv[32];
	int k = 0;
	argv[k++] = bin;
	argv[k++] = "-port";
	argv[k++] = port;
	argv[k++] = "-state";
	argv[k++] = n->state;
	if (n->token[0]) {
		argv[k++] = "-token";
		argv[k++] = n->token;
	}
	if (n->images[0]) {
		argv[k++] = "-images";
		argv[k++] = n->images;
	}
	if (getenv("POSEIDON_TEST_NOMAD_DEBUG")) {
		argv[k++] = "-log-level";
		argv[k++] = "debug";
	}
	for (int i = 0; n->args && n->args[i] && k < 31; i++)
		argv[k++] = (char *)n->args[i];
	argv[k] = NULL;
	n->pid = h_spawn(argv, NULL, n->log);
	if (n->pid < 0 || h_wait_port(n->port, 10000) < 0) {
		fprintf(stderr, "harness: nomad-local did not start (see %s)\n", n->log);
		return -1;
	}
	return 0;
}

int h_nomad_start_images(struct h_nomad *n, const char *token, const char *images)
{
	return h_nomad_start_args(n, token, images, NULL);
}

int h_nomad_start_args(struct h_nomad *n, const char *token, const char *images, const char *const *args)
{
	memset(n, 0, sizeof *n);
	n->args = args;
	n->port = h_free_port();
	snprintf(n->url, sizeof n->url, "http://127.0.0.1:%d", n->port);
	snprintf(n->state, sizeof n->state, "%s/nomad-%d", h_tmpdir(), n->port);
	snprintf(n->log, sizeof n->log, "%s/nomad-%d.log", h_tmpdir(), n->port);
	snprintf(n->token, sizeof n->token, "%s", token ? token : "");
	snprintf(n->images, sizeof n->images, "%s", images ? images : "");
	remember(n->state);
	return spawn_agent(n);
}

int h_nomad_start(struct h_nomad *n, const char *token) { return h_nomad_start_images(n, token, NULL); }

int h_nomad_stop(struct h_nomad *n)
{
	int st = h_stop(n->pid);
	n->pid = 0;
	return st;
}

int h_nomad_restart(struct h_nomad *n)
{
	if (n->pid > 0)
		h_nomad_stop(n);
	return spawn_agent(n);
}

void h_nomad_cleanup(struct h_nomad *n) { run_cleanup(n->state); }

const char *const *h_nomad_headers(const struct h_nomad *n)
{
	static char tok[200];
	static const char *hdrs[2];
	if (n->token[0]) {
		snprintf(tok, sizeof tok, "X-Nomad-Token: %s", n->token);
		hdrs[0] = tok;
		hdrs[1] = NULL;
	} else {
		hdrs[0] = NULL;
	}
	return hdrs;
}

int h_nomad_register(struct h_nomad *n, const char *body, char eval[64])
{
	char url[256];
	struct h_resp r;
	snprintf(url, sizeof url, "%s/v1/jobs", n->url);
	if (h_http(&r, "PUT", url, body, -1, h_nomad_headers(n)) < 0)
		return -1;
	int status = (int)r.status;
	if (eval) {
		eval[0] = '\0';
		json_object *o = json_tokener_parse(r.body), *v;
		if (o && json_object_object_get_ex(o, "EvalID", &v))
			snprintf(eval, 64, "%s", json_object_get_string(v));
		json_object_put(o);
	}
	if (status != 200)
		fprintf(stderr, "harness: register answered %d: %s\n", status, r.body);
	h_resp_free(&r);
	return status;
}

int h_nomad_wait_running(struct h_nomad *n, const char *job_id, char alloc_id[64], int timeout_ms)
{
	char url[512];
	snprintf(url, sizeof url, "%s/v1/job/%s/allocations", n->url, job_id);
	long long end = h_now_ms() + timeout_ms;
	while (h_now_ms() < end) {
		struct h_resp r;
		if (h_http(&r, "GET", url, NULL, 0, h_nomad_headers(n)) == 0 && r.status == 200) {
			json_object *arr = json_tokener_parse(r.body);
			for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
				json_object *a = json_object_array_get_idx(arr, i), *cs, *id;
				if (json_object_object_get_ex(a, "ClientStatus", &cs) &&
				    strcmp(json_object_get_string(cs), "running") == 0 &&
				    json_object_object_get_ex(a, "ID", &id)) {
					snprintf(alloc_id, 64, "%s", json_object_get_string(id));
					json_object_put(arr);
					h_resp_free(&r);
					return 0;
				}
			}
			json_object_put(arr);
		}
		h_resp_free(&r);
		h_sleep_ms(10);
	}
	return -1;
}

char *h_nomad_job(const char *id, int memory_max_mb, const char *extra)
{
	char *s = NULL;
	if (asprintf(&s,
		     "{\"Job\":{\"ID\":\"%s\",\"Name\":\"%s\",\"Type\":\"batch\",\"Datacenters\":[\"dc1\"],"
		     "\"TaskGroups\":[{\"Name\":\"default-group\",\"Count\":1,"
		     "\"RestartPolicy\":{\"Attempts\":3,\"Interval\":3600000000000,\"Delay\":1000000000,\"Mode\":\"fail\"},"
		     "\"Tasks\":[{\"Name\":\"default-task\",\"Driver\":\"docker\",\"KillSignal\":\"SIGKILL\","
		     "\"Config\":{\"image\":\"openhpi/co_execenv_python:3.8\",\"command\":\"sleep\",\"args\":[\"infinity\"],"
		     "\"network_mode\":\"none\"},\"Resources\":{\"CPU\":20,\"MemoryMB\":30,\"MemoryMaxMB\":%d}}]%s%s},"
		     "{\"Name\":\"config\",\"Count\":0,\"Tasks\":[{\"Name\":\"config\",\"Driver\":\"exec\","
		     "\"Config\":{\"command\":\"true\"},\"Resources\":{\"CPU\":1,\"MemoryMB\":10}}],"
		     "\"Meta\":{\"used\":\"false\"}}]}}\n",
		     id, id, memory_max_mb, extra && *extra ? "," : "", extra ? extra : "") < 0)
		return NULL;
	return s;
}

/* ---- WebSocket client ---- */

static int connect_port(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* reads more into w->rbuf; 1 data, 0 EOF, -1 timeout/error */
static int ws_fill(struct h_ws *w, int timeout_ms)
{
	struct pollfd p = {.fd = w->fd, .events = POLLIN};
	if (poll(&p, 1, timeout_ms) <= 0)
		return -1;
	if (w->rlen + 65536 > w->rcap) {
		size_t cap = w->rcap ? w->rcap * 2 : 131072;
		while (cap < w->rlen + 65536)
			cap *= 2;
		char *n = realloc(w->rbuf, cap);
		if (!n)
			return -1;
		w->rbuf = n;
		w->rcap = cap;
	}
	ssize_t r = recv(w->fd, w->rbuf + w->rlen, 65536, 0);
	if (r < 0)
		return errno == ECONNRESET ? 0 : -1;
	if (r == 0)
		return 0;
	w->rlen += (size_t)r;
	return 1;
}

int h_ws_connect(struct h_ws *w, int port, const char *path_query, const char *token, char *body, size_t cap)
{
	memset(w, 0, sizeof *w);
	w->fd = connect_port(port);
	if (w->fd < 0)
		return -1;
	char req[16384];
	int n = snprintf(req, sizeof req,
			 "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s%s%s\r\n",
			 path_query, port, token && *token ? "X-Nomad-Token: " : "", token && *token ? token : "",
			 token && *token ? "\r\n" : "");
	if (write_all(w->fd, req, (size_t)n) < 0)
		return -1;
	char *end = NULL;
	long long deadline = h_now_ms() + 10000;
	while (!(end = w->rbuf ? memmem(w->rbuf, w->rlen, "\r\n\r\n", 4) : NULL)) {
		if (h_now_ms() > deadline || ws_fill(w, 10000) <= 0)
			return -1;
	}
	int status = 0;
	sscanf(w->rbuf, "HTTP/1.1 %d", &status);
	size_t hl = (size_t)(end - w->rbuf) + 4;
	if (status != 101) {
		/* read the body (Content-Length) */
		char *cl = strcasestr(w->rbuf, "Content-Length:");
		size_t want = cl && cl < end ? (size_t)atol(cl + 15) : 0;
		while (w->rlen - hl < want && ws_fill(w, 5000) > 0)
			;
		if (body && cap) {
			size_t bl = w->rlen - hl < cap - 1 ? w->rlen - hl : cap - 1;
			memcpy(body, w->rbuf + hl, bl);
			body[bl] = '\0';
		}
		return status;
	}
	memmove(w->rbuf, w->rbuf + hl, w->rlen - hl);
	w->rlen -= hl;
	return status;
}

int h_ws_send_text(struct h_ws *w, const char *text)
{
	size_t len = strlen(text);
	unsigned char h[14];
	size_t hl = 0;
	h[hl++] = 0x81;
	if (len < 126) {
		h[hl++] = (unsigned char)(0x80 | len);
	} else if (len < 65536) {
		h[hl++] = 0x80 | 126;
		h[hl++] = (unsigned char)(len >> 8);
		h[hl++] = (unsigned char)len;
	} else {
		h[hl++] = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			h[hl++] = (unsigned char)((uint64_t)len >> (8 * i));
	}
	unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
	memcpy(h + hl, mask, 4);
	hl += 4;
	unsigned char *p = malloc(hl + len);
	if (!p)
		return -1;
	memcpy(p, h, hl);
	for (size_t i = 0; i < len; i++)
		p[hl + i] = (unsigned char)text[i] ^ mask[i & 3];
	int rc = write_all(w->fd, p, hl + len);
	free(p);
	return rc;
}

int h_ws_recv(struct h_ws *w, int timeout_ms, char **payload, size_t *len)
{
	long long deadline = h_now_ms() + timeout_ms;
	*payload = NULL;
	*len = 0;
	for (;;) {
		if (w->rlen >= 2) {
			unsigned char *p = (unsigned char *)w->rbuf;
			size_t hl = 2;
			uint64_t l = p[1] & 0x7f;
			if (l == 126 && w->rlen >= 4) {
				l = (uint64_t)p[2] << 8 | p[3];
				hl = 4;
			} else if (l == 127 && w->rlen >= 10) {
				l = 0;
				for (int i = 0; i < 8; i++)
					l = l << 8 | p[2 + i];
				hl = 10;
			} else if (l >= 126) {
				goto more;
			}
			if (w->rlen >= hl + l) {
				int op = p[0] & 0x0f;
				*payload = malloc(l + 1);
				memcpy(*payload, p + hl, l);
				(*payload)[l] = '\0';
				*len = l;
				memmove(w->rbuf, w->rbuf + hl + l, w->rlen - hl - l);
				w->rlen -= hl + l;
				return op;
			}
		}
more:;
		long long left = deadline - h_now_ms();
		if (left <= 0)
			return -1;
		int r = ws_fill(w, (int)left);
		if (r == 0)
			return 0;
		if (r < 0)
			return -1;
	}
}

void h_ws_close(struct h_ws *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	free(w->rbuf);
	w->rbuf = NULL;
	w->rlen = w->rcap = 0;
}

static size_t b64dec(const char *in, unsigned char *out)
{
	static const char *tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (; *in && *in != '='; in++) {
		const char *p = strchr(tbl, *in);
		if (!p)
			continue;
		acc = acc << 6 | (uint32_t)(p - tbl);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	return o;
}

static void b64enc(const unsigned char *in, size_t n, char *out)
{
	static const char *tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0, i = 0;
	for (; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = tbl[v >> 18 & 63], out[o++] = tbl[v >> 12 & 63], out[o++] = tbl[v >> 6 & 63],
		out[o++] = tbl[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
		out[o++] = tbl[v >> 18 & 63], out[o++] = tbl[v >> 12 & 63];
		out[o++] = i + 1 < n ? tbl[v >> 6 & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
}

static void append(char **buf, size_t *len, const void *data, size_t n)
{
	char *p = realloc(*buf, *len + n + 1);
	if (!p)
		return;
	memcpy(p + *len, data, n);
	*len += n;
	p[*len] = '\0';
	*buf = p;
}

int h_nomad_exec(struct h_nomad *n, const char *alloc_id, const char *cmd_json, int tty, const char *stdin_data,
		 int close_stdin, struct h_exec *res)
{
	struct h_ws w;
	char path[8192], esc[6000];
	size_t o = 0;
	memset(res, 0, sizeof *res);
	res->out = calloc(1, 1);
	res->err = calloc(1, 1);
	res->frames = calloc(1, 1);
	size_t flen = 0;
	for (const unsigned char *p = (const unsigned char *)cmd_json; *p && o + 4 < sizeof esc; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("-_.~", *p))
			esc[o++] = (char)*p;
		else
			o += (size_t)snprintf(esc + o, 4, "%%%02X", *p);
	}
	esc[o] = '\0';
	snprintf(path, sizeof path, "/v1/client/allocation/%s/exec?command=%s&namespace=default&task=default-task&tty=%s",
		 alloc_id, esc, tty ? "true" : "false");
	long long t0 = h_now_ms();
	int st = h_ws_connect(&w, n->port, path, n->token, NULL, 0);
	if (st != 101) {
		h_ws_close(&w);
		return -1;
	}
	if (stdin_data && *stdin_data) {
		size_t l = strlen(stdin_data);
		char *b = malloc(l * 4 / 3 + 8), *frame = malloc(l * 4 / 3 + 64);
		b64enc((const unsigned char *)stdin_data, l, b);
		snprintf(frame, l * 4 / 3 + 64, "{\"stdin\":{\"data\":\"%s\"}}\n", b);
		h_ws_send_text(&w, frame);
		free(b);
		free(frame);
	}
	if (close_stdin)
		h_ws_send_text(&w, "{\"stdin\":{\"close\":true}}\n");
	int rc = -1;
	for (;;) {
		char *p;
		size_t len;
		int op = h_ws_recv(&w, 30000, &p, &len);
		if (op < 0)
			break;
		if (op == 0) {
			res->tcp_closed = 1;
			rc = res->exited || res->close_code ? 0 : -1;
			break;
		}
		if (op == 8) {
			res->close_code = len >= 2 ? ((unsigned char)p[0] << 8 | (unsigned char)p[1]) : 1005;
			snprintf(res->close_reason, sizeof res->close_reason, "%.*s", len >= 2 ? (int)len - 2 : 0, p + 2);
			free(p);
			rc = 0;
			/* wait for the TCP close that follows */
			char *q;
			size_t ql;
			if (h_ws_recv(&w, 5000, &q, &ql) == 0)
				res->tcp_closed = 1;
			free(q);
			break;
		}
		if (op == 1) {
			append(&res->frames, &flen, p, len);
			append(&res->frames, &flen, "\n", 1);
			json_object *o2 = json_tokener_parse(p), *s, *d, *v;
			if (o2 && json_object_object_get_ex(o2, "stdout", &s)) {
				if (json_object_object_get_ex(s, "data", &d)) {
					unsigned char *raw = malloc(len);
					size_t rl = b64dec(json_object_get_string(d), raw);
					append(&res->out, &res->out_len, raw, rl);
					free(raw);
				}
				if (json_object_object_get_ex(s, "close", &v))
					res->stdout_closed = 1;
			}
			if (o2 && json_object_object_get_ex(o2, "stderr", &s)) {
				if (json_object_object_get_ex(s, "data", &d)) {
					unsigned char *raw = malloc(len);
					size_t rl = b64dec(json_object_get_string(d), raw);
					append(&res->err, &res->err_len, raw, rl);
					free(raw);
				}
				if (json_object_object_get_ex(s, "close", &v))
					res->stderr_closed = 1;
			}
			if (o2 && json_object_object_get_ex(o2, "exited", &v) && json_object_get_boolean(v)) {
				res->exited = 1;
				json_object *r2, *ec;
				if (json_object_object_get_ex(o2, "result", &r2) &&
				    json_object_object_get_ex(r2, "exit_code", &ec))
					res->exit_code = json_object_get_int(ec);
			}
			json_object_put(o2);
		}
		free(p);
	}
	res->seconds = (double)(h_now_ms() - t0) / 1000.0;
	h_ws_close(&w);
	return rc;
}

void h_exec_free(struct h_exec *res)
{
	free(res->out);
	free(res->err);
	free(res->frames);
	memset(res, 0, sizeof *res);
}

/* ---- event stream ---- */

int h_stream_open(struct h_stream *s, int port, const char *path_query, const char *token)
{
	memset(s, 0, sizeof *s);
	s->fd = connect_port(port);
	if (s->fd < 0)
		return -1;
	char req[4096];
	int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s%s%s\r\n", path_query, port,
			 token && *token ? "X-Nomad-Token: " : "", token && *token ? token : "",
			 token && *token ? "\r\n" : "");
	if (write_all(s->fd, req, (size_t)n) < 0)
		return -1;
	struct h_ws w = {.fd = s->fd};
	char *end;
	long long deadline = h_now_ms() + 10000;
	while (!(end = w.rbuf ? memmem(w.rbuf, w.rlen, "\r\n\r\n", 4) : NULL)) {
		if (h_now_ms() > deadline || ws_fill(&w, 10000) <= 0) {
			free(w.rbuf);
			return -1;
		}
	}
	sscanf(w.rbuf, "HTTP/1.1 %d", &s->status);
	*end = '\0';
	s->chunked = strcasestr(w.rbuf, "Transfer-Encoding: chunked") != NULL;
	size_t hl = (size_t)(end - w.rbuf) + 4;
	s->buf = w.rbuf;
	s->cap = w.rcap;
	memmove(s->buf, s->buf + hl, w.rlen - hl);
	s->len = w.rlen - hl;
	return s->status;
}

/* moves complete chunks from buf to body */
static void dechunk(struct h_stream *s)
{
	if (!s->chunked) {
		append(&s->body, &s->blen, s->buf, s->len);
		s->len = 0;
		return;
	}
	for (;;) {
		char *nl = s->len ? memmem(s->buf, s->len, "\r\n", 2) : NULL;
		if (!nl)
			return;
		size_t size = strtoul(s->buf, NULL, 16), hl = (size_t)(nl - s->buf) + 2;
		if (s->len < hl + size + 2)
			return;
		append(&s->body, &s->blen, s->buf + hl, size);
		memmove(s->buf, s->buf + hl + size + 2, s->len - hl - size - 2);
		s->len -= hl + size + 2;
		if (size == 0)
			return;
	}
}

char *h_stream_line(struct h_stream *s, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	for (;;) {
		dechunk(s);
		char *nl = s->blen ? memchr(s->body, '\n', s->blen) : NULL;
		if (nl) {
			size_t l = (size_t)(nl - s->body);
			char *line = malloc(l + 1);
			memcpy(line, s->body, l);
			line[l] = '\0';
			memmove(s->body, nl + 1, s->blen - l - 1);
			s->blen -= l + 1;
			return line;
		}
		long long left = deadline - h_now_ms();
		if (left <= 0)
			return NULL;
		struct h_ws w = {.fd = s->fd, .rbuf = s->buf, .rlen = s->len, .rcap = s->cap};
		int r = ws_fill(&w, (int)left);
		s->buf = w.rbuf;
		s->len = w.rlen;
		s->cap = w.rcap;
		if (r <= 0)
			return NULL;
	}
}

void h_stream_close(struct h_stream *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	free(s->buf);
	free(s->body);
	s->buf = s->body = NULL;
}

/* ---- shapes ---- */

static int is_map_key(const char *k)
{
	static const char *maps[] = {"Meta", "Config", "TaskStates", "Attributes", "Drivers", "Details", "Summary",
				     "NodesAvailable", "Scores", "TaskLifecycles", "Links", "HostVolumes",
				     "CSIControllerPlugins", "CSINodePlugins", "TaskResources", "QueuedAllocations",
				     "Env", NULL};
	for (int i = 0; maps[i]; i++)
		if (strcmp(k, maps[i]) == 0)
			return 1;
	return 0;
}

static const char *tname(json_object *o)
{
	switch (json_object_get_type(o)) {
	case json_type_null: return "null";
	case json_type_boolean: return "bool";
	case json_type_double:
	case json_type_int: return "number";
	case json_type_string: return "string";
	case json_type_array: return "array";
	case json_type_object: return "object";
	}
	return "?";
}

static int shape(json_object *a, json_object *b, const char *path, int map, char *why, size_t cap)
{
	char sub[1024];
	if (!a || !b)
		return 0; /* null on either side: the sample cannot tell the type */
	if (strcmp(tname(a), tname(b)) != 0) {
		snprintf(why, cap, "%s: sample has %s, ours %s", path, tname(a), tname(b));
		return -1;
	}
	if (json_object_is_type(a, json_type_array)) {
		if (json_object_array_length(a) && json_object_array_length(b)) {
			snprintf(sub, sizeof sub, "%s[0]", path);
			return shape(json_object_array_get_idx(a, 0), json_object_array_get_idx(b, 0), sub, 0, why, cap);
		}
		return 0;
	}
	if (!json_object_is_type(a, json_type_object))
		return 0;
	json_object_object_foreach(a, k, va)
	{
		json_object *vb;
		snprintf(sub, sizeof sub, "%s.%s", path, k);
		if (!json_object_object_get_ex(b, k, &vb)) {
			if (map)
				continue;
			snprintf(why, cap, "%s: missing in ours", sub);
			return -1;
		}
		if (shape(va, vb, sub, is_map_key(k), why, cap) < 0)
			return -1;
	}
	if (!map) {
		json_object_object_foreach(b, kb, vb2)
		{
			(void)vb2;
			if (!json_object_object_get_ex(a, kb, NULL)) {
				snprintf(why, cap, "%s.%s: not in the sample", path, kb);
				return -1;
			}
		}
	}
	return 0;
}

int h_json_same_shape(const char *sample_json, const char *ours_json, char *why, size_t cap)
{
	json_object *a = json_tokener_parse(sample_json), *b = json_tokener_parse(ours_json);
	int rc;
	if (!a || !b) {
		snprintf(why, cap, "unparsable JSON (%s)", a ? "ours" : "sample");
		rc = -1;
	} else {
		rc = shape(a, b, "$", 0, why, cap);
	}
	json_object_put(a);
	json_object_put(b);
	return rc;
}

/* ---- a machine next door ---- */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	int rc = system(cmd);
	return rc == 0 ? 0 : -1;
}

int h_netns_server_start(struct h_netns_server *s)
{
	int k = 1 + getpid() % 250;
	memset(s, 0, sizeof *s);
	snprintf(s->ns, sizeof s->ns, "poseidon-test-%d", (int)getpid());
	snprintf(s->veth, sizeof s->veth, "pt%d", (int)getpid() % 100000);
	snprintf(s->ip, sizeof s->ip, "10.203.%d.2", k);
	s->port = 8999;
	sh("ip netns del %s 2>/dev/null; ip link del %sh 2>/dev/null", s->ns, s->veth);
	if (sh("ip netns add %s", s->ns) < 0 || sh("ip link add %sh type veth peer name %sn", s->veth, s->veth) < 0 ||
	    sh("ip link set %sn netns %s", s->veth, s->ns) < 0 ||
	    sh("ip addr add 10.203.%d.1/30 dev %sh && ip link set %sh up", k, s->veth, s->veth) < 0 ||
	    sh("ip netns exec %s sh -c 'ip addr add %s/30 dev %sn && ip link set %sn up && ip link set lo up'", s->ns,
	       s->ip, s->veth, s->veth) < 0) {
		h_netns_server_stop(s);
		return -1;
	}
	char path[64];
	snprintf(path, sizeof path, "/run/netns/%s", s->ns);
	int nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0) {
		h_netns_server_stop(s);
		return -1;
	}
	int ready[2];
	if (pipe(ready) < 0) {
		close(nsfd);
		h_netns_server_stop(s);
		return -1;
	}
	pid_t parent = getpid();
	s->pid = fork();
	if (s->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent || setns(nsfd, CLONE_NEWNET) < 0)
			_exit(1);
		int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
		inet_pton(AF_INET, s->ip, &a.sin_addr);
		setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 16) < 0)
			_exit(1);
		if (write(ready[1], "1", 1) < 0)
			_exit(1);
		for (;;) {
			int c = accept(l, NULL, NULL);
			if (c < 0)
				continue;
			const char *g = H_NETNS_GREETING "\n";
			if (write(c, g, strlen(g)) < 0)
				(void)0;
			close(c);
		}
	}
	close(nsfd);
	close(ready[1]);
	char c = 0;
	ssize_t n = s->pid > 0 ? read(ready[0], &c, 1) : -1;
	close(ready[0]);
	if (n != 1) {
		h_netns_server_stop(s);
		return -1;
	}
	return 0;
}

void h_netns_server_stop(struct h_netns_server *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
		s->pid = 0;
	}
	if (s->ns[0]) {
		sh("ip netns del %s 2>/dev/null; ip link del %sh 2>/dev/null", s->ns, s->veth);
		s->ns[0] = '\0';
	}
}
