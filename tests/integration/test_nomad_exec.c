/* nomad_exec against real servers on 127.0.0.1.
 *
 * Part 1, a scripted WebSocket server in a thread of this process ("fake"): it checks the bytes
 * the client puts on the wire (request line, headers, masked client frames) and sends what
 * nomad-local never sends (fragmented messages, a drop before the exit frame, close 1000, 429,
 * garbage), so every error path is exercised.
 * Part 2, nomad-local started by the harness: a job from tests/fixtures/nomad, then real commands in
 * its allocation: output and exit codes with and without tty, stdin through cat, unknown
 * allocation, refused connection, 200 synchronous sessions in a row (p50/p99 printed), cancel,
 * and two concurrent sessions in event-loop mode.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <libwebsockets.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "harness_nomad.h"
#include "nomad_exec.h"

#define FAKE_ALLOC "0a1b2c3d-0000-4000-8000-00000000abcd"
#define BUF_MAX    (512 * 1024)

/* ---- collecting output ------------------------------------------------------------------------ */

struct sink {
	char *out, *err;
	size_t out_len, err_len;
	int exited, exit_code, errors, closed;
	enum nomad_exec_failure failure;
	struct perr e;
	/* stdin source */
	const char *in;
	size_t in_len, in_pos, in_step;
	/* event mode: the session and what is left to write */
	struct nomad_exec *x;
	int ready_calls;
	long long exit_at;
};

static void sink_init(struct sink *s)
{
	memset(s, 0, sizeof *s);
	s->out = calloc(1, BUF_MAX);
	s->err = calloc(1, BUF_MAX);
}

static void sink_free(struct sink *s)
{
	free(s->out);
	free(s->err);
}

static void append(char *buf, size_t *len, const char *data, size_t n)
{
	assert_true(*len + n < BUF_MAX);
	memcpy(buf + *len, data, n);
	*len += n;
	buf[*len] = '\0';
}

static int io_out(void *ud, const char *data, size_t len)
{
	struct sink *s = ud;
	append(s->out, &s->out_len, data, len);
	return 0;
}

static int io_err(void *ud, const char *data, size_t len)
{
	struct sink *s = ud;
	append(s->err, &s->err_len, data, len);
	return 0;
}

/* hands out stdin in pieces of in_step (odd sizes, to prove framing does not depend on them) */
static ssize_t io_in(void *ud, void *buf, size_t cap)
{
	struct sink *s = ud;
	size_t n = s->in_len - s->in_pos;
	if (n > cap)
		n = cap;
	if (s->in_step && n > s->in_step)
		n = s->in_step;
	memcpy(buf, s->in + s->in_pos, n);
	s->in_pos += n;
	return (ssize_t)n;
}

static int run_sync(const struct nomad_endpoint *ep, const char *alloc, const char *const *argv, int tty,
                    struct sink *s, int with_stdin, int timeout_ms)
{
	struct nomad_exec_opts o = {.alloc_id = alloc, .argv = argv, .tty = tty};
	struct nomad_exec_io io = {
	    .read_stdin = with_stdin ? io_in : NULL, .on_stdout = io_out, .on_stderr = io_err, .ud = s};
	int rc = nomad_exec_run(ep, &o, &io, timeout_ms, &s->exit_code, &s->failure, &s->e);
	s->exited = rc == 0;
	return rc;
}

/* ---- the scripted server ---------------------------------------------------------------------- */

struct fake;
typedef void (*fake_script)(struct fake *f, int fd);

struct fake {
	int lfd, port;
	pthread_t th;
	fake_script script;
	int status;     /* non-101 answer instead of the upgrade, 0: upgrade */
	char req[8192]; /* the handshake request as received */
	/* what the client sent, for the assertions of the main thread */
	char stdin_data[BUF_MAX];
	size_t stdin_len;
	int frames, stdin_frames, max_stdin_raw, saw_close, first_is_tty, saw_other;
	char first_frame[256];
	int done;
	atomic_int upgraded; /* the 101 went out */
};

static void write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
		if (k <= 0)
			return;
		c += k;
		n -= (size_t)k;
	}
}

static int read_all(int fd, void *p, size_t n)
{
	char *c = p;
	while (n) {
		ssize_t k = recv(fd, c, n, 0);
		if (k <= 0)
			return -1;
		c += k;
		n -= (size_t)k;
	}
	return 0;
}

/* One server frame (never masked). */
static void ws_send(int fd, int opcode, int fin, const void *data, size_t len)
{
	unsigned char h[10];
	size_t n = 2;
	h[0] = (unsigned char)((fin ? 0x80 : 0) | opcode);
	if (len < 126) {
		h[1] = (unsigned char)len;
	} else if (len < 65536) {
		h[1] = 126;
		h[2] = (unsigned char)(len >> 8);
		h[3] = (unsigned char)len;
		n = 4;
	} else {
		h[1] = 127;
		for (int i = 0; i < 8; i++)
			h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
		n = 10;
	}
	write_all(fd, h, n);
	write_all(fd, data, len);
}

static void ws_text(int fd, const char *s)
{
	ws_send(fd, 1, 1, s, strlen(s));
}

/* One client frame, unmasked into buf (NUL-terminated). Returns its opcode or -1. */
static int ws_recv(int fd, char *buf, size_t cap, size_t *len)
{
	unsigned char h[2], ext[8], mask[4];
	if (read_all(fd, h, 2) < 0)
		return -1;
	uint64_t n = h[1] & 0x7f;
	if (n == 126) {
		if (read_all(fd, ext, 2) < 0)
			return -1;
		n = (uint64_t)ext[0] << 8 | ext[1];
	} else if (n == 127) {
		if (read_all(fd, ext, 8) < 0)
			return -1;
		n = 0;
		for (int i = 0; i < 8; i++)
			n = n << 8 | ext[i];
	}
	if (!(h[1] & 0x80) || n + 1 > cap) /* clients must mask */
		return -1;
	if (read_all(fd, mask, 4) < 0 || read_all(fd, buf, n) < 0)
		return -1;
	for (uint64_t i = 0; i < n; i++)
		buf[i] ^= (char)mask[i % 4];
	buf[n] = '\0';
	*len = n;
	return h[0] & 0x0f;
}

static void header_value(const char *req, const char *name, char *out, size_t cap)
{
	out[0] = '\0';
	for (const char *p = strstr(req, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
		const char *line = p + 2;
		size_t nl = strlen(name);
		if (!strncasecmp(line, name, nl) && line[nl] == ':') {
			const char *v = line + nl + 1;
			while (*v == ' ')
				v++;
			const char *end = strstr(v, "\r\n");
			snprintf(out, cap, "%.*s", (int)(end ? end - v : (long)strlen(v)), v);
			return;
		}
	}
}

/* Reads the client's frames until stdin close (or the connection ends), recording them. */
static void collect_stdin(struct fake *f, int fd)
{
	char *buf = malloc(BUF_MAX);
	size_t len;
	int op;
	while ((op = ws_recv(fd, buf, BUF_MAX, &len)) >= 0) {
		if (op == 8)
			break;
		if (!f->frames++) {
			snprintf(f->first_frame, sizeof f->first_frame, "%s", buf);
			f->first_is_tty = strstr(buf, "\"tty_size\"") != NULL;
		}
		if (!strcmp(buf, "{\"stdin\":{\"close\":true}}")) {
			f->saw_close = 1;
			break;
		}
		const char *d = strstr(buf, "{\"stdin\":{\"data\":\"");
		if (!d) {
			f->saw_other++;
			continue;
		}
		d += 18;
		const char *end = strchr(d, '"');
		int k = lws_b64_decode_string_len(d, (int)(end - d), f->stdin_data + f->stdin_len,
		                                  (int)(sizeof f->stdin_data - f->stdin_len));
		f->stdin_frames++;
		if (k > f->max_stdin_raw)
			f->max_stdin_raw = k;
		f->stdin_len += (size_t)k;
	}
	free(buf);
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	int fd = accept(f->lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	struct timeval tv = {10, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	size_t n = 0;
	while (n + 1 < sizeof f->req && !strstr(f->req, "\r\n\r\n")) {
		ssize_t k = recv(fd, f->req + n, sizeof f->req - 1 - n, 0);
		if (k <= 0)
			break;
		n += (size_t)k;
		f->req[n] = '\0';
	}
	if (f->status) {
		char resp[256];
		int k = snprintf(resp, sizeof resp,
		                 "HTTP/1.1 %d Whatever\r\nContent-Type: text/plain; charset=utf-8\r\n"
		                 "Content-Length: 2\r\n\r\nno",
		                 f->status);
		write_all(fd, resp, (size_t)k);
	} else {
		char key[64], acc[128], resp[512];
		unsigned char md[20];
		header_value(f->req, "Sec-WebSocket-Key", key, sizeof key);
		char both[128];
		snprintf(both, sizeof both, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
		lws_SHA1((const unsigned char *)both, strlen(both), md);
		lws_b64_encode_string((const char *)md, 20, acc, sizeof acc);
		int k = snprintf(
		    resp, sizeof resp,
		    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		    "Sec-WebSocket-Accept: %s\r\n\r\n",
		    acc);
		write_all(fd, resp, (size_t)k);
		f->upgraded = 1;
		if (f->script)
			f->script(f, fd);
	}
	shutdown(fd, SHUT_WR);
	/* drain until the client closes, so it sees our FIN rather than a reset */
	char sink[4096];
	while (recv(fd, sink, sizeof sink, 0) > 0)
		;
	close(fd);
	f->done = 1;
	return NULL;
}

static struct fake *fake_start(fake_script script, int status)
{
	struct fake *f = calloc(1, sizeof *f);
	f->script = script;
	f->status = status;
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(f->lfd, 4), 0);
	getsockname(f->lfd, (struct sockaddr *)&a, &len);
	f->port = ntohs(a.sin_port);
	pthread_create(&f->th, NULL, fake_main, f);
	return f;
}

static void fake_stop(struct fake *f)
{
	pthread_join(f->th, NULL);
	close(f->lfd);
	free(f);
}

static void fake_endpoint(struct nomad_endpoint *ep, const struct fake *f)
{
	memset(ep, 0, sizeof *ep);
	snprintf(ep->host, sizeof ep->host, "127.0.0.1");
	ep->port = f->port;
	snprintf(ep->namespace, sizeof ep->namespace, "ns1");
}

/* ---- scripts ---- */

static void script_fragments(struct fake *f, int fd)
{
	(void)f;
	/* "hello world\n" as one text message in three frames; then stderr, noise, close markers */
	const char *msg = "{\"stdout\":{\"data\":\"aGVsbG8gd29ybGQK\"}}";
	ws_send(fd, 1, 0, msg, 10);
	ws_send(fd, 0, 0, msg + 10, 10);
	ws_send(fd, 0, 1, msg + 20, strlen(msg) - 20);
	ws_text(fd, "{\"stderr\":{\"data\":\"b29wcwo=\"}}");
	ws_text(fd, "{}");
	ws_text(fd, "{\"something\":\"new\"}");
	ws_send(fd, 9, 1, "ping", 4); /* a ping between messages is not output */
	ws_text(fd, "{\"stdout\":{\"close\":true}}");
	ws_text(fd, "{\"stderr\":{\"close\":true}}");
	ws_text(fd, "{\"exited\":true,\"result\":{\"exit_code\":7}}");
}

static void script_echo_stdin(struct fake *f, int fd)
{
	collect_stdin(f, fd);
	ws_text(fd, "{\"exited\":true,\"result\":{}}");
}

static void script_drop(struct fake *f, int fd)
{
	(void)f;
	ws_text(fd, "{\"stdout\":{\"data\":\"cGFydAo=\"}}");
	/* then the connection just ends */
}

static void script_close_1000(struct fake *f, int fd)
{
	(void)f;
	ws_send(fd, 8, 1, "\x03\xe8", 2);
}

static void script_close_unknown(struct fake *f, int fd)
{
	(void)f;
	const char p[] = "\x03\xf0Unknown allocation \"" FAKE_ALLOC "\"";
	ws_send(fd, 8, 1, p, sizeof p - 1);
}

static void script_garbage(struct fake *f, int fd)
{
	(void)f;
	ws_text(fd, "{\"stdout\":{\"data\":\"!!!\"}}");
	ws_text(fd, "{\"exited\":true,\"result\":{}}");
}

static void script_silent(struct fake *f, int fd)
{
	(void)f;
	char buf[256];
	size_t len;
	while (ws_recv(fd, buf, sizeof buf, &len) >= 0)
		; /* until the client goes away */
}

static void script_heartbeats(struct fake *f, int fd)
{
	char buf[256];
	size_t len;
	int op;
	while (f->saw_other < 3 && (op = ws_recv(fd, buf, sizeof buf, &len)) == 1) {
		f->frames++;
		if (!strcmp(buf, "{}"))
			f->saw_other++;
	}
	ws_text(fd, "{\"exited\":true,\"result\":{}}");
}

/* ---- part 1: against the scripted server ------------------------------------------------------ */

static const char *const argv_true[] = {"true", NULL};

static void test_fake_fragmented_messages_are_reassembled(void **state)
{
	(void)state;
	struct fake *f = fake_start(script_fragments, 0);
	struct nomad_endpoint ep;
	fake_endpoint(&ep, f);
	snprintf(ep.token, sizeof ep.token, "s3cret-token");
	struct sink s;
	sink_init(&s);
	const char *argv[] = {"/bin/bash", "-c", "echo hi", NULL};
	assert_int_equal(run_sync(&ep, FAKE_ALLOC, argv, 0, &s, 0, 5000), 0);
	fake_stop(f);
	assert_int_equal(s.exit_code, 7);
	assert_string_equal(s.out, "hello world\n");
	assert_string_equal(s.err, "oops\n");

	sink_free(&s);
}

static void test_fake_request_headers(void **state)
{
	(void)state;
	struct fake *f = fake_start(script_fragments, 0);
	struct nomad_endpoint ep;
	fake_endpoint(&ep, f);
	snprintf(ep.token, sizeof ep.token, "s3cret-token");
	struct sink s;
	sink_init(&s);
	const char *argv[] = {"/bin/bash", "-c", "echo hi", NULL};
	assert_int_equal(run_sync(&ep, FAKE_ALLOC, argv, 0, &s, 0, 5000), 0);
	pthread_join(f->th, NULL);
	const char *line =
	    "GET /v1/client/allocation/" FAKE_ALLOC "/exec?command=%5B%22/bin/bash%22,%22-c%22,"
	    "%22echo+hi%22%5D&namespace=ns1&task=default-task&tty=false HTTP/1.1\r\n";
	assert_memory_equal(f->req, line, strlen(line));
	char v[256];
	header_value(f->req, "X-Nomad-Token", v, sizeof v);
	assert_string_equal(v, "s3cret-token");
	header_value(f->req, "Host", v, sizeof v);
	char want[64];
	snprintf(want, sizeof want, "127.0.0.1:%d", f->port);
	assert_string_equal(v, want);
	header_value(f->req, "Sec-WebSocket-Version", v, sizeof v);
	assert_string_equal(v, "13");
	header_value(f->req, "Upgrade", v, sizeof v);
	assert_string_equal(v, "websocket");
	/* no subprotocol, no extensions (permessage-deflate), no Origin, no gzip */
	assert_null(strcasestr(f->req, "Sec-WebSocket-Protocol"));
	assert_null(strcasestr(f->req, "Sec-WebSocket-Extensions"));
	assert_null(strcasestr(f->req, "\r\nOrigin:"));
	assert_null(strcasestr(f->req, "gzip"));
	close(f->lfd);
	free(f);
	sink_free(&s);

	/* without a token there is no token header at all */
	f = fake_start(script_fragments, 0);
	fake_endpoint(&ep, f);
	sink_init(&s);
	assert_int_equal(run_sync(&ep, FAKE_ALLOC, argv_true, 0, &s, 0, 5000), 0);
	pthread_join(f->th, NULL);
	assert_null(strcasestr(f->req, "X-Nomad-Token"));
	close(f->lfd);
	free(f);
	sink_free(&s);
}

static void test_fake_stdin_is_framed_and_closed(void **state)
{
	(void)state;
	struct fake *f = fake_start(script_echo_stdin, 0);
	struct nomad_endpoint ep;
	fake_endpoint(&ep, f);
	struct sink s;
	sink_init(&s);
	size_t n = 10007;
	char *in = malloc(n);
	for (size_t i = 0; i < n; i++)
		in[i] = (char)(i * 13 + 1);
	s.in = in;
	s.in_len = n;
	s.in_step = 3001; /* the source hands out odd amounts; frames still carry at most 2048 */
	struct nomad_exec_opts o = {
	    .alloc_id = FAKE_ALLOC, .argv = argv_true, .tty = 1, .tty_height = 24, .tty_width = 80};
	struct nomad_exec_io io = {.read_stdin = io_in, .on_stdout = io_out, .ud = &s};
	int code = -5;
	assert_int_equal(nomad_exec_run(&ep, &o, &io, 5000, &code, NULL, &s.e), 0);
	assert_int_equal(code, 0);
	pthread_join(f->th, NULL);
	assert_true(f->first_is_tty);
	assert_string_equal(f->first_frame, "{\"tty_size\":{\"height\":24,\"width\":80}}");
	assert_int_equal(f->stdin_len, n);
	assert_memory_equal(f->stdin_data, in, n);
	assert_int_equal(f->max_stdin_raw, NOMAD_EXEC_STDIN_CHUNK);
	assert_true(f->stdin_frames >= 5);
	assert_true(f->saw_close);
	close(f->lfd);
	free(f);
	free(in);
	sink_free(&s);

	/* no source: no stdin frame and no close either (Poseidon's ls and cat) */
	f = fake_start(script_silent, 0);
	fake_endpoint(&ep, f);
	sink_init(&s);
	assert_int_equal(run_sync(&ep, FAKE_ALLOC, argv_true, 0, &s, 0, 400), -1);
	pthread_join(f->th, NULL);
	assert_int_equal(f->frames, 0);
	close(f->lfd);
	free(f);
	sink_free(&s);
}

static void test_fake_drop_before_exit_is_a_failure(void **state)
{
	(void)state;
	struct fake *f = fake_start(script_drop, 0);
	struct nomad_endpoint ep;
	fake_endpoint(&ep, f);
	struct sink s;
	sink_init(&s);
	assert_int_equal(run_sync(&ep, FAKE_ALLOC, argv_true, 0, &s, 0, 5000), -1);
	fake_stop(f);
	assert_string_equal(s.out, "part\n"); /* what came before the drop was delivered */
	assert_int_equal(s.failure, NOMAD_EXEC_FAIL_DROPPED);
	assert_int_equal(s.e.kind, PERR_NOMAD_UNREACHABLE);
	assert_int_equal(s.exit_code, -1);
	sink_free(&s);
}

static void test_fake_close_frames(void **state)
{
	(void)state;
	struct fake *f = fake_start(script_close_1000, 0);
	struct nomad_endpoint ep;
	fake_endpoint(&ep, f);
	struct sink s;
	sink_init(&s);
	assert_int_equal(run_sync(&ep, FAKE_ALLOC, argv_true, 0, &s, 0, 5000), -1);
	fake_stop(f);
	assert_int_equal(s.failure, NOMAD_EXEC_FAIL_CLOSE_FRAME);
	assert_int_equal(s.e.kind, PERR_NOMAD_INTERNAL);
	assert_non_null(strstr(s.e.msg, "1000"));
	sink_free(&s);

	f = fake_start(script_close_unknown, 0);
	fake_endpoint(&ep, f);
	sink_init(&s);
	assert_int_equal(run_sync(&ep, FAKE_ALLOC, argv_true, 0, &s, 0, 5000), -1);
	fake_stop(f);
	assert_int_equal(s.failure, NOMAD_EXEC_FAIL_CLOSE_FRAME);
	assert_int_equal(s.e.kind, PERR_NOMAD_INTERNAL);
	assert_non_null(strstr(s.e.msg, "Unknown allocation \"" FAKE_ALLOC "\""));
	assert_non_null(strstr(s.e.msg, "1008"));
	sink_free(&s);
}

static void test_fake_http_answers(void **state)
{
	(void)state;
	const struct {
		int status;
		enum perr_kind kind;
	} cases[] = {{429, PERR_NOMAD_OVERLOAD}, {500, PERR_NOMAD_OVERLOAD}, {503, PERR_NOMAD_OVERLOAD},
	             {404, PERR_NOMAD_INTERNAL}, {403, PERR_NOMAD_INTERNAL}, {200, PERR_NOMAD_INTERNAL}};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct fake *f = fake_start(NULL, cases[i].status);
		struct nomad_endpoint ep;
		fake_endpoint(&ep, f);
		struct sink s;
		sink_init(&s);
		assert_int_equal(run_sync(&ep, FAKE_ALLOC, argv_true, 0, &s, 0, 5000), -1);
		fake_stop(f);
		assert_int_equal(s.failure, NOMAD_EXEC_FAIL_HTTP);
		assert_int_equal(s.e.kind, cases[i].kind);
		char code[8];
		snprintf(code, sizeof code, "%d", cases[i].status);
		assert_non_null(strstr(s.e.msg, code));
		sink_free(&s);
	}
}

static void test_fake_garbage_and_timeout(void **state)
{
	(void)state;
	struct fake *f = fake_start(script_garbage, 0);
	struct nomad_endpoint ep;
	fake_endpoint(&ep, f);
	struct sink s;
	sink_init(&s);
	assert_int_equal(run_sync(&ep, FAKE_ALLOC, argv_true, 0, &s, 0, 5000), -1);
	fake_stop(f);
	assert_int_equal(s.failure, NOMAD_EXEC_FAIL_PROTOCOL);
	assert_int_equal(s.e.kind, PERR_NOMAD_INTERNAL);
	sink_free(&s);

	f = fake_start(script_silent, 0);
	fake_endpoint(&ep, f);
	sink_init(&s);
	long long t0 = h_now_ms();
	assert_int_equal(run_sync(&ep, FAKE_ALLOC, argv_true, 0, &s, 0, 300), -1);
	long long took = h_now_ms() - t0;
	fake_stop(f);
	print_message("timeout after %lld ms\n", took);
	assert_true(took >= 290 && took < 2000);
	assert_int_equal(s.failure, NOMAD_EXEC_FAIL_LOCAL);
	assert_non_null(strstr(s.e.msg, "300 ms"));
	sink_free(&s);
}

static void test_fake_heartbeats(void **state)
{
	(void)state;
	struct fake *f = fake_start(script_heartbeats, 0);
	struct nomad_endpoint ep;
	fake_endpoint(&ep, f);
	struct nomad_exec_opts o = {.alloc_id = FAKE_ALLOC, .argv = argv_true, .heartbeat_ms = 50};
	int code = -5;
	struct perr e;
	long long t0 = h_now_ms();
	assert_int_equal(nomad_exec_run(&ep, &o, NULL, 5000, &code, NULL, &e), 0);
	long long took = h_now_ms() - t0;
	pthread_join(f->th, NULL);
	assert_int_equal(code, 0);
	/* three "{}" and nothing else, one per interval */
	assert_int_equal(f->saw_other, 3);
	assert_int_equal(f->frames, 3);
	assert_true(took >= 140 && took < 2000);
	close(f->lfd);
	free(f);
}

static ssize_t failing_source(void *ud, void *buf, size_t cap)
{
	(void)ud, (void)buf, (void)cap;
	return -1;
}

static int failing_sink(void *ud, const char *data, size_t len)
{
	(void)data, (void)len;
	(*(int *)ud)++;
	return -1;
}

static void test_fake_source_and_sink_failures(void **state)
{
	(void)state;
	struct fake *f = fake_start(script_echo_stdin, 0);
	struct nomad_endpoint ep;
	fake_endpoint(&ep, f);
	struct nomad_exec_opts o = {.alloc_id = FAKE_ALLOC, .argv = argv_true};
	struct nomad_exec_io io = {.read_stdin = failing_source};
	int code = -5;
	enum nomad_exec_failure failure;
	struct perr e;
	assert_int_equal(nomad_exec_run(&ep, &o, &io, 5000, &code, &failure, &e), -1);
	fake_stop(f);
	assert_int_equal(code, -1);
	assert_int_equal(failure, NOMAD_EXEC_FAIL_LOCAL);
	assert_int_equal(e.kind, PERR_UNKNOWN);
	assert_non_null(strstr(e.msg, "stdin source"));

	/* a sink that refuses output ends the session after its first call */
	int calls = 0;
	f = fake_start(script_fragments, 0);
	fake_endpoint(&ep, f);
	struct nomad_exec_io io2 = {.on_stdout = failing_sink, .on_stderr = failing_sink, .ud = &calls};
	assert_int_equal(nomad_exec_run(&ep, &o, &io2, 5000, &code, &failure, &e), -1);
	fake_stop(f);
	assert_int_equal(calls, 1);
	assert_int_equal(failure, NOMAD_EXEC_FAIL_LOCAL);
	assert_non_null(strstr(e.msg, "sink"));
}

/* ---- event-loop mode helpers ------------------------------------------------------------------ */

static void ev_stdout(void *ud, const char *data, size_t len)
{
	struct sink *s = ud;
	append(s->out, &s->out_len, data, len);
}

static void ev_stderr(void *ud, const char *data, size_t len)
{
	struct sink *s = ud;
	append(s->err, &s->err_len, data, len);
}

static void ev_exit(void *ud, int code)
{
	struct sink *s = ud;
	assert_false(s->exited || s->errors || s->closed);
	s->exited = 1;
	s->exit_code = code;
	s->exit_at = h_now_ms();
}

static void ev_error(void *ud, const struct perr *e, enum nomad_exec_failure failure)
{
	struct sink *s = ud;
	assert_false(s->exited || s->errors || s->closed);
	s->errors++;
	s->e = *e;
	s->failure = failure;
}

static struct lws_context *ev_ctx;

/* pushes the rest of in while the queue takes it, then closes stdin */
static void ev_pump(struct sink *s)
{
	while (s->in_pos < s->in_len) {
		ssize_t k = nomad_exec_write_stdin(s->x, s->in + s->in_pos, s->in_len - s->in_pos);
		assert_true(k >= 0);
		s->in_pos += (size_t)k;
		if (!k)
			return; /* on_stdin_ready will call again */
	}
	nomad_exec_close_stdin(s->x);
}

static void ev_ready(void *ud)
{
	struct sink *s = ud;
	s->ready_calls++;
	ev_pump(s);
}

static void ev_closed(void *ud)
{
	struct sink *s = ud;
	assert_false(s->closed);
	s->closed = 1;
	s->x = NULL;
	if (ev_ctx)
		lws_cancel_service(ev_ctx); /* let ev_run look at the flags now */
}

static const struct nomad_exec_callbacks ev_cbs = {
    .on_stdout = ev_stdout,
    .on_stderr = ev_stderr,
    .on_exit = ev_exit,
    .on_error = ev_error,
    .on_stdin_ready = ev_ready,
    .on_closed = ev_closed,
};

struct ev_wait {
	lws_sorted_usec_list_t sul;
	int expired;
};

static void ev_wait_expired(lws_sorted_usec_list_t *sul)
{
	lws_container_of(sul, struct ev_wait, sul)->expired = 1;
}

/* services ctx until every sink is closed; 0, or -1 on timeout */
static int ev_run(struct lws_context *ctx, struct sink **sinks, int n, int timeout_ms)
{
	struct ev_wait w = {.expired = 0};
	lws_sul_schedule(ctx, 0, &w.sul, ev_wait_expired, (lws_usec_t)timeout_ms * 1000);
	for (;;) {
		int open = 0;
		for (int i = 0; i < n; i++)
			open += !sinks[i]->closed;
		if (!open || w.expired)
			break;
		lws_service(ctx, 0);
	}
	lws_sul_cancel(&w.sul);
	return w.expired ? -1 : 0;
}

/* A context like poseidon-wsgate's: a listening server with its own protocol and
 * permessage-deflate offered to its clients. */
static int caller_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols caller_protocols[] = {
    {.name = "http", .callback = caller_cb},
    {0},
};

static const struct lws_extension caller_exts[] = {
    {"permessage-deflate", lws_extension_callback_pm_deflate,
     "permessage-deflate; client_no_context_takeover"},
    {NULL, NULL, NULL},
};

static struct lws_context *caller_context(void)
{
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof info);
	info.port = h_free_port();
	info.iface = "127.0.0.1";
	info.protocols = caller_protocols;
	info.extensions = caller_exts;
	struct lws_context *ctx = lws_create_context(&info);
	assert_non_null(ctx);
	ev_ctx = ctx;
	return ctx;
}

static void test_fake_event_loop_backpressure_on_a_server_context(void **state)
{
	(void)state;
	struct fake *f = fake_start(script_echo_stdin, 0);
	struct nomad_endpoint ep;
	fake_endpoint(&ep, f);
	struct lws_context *ctx = caller_context();
	struct sink s;
	sink_init(&s);
	size_t n = 300 * 1024;
	char *in = malloc(n);
	for (size_t i = 0; i < n; i++)
		in[i] = (char)(i * 7 + i / 1000);
	s.in = in;
	s.in_len = n;
	struct nomad_exec_opts o = {.alloc_id = FAKE_ALLOC, .argv = argv_true};
	struct perr e;
	s.x = nomad_exec_start(ctx, &ep, &o, &ev_cbs, &s, &e);
	assert_non_null(s.x);
	/* queued before the connection is up: the queue takes its maximum and no more */
	ssize_t k = nomad_exec_write_stdin(s.x, in, n);
	assert_int_equal(k, NOMAD_EXEC_STDIN_QUEUE_MAX);
	s.in_pos = (size_t)k;
	assert_int_equal(nomad_exec_write_stdin(s.x, in + k, 10), 0);
	struct sink *all[] = {&s};
	assert_int_equal(ev_run(ctx, all, 1, 10000), 0);
	pthread_join(f->th, NULL);
	assert_true(s.exited);
	assert_int_equal(s.exit_code, 0);
	assert_true(s.ready_calls >= 4);
	assert_int_equal(f->stdin_len, n);
	assert_memory_equal(f->stdin_data, in, n);
	assert_true(f->saw_close);
	assert_int_equal(f->max_stdin_raw, NOMAD_EXEC_STDIN_CHUNK);
	/* the caller's permessage-deflate was not offered to Nomad */
	assert_null(strcasestr(f->req, "Sec-WebSocket-Extensions"));
	close(f->lfd);
	free(f);
	free(in);
	sink_free(&s);
	lws_context_destroy(ctx);
}

static void test_fake_event_loop_cancel_and_drop(void **state)
{
	(void)state;
	struct lws_context *ctx = caller_context();
	struct nomad_endpoint ep;
	struct perr e;
	struct nomad_exec_opts o = {.alloc_id = FAKE_ALLOC, .argv = argv_true};

	/* cancel right after start: on_closed only */
	struct fake *f = fake_start(script_silent, 0);
	fake_endpoint(&ep, f);
	struct sink a;
	sink_init(&a);
	a.x = nomad_exec_start(ctx, &ep, &o, &ev_cbs, &a, &e);
	assert_non_null(a.x);
	nomad_exec_cancel(a.x);
	assert_int_equal(nomad_exec_write_stdin(a.x, "x", 1), -1);
	struct sink *all[] = {&a};
	assert_int_equal(ev_run(ctx, all, 1, 5000), 0);
	assert_false(a.exited);
	assert_int_equal(a.errors, 0);
	assert_true(a.closed);
	shutdown(f->lfd, SHUT_RDWR); /* the fake may never have seen a connection */
	fake_stop(f);
	sink_free(&a);

	/* a drop is reported once, through on_error, with its own failure kind */
	f = fake_start(script_drop, 0);
	fake_endpoint(&ep, f);
	sink_init(&a);
	a.x = nomad_exec_start(ctx, &ep, &o, &ev_cbs, &a, &e);
	assert_non_null(a.x);
	assert_int_equal(ev_run(ctx, all, 1, 5000), 0);
	fake_stop(f);
	assert_int_equal(a.errors, 1);
	assert_int_equal(a.failure, NOMAD_EXEC_FAIL_DROPPED);
	assert_string_equal(a.out, "part\n");
	sink_free(&a);

	/* destroying the context ends a live session: on_error (dropped), then on_closed */
	f = fake_start(script_silent, 0);
	fake_endpoint(&ep, f);
	sink_init(&a);
	a.x = nomad_exec_start(ctx, &ep, &o, &ev_cbs, &a, &e);
	assert_non_null(a.x);
	/* live: the fake sent its 101, and the client had 100 ms more to take it (a loaded machine
	 * may need longer than any fixed wait for the upgrade itself) */
	for (long long t0 = h_now_ms(); !f->upgraded && h_now_ms() - t0 < 5000;)
		lws_service(ctx, 0);
	assert_true(f->upgraded);
	struct ev_wait w = {.expired = 0};
	lws_sul_schedule(ctx, 0, &w.sul, ev_wait_expired, 100 * LWS_US_PER_MS);
	while (!w.expired)
		lws_service(ctx, 0);
	assert_false(a.closed);
	ev_ctx = NULL;
	lws_context_destroy(ctx);
	assert_true(a.closed);
	assert_int_equal(a.errors, 1);
	assert_false(a.exited);
	fake_stop(f);
	sink_free(&a);
	ctx = caller_context();

	/* refused: start itself fails and no callback comes */
	ep.port = h_free_port();
	sink_init(&a);
	a.x = nomad_exec_start(ctx, &ep, &o, &ev_cbs, &a, &e);
	if (a.x) {
		/* lws may also report it asynchronously; then it must come as a connect error */
		assert_int_equal(ev_run(ctx, all, 1, 5000), 0);
		assert_int_equal(a.failure, NOMAD_EXEC_FAIL_CONNECT);
		e = a.e;
	} else {
		assert_int_equal(a.closed, 0);
	}
	assert_int_equal(e.kind, PERR_NOMAD_UNREACHABLE);
	sink_free(&a);
	lws_context_destroy(ctx);
}

/* ---- TLS: an lws server with a self-signed certificate that also demands a client one ---- */

struct tls_server {
	struct lws_context *ctx;
	pthread_t th;
	volatile int stop;
	int port;
	char token[128];
	int sessions;
};

static struct tls_server *tls_srv;

static int tls_srv_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	(void)user, (void)in, (void)len;
	static const char out[] = "{\"stdout\":{\"data\":\"dGxzCg==\"}}",
	                  ex[] = "{\"exited\":true,\"result\":{\"exit_code\":4}}";
	unsigned char buf[LWS_PRE + 64];
	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		tls_srv->sessions++;
		lws_hdr_custom_copy(wsi, tls_srv->token, sizeof tls_srv->token, "x-nomad-token:", 14);
		lws_callback_on_writable(wsi);
		lws_set_opaque_user_data(wsi, NULL);
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE: {
		/* first the output, then the exit frame, then hang up as Nomad does */
		int step = (int)(intptr_t)lws_get_opaque_user_data(wsi);
		if (step == 2)
			return -1;
		const char *f = step ? ex : out;
		memcpy(buf + LWS_PRE, f, strlen(f));
		lws_write(wsi, buf + LWS_PRE, strlen(f), LWS_WRITE_TEXT);
		lws_set_opaque_user_data(wsi, (void *)(intptr_t)(step + 1));
		lws_callback_on_writable(wsi);
		return 0;
	}
	default: return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

static const struct lws_protocols tls_srv_protocols[] = {
    {.name = "fake-exec", .callback = tls_srv_cb},
    {0},
};

static void *tls_srv_main(void *arg)
{
	struct tls_server *t = arg;
	while (!t->stop)
		lws_service(t->ctx, 0);
	return NULL;
}

static void tls_files(char *cert, char *key, char *other, size_t cap)
{
	snprintf(cert, cap, "%s/tls-cert.pem", h_tmpdir());
	snprintf(key, cap, "%s/tls-key.pem", h_tmpdir());
	snprintf(other, cap, "%s/tls-other.pem", h_tmpdir());
	char cmd[2048];
	snprintf(cmd, sizeof cmd,
	         "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
	         "-addext subjectAltName=DNS:127.0.0.1,IP:127.0.0.1 -keyout %s -out %s 2>/dev/null && "
	         "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
	         "-addext subjectAltName=DNS:127.0.0.1,IP:127.0.0.1 -keyout %s.key -out %s 2>/dev/null",
	         key, cert, other, other);
	assert_int_equal(system(cmd), 0);
}

static void test_tls_with_client_certificate(void **state)
{
	(void)state;
	char cert[512], key[512], other[512];
	tls_files(cert, key, other, sizeof cert);

	struct tls_server t = {.stop = 0};
	tls_srv = &t;
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof info);
	t.port = h_free_port();
	info.port = t.port;
	info.iface = "127.0.0.1";
	info.protocols = tls_srv_protocols;
	info.options =
	    LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_REQUIRE_VALID_OPENSSL_CLIENT_CERT;
	info.ssl_cert_filepath = cert;
	info.ssl_private_key_filepath = key;
	info.ssl_ca_filepath = cert; /* the client must present a certificate this one signed */
	t.ctx = lws_create_context(&info);
	assert_non_null(t.ctx);
	pthread_create(&t.th, NULL, tls_srv_main, &t);

	struct nomad_endpoint ep;
	memset(&ep, 0, sizeof ep);
	snprintf(ep.host, sizeof ep.host, "127.0.0.1");
	ep.port = t.port;
	ep.tls = 1;
	snprintf(ep.cafile, sizeof ep.cafile, "%s", cert);
	snprintf(ep.certfile, sizeof ep.certfile, "%s", cert);
	snprintf(ep.keyfile, sizeof ep.keyfile, "%s", key);
	snprintf(ep.token, sizeof ep.token, "tls-token");
	struct sink s;
	sink_init(&s);
	assert_int_equal(run_sync(&ep, FAKE_ALLOC, argv_true, 0, &s, 0, 5000), 0);
	assert_int_equal(s.exit_code, 4);
	assert_string_equal(s.out, "tls\n");
	assert_string_equal(t.token, "tls-token");
	sink_free(&s);

	/* the same from an event loop whose context was not created for TLS */
	struct lws_context *cctx = caller_context();
	struct nomad_exec_opts o = {.alloc_id = FAKE_ALLOC, .argv = argv_true};
	sink_init(&s);
	struct perr e;
	s.x = nomad_exec_start(cctx, &ep, &o, &ev_cbs, &s, &e);
	assert_non_null(s.x);
	struct sink *all[] = {&s};
	assert_int_equal(ev_run(cctx, all, 1, 5000), 0);
	if (s.errors)
		print_message("event-loop TLS: %s\n", s.e.msg);
	assert_true(s.exited);
	assert_int_equal(s.exit_code, 4);
	assert_string_equal(s.out, "tls\n");
	sink_free(&s);
	ev_ctx = NULL;
	lws_context_destroy(cctx);

	/* a server certificate that the configured CA did not sign is refused */
	snprintf(ep.cafile, sizeof ep.cafile, "%s", other);
	sink_init(&s);
	assert_int_equal(run_sync(&ep, FAKE_ALLOC, argv_true, 0, &s, 0, 5000), -1);
	assert_int_equal(s.e.kind, PERR_NOMAD_UNREACHABLE);
	assert_int_equal(s.failure, NOMAD_EXEC_FAIL_CONNECT);
	sink_free(&s);

	/* so is a client without a certificate */
	snprintf(ep.cafile, sizeof ep.cafile, "%s", cert);
	ep.certfile[0] = ep.keyfile[0] = '\0';
	sink_init(&s);
	assert_int_equal(run_sync(&ep, FAKE_ALLOC, argv_true, 0, &s, 0, 5000), -1);
	assert_int_equal(s.e.kind, PERR_NOMAD_UNREACHABLE);
	sink_free(&s);

	/* a CA file that does not exist trusts nothing (lws keeps the vhost and fails the handshake) */
	snprintf(ep.cafile, sizeof ep.cafile, "%s/no-such-ca.pem", h_tmpdir());
	sink_init(&s);
	assert_int_equal(run_sync(&ep, FAKE_ALLOC, argv_true, 0, &s, 0, 5000), -1);
	assert_int_equal(s.e.kind, PERR_NOMAD_UNREACHABLE);
	assert_int_equal(s.failure, NOMAD_EXEC_FAIL_CONNECT);
	sink_free(&s);
	snprintf(ep.cafile, sizeof ep.cafile, "%s", cert);

	/* no CA file: the system's store, which $SSL_CERT_FILE stands in for here (as OpenSSL and
	 * the REST client read it); a certificate it does not hold is refused */
	ep.cafile[0] = '\0';
	snprintf(ep.certfile, sizeof ep.certfile, "%s", cert);
	snprintf(ep.keyfile, sizeof ep.keyfile, "%s", key);
	setenv("SSL_CERT_FILE", other, 1);
	sink_init(&s);
	assert_int_equal(run_sync(&ep, FAKE_ALLOC, argv_true, 0, &s, 0, 5000), -1);
	assert_int_equal(s.failure, NOMAD_EXEC_FAIL_CONNECT);
	sink_free(&s);
	setenv("SSL_CERT_FILE", cert, 1);
	sink_init(&s);
	int with_store = run_sync(&ep, FAKE_ALLOC, argv_true, 0, &s, 0, 5000);
	if (with_store < 0)
		print_message("system store: %s\n", s.e.msg);
	assert_int_equal(with_store, 0);
	assert_string_equal(s.out, "tls\n");
	sink_free(&s);
	unsetenv("SSL_CERT_FILE");
	sink_init(&s);
	assert_int_equal(run_sync(&ep, FAKE_ALLOC, argv_true, 0, &s, 0, 5000), -1); /* self-signed: untrusted */
	sink_free(&s);
	snprintf(ep.cafile, sizeof ep.cafile, "%s", cert);

	/* and plain WebSocket to a TLS port */
	ep.tls = 0;
	sink_init(&s);
	assert_int_equal(run_sync(&ep, FAKE_ALLOC, argv_true, 0, &s, 0, 5000), -1);
	assert_int_equal(s.exit_code, -1);
	sink_free(&s);
	assert_int_equal(t.sessions, 3);

	t.stop = 1;
	lws_cancel_service(t.ctx);
	pthread_join(t.th, NULL);
	lws_context_destroy(t.ctx);
}

/* ---- part 2: against nomad-local -------------------------------------------------------------- */

#define NL_JOB   "exec-test-1"
#define NL_TOKEN "exec-test-token"

static struct h_nomad nl;
static struct nomad_endpoint nl_ep;
static char nl_alloc[64];

/* Registers the minimal job of tests/fixtures/nomad under another ID and waits for its allocation. */
static int nl_job_running(const char *job_id, char alloc[64])
{
	char path[1024];
	snprintf(path, sizeof path, "%s/tests/fixtures/nomad/job-register-request-minimal.json", h_src_dir());
	json_object *body = json_object_from_file(path), *job;
	if (!body || !json_object_object_get_ex(body, "Job", &job))
		return -1;
	json_object_object_add(job, "ID", json_object_new_string(job_id));
	json_object_object_add(job, "Name", json_object_new_string(job_id));
	char url[256];
	snprintf(url, sizeof url, "%s/v1/jobs", nl.url);
	struct h_resp r;
	int rc = h_http(&r, "PUT", url, json_object_to_json_string(body), -1, h_nomad_headers(&nl));
	json_object_put(body);
	if (rc < 0 || r.status != 200) {
		fprintf(stderr, "register: %ld %s\n", r.status, r.body ? r.body : "");
		h_resp_free(&r);
		return -1;
	}
	h_resp_free(&r);
	snprintf(url, sizeof url, "%s/v1/job/%s/allocations", nl.url, job_id);
	for (long long end = h_now_ms() + 30000; h_now_ms() < end; h_sleep_ms(50)) {
		if (h_http(&r, "GET", url, NULL, 0, h_nomad_headers(&nl)) < 0)
			continue;
		json_object *list = r.status == 200 ? json_tokener_parse(r.body) : NULL;
		h_resp_free(&r);
		for (size_t i = 0; list && i < json_object_array_length(list); i++) {
			json_object *a = json_object_array_get_idx(list, i), *st, *id;
			if (json_object_object_get_ex(a, "ClientStatus", &st) &&
			    !strcmp(json_object_get_string(st), "running") &&
			    json_object_object_get_ex(a, "ID", &id)) {
				snprintf(alloc, 64, "%s", json_object_get_string(id));
				json_object_put(list);
				return 0;
			}
		}
		json_object_put(list);
	}
	return -1;
}

static int nl_setup(void **state)
{
	(void)state;
	if (h_nomad_start(&nl, NL_TOKEN) < 0)
		return -1;
	memset(&nl_ep, 0, sizeof nl_ep);
	snprintf(nl_ep.host, sizeof nl_ep.host, "127.0.0.1");
	nl_ep.port = nl.port;
	snprintf(nl_ep.token, sizeof nl_ep.token, "%s", NL_TOKEN);
	snprintf(nl_ep.namespace, sizeof nl_ep.namespace, "default");
	return nl_job_running(NL_JOB, nl_alloc);
}

static int nl_teardown(void **state)
{
	(void)state;
	nomad_exec_sync_shutdown();
	h_stop_all();
	return 0;
}

static const char *const argv_out_err_3[] = {"/bin/bash", "-c", "echo hi; echo err >&2; exit 3", NULL};

static void test_nomad_output_and_exit_code(void **state)
{
	(void)state;
	struct sink s;
	sink_init(&s);
	assert_int_equal(run_sync(&nl_ep, nl_alloc, argv_out_err_3, 0, &s, 0, 10000), 0);
	assert_int_equal(s.exit_code, 3);
	assert_string_equal(s.out, "hi\n");
	assert_string_equal(s.err, "err\n");
	sink_free(&s);

	/* exit 0 is an exit frame without exit_code */
	sink_init(&s);
	assert_int_equal(run_sync(&nl_ep, nl_alloc, argv_true, 0, &s, 0, 10000), 0);
	assert_int_equal(s.exit_code, 0);
	assert_int_equal(s.out_len + s.err_len, 0);
	sink_free(&s);
}

static void test_nomad_tty_merges_stderr(void **state)
{
	(void)state;
	struct sink s;
	sink_init(&s);
	assert_int_equal(run_sync(&nl_ep, nl_alloc, argv_out_err_3, 1, &s, 0, 10000), 0);
	assert_int_equal(s.exit_code, 3);
	assert_string_equal(s.out, "hi\r\nerr\r\n");
	assert_int_equal(s.err_len, 0);
	sink_free(&s);

	/* the tty_size frame reaches the pty */
	const char *argv[] = {"/bin/bash", "-c", "stty size", NULL};
	struct nomad_exec_opts o = {
	    .alloc_id = nl_alloc, .argv = argv, .tty = 1, .tty_height = 33, .tty_width = 101};
	struct nomad_exec_io io = {.on_stdout = io_out, .on_stderr = io_err, .ud = &s};
	sink_init(&s);
	int code;
	assert_int_equal(nomad_exec_run(&nl_ep, &o, &io, 10000, &code, NULL, &s.e), 0);
	assert_int_equal(code, 0);
	assert_string_equal(s.out, "33 101\r\n");
	sink_free(&s);
}

static char *pattern(size_t n)
{
	char *p = malloc(n);
	for (size_t i = 0; i < n; i++)
		p[i] = (char)((i * 131 + i / 977) & 0xff);
	return p;
}

static void test_nomad_stdin_through_cat(void **state)
{
	(void)state;
	const char *argv[] = {"cat", NULL};
	size_t n = 100 * 1024;
	char *in = pattern(n);
	struct sink s;
	sink_init(&s);
	s.in = in;
	s.in_len = n;
	s.in_step = 1000;
	assert_int_equal(run_sync(&nl_ep, nl_alloc, argv, 0, &s, 1, 20000), 0);
	assert_int_equal(s.exit_code, 0);
	assert_int_equal(s.out_len, n);
	assert_memory_equal(s.out, in, n);
	assert_int_equal(s.err_len, 0);
	sink_free(&s);

	/* empty stdin: cat sees EOF at once */
	sink_init(&s);
	s.in = in;
	s.in_len = 0;
	assert_int_equal(run_sync(&nl_ep, nl_alloc, argv, 0, &s, 1, 10000), 0);
	assert_int_equal(s.exit_code, 0);
	assert_int_equal(s.out_len, 0);
	sink_free(&s);
	free(in);
}

static void test_nomad_unknown_allocation_and_refused(void **state)
{
	(void)state;
	struct sink s;
	sink_init(&s);
	const char *bogus = "00000000-0000-4000-8000-000000000000";
	assert_int_equal(run_sync(&nl_ep, bogus, argv_true, 0, &s, 0, 10000), -1);
	assert_int_equal(s.e.kind, PERR_NOMAD_INTERNAL);
	assert_int_equal(s.failure, NOMAD_EXEC_FAIL_CLOSE_FRAME);
	assert_non_null(strstr(s.e.msg, "Unknown allocation"));
	assert_non_null(strstr(s.e.msg, bogus));
	sink_free(&s);

	struct nomad_endpoint ep = nl_ep;
	ep.port = h_free_port();
	sink_init(&s);
	long long t0 = h_now_ms();
	assert_int_equal(run_sync(&ep, nl_alloc, argv_true, 0, &s, 0, 10000), -1);
	assert_true(h_now_ms() - t0 < 2000);
	assert_int_equal(s.e.kind, PERR_NOMAD_UNREACHABLE);
	assert_int_equal(s.failure, NOMAD_EXEC_FAIL_CONNECT);
	sink_free(&s);

	/* a wrong token is refused by the agent and never runs anything */
	ep = nl_ep;
	snprintf(ep.token, sizeof ep.token, "wrong");
	sink_init(&s);
	assert_int_equal(run_sync(&ep, nl_alloc, argv_out_err_3, 0, &s, 0, 10000), -1);
	assert_int_equal(s.out_len, 0);
	assert_true(s.e.kind == PERR_NOMAD_INTERNAL || s.e.kind == PERR_NOMAD_OVERLOAD);
	print_message("wrong token: %s\n", s.e.msg);
	sink_free(&s);
}

static void test_nomad_long_command(void **state)
{
	(void)state;
	/* the longest command that still fits the request line runs end to end */
	static char cmd[NOMAD_EXEC_PATH_MAX];
	char path[NOMAD_EXEC_PATH_MAX];
	const char *argv[] = {"/bin/bash", "-c", cmd, NULL};
	struct nomad_exec_opts o = {.alloc_id = nl_alloc, .argv = argv};
	snprintf(cmd, sizeof cmd, "echo ");
	size_t len = strlen(cmd);
	while (nomad_exec_request_path(path, sizeof path, nl_ep.namespace, &o, NULL) > 0)
		cmd[len++] = 'y', cmd[len] = '\0';
	cmd[--len] = '\0';
	assert_true(len > 1800);
	struct sink s;
	sink_init(&s);
	assert_int_equal(run_sync(&nl_ep, nl_alloc, argv, 0, &s, 0, 10000), 0);
	assert_int_equal(s.out_len, len - 5 + 1);
	assert_int_equal(s.out[0], 'y');
	sink_free(&s);

	/* one byte more is refused before anything is sent */
	cmd[len++] = 'y';
	sink_init(&s);
	assert_int_equal(run_sync(&nl_ep, nl_alloc, argv, 0, &s, 0, 10000), -1);
	assert_int_equal(s.e.kind, PERR_BAD_REQUEST);
	sink_free(&s);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_nomad_sync_200_in_a_row(void **state)
{
	(void)state;
	enum { RUNS = 200 };
	static double t[RUNS], ref[RUNS];
	/* the first session of a process also creates the context */
	nomad_exec_sync_shutdown();
	struct sink s;
	sink_init(&s);
	double t0 = now_s();
	assert_int_equal(run_sync(&nl_ep, nl_alloc, argv_true, 0, &s, 0, 10000), 0);
	double first = (now_s() - t0) * 1000;
	sink_free(&s);
	size_t heap_before = 0;
	struct rusage ru0, ru1;
	getrusage(RUSAGE_SELF, &ru0);
	for (int i = 0; i < RUNS; i++) {
		if (i == 10)
			heap_before = mallinfo2().uordblks;
		sink_init(&s);
		t0 = now_s();
		int rc = run_sync(&nl_ep, nl_alloc, argv_true, 0, &s, 0, 10000);
		t[i] = (now_s() - t0) * 1000;
		if (rc)
			fail_msg("run %d: %s", i, s.e.msg);
		assert_int_equal(s.exit_code, 0);
		sink_free(&s);
	}
	getrusage(RUSAGE_SELF, &ru1);
	double cpu_us =
	    ((double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) *
	         1e6 +
	     (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec -
	              ru0.ru_stime.tv_usec)) /
	    RUNS;
	print_message("client CPU time per session (user+sys of this process): %.0f us\n", cpu_us);
	/* nothing accumulates while the context is reused (under ASan mallinfo2 says 0: only the
	 * plain build checks this) */
	size_t heap_after = mallinfo2().uordblks;
	print_message("heap in use after run 10: %zu bytes, after run %d: %zu bytes\n", heap_before, RUNS,
	              heap_after);
	assert_true(heap_after < heap_before + 16 * 1024);
	/* the agent's own cost, seen through the harness's minimal blocking client */
	for (int i = 0; i < RUNS / 4; i++) {
		struct h_exec r;
		t0 = now_s();
		assert_int_equal(h_nomad_exec(&nl, nl_alloc, "[\"true\"]", 0, NULL, 0, &r), 0);
		ref[i] = (now_s() - t0) * 1000;
		assert_true(r.exited);
		h_exec_free(&r);
	}
	qsort(t, RUNS, sizeof *t, cmp_double);
	qsort(ref, RUNS / 4, sizeof *ref, cmp_double);
	print_message("first session of the process (context created): %.3f ms\n", first);
	print_message("exec `true` round trip, nomad_exec_run x%d: p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
	              RUNS, t[RUNS / 2], t[RUNS * 99 / 100], t[RUNS - 1]);
	print_message("same through the harness's blocking client x%d: p50 %.3f ms, p99 %.3f ms\n", RUNS / 4,
	              ref[RUNS / 8], ref[RUNS / 4 * 99 / 100]);
}

static void test_nomad_cancel_and_timeout(void **state)
{
	(void)state;
	struct lws_context *ctx = caller_context();
	const char *argv[] = {"/bin/bash", "-c", "echo started; sleep 30; echo never", NULL};
	struct nomad_exec_opts o = {.alloc_id = nl_alloc, .argv = argv};
	struct sink s;
	sink_init(&s);
	struct perr e;
	s.x = nomad_exec_start(ctx, &nl_ep, &o, &ev_cbs, &s, &e);
	assert_non_null(s.x);
	struct ev_wait w = {.expired = 0};
	lws_sul_schedule(ctx, 0, &w.sul, ev_wait_expired, 10 * LWS_US_PER_SEC);
	while (!s.out_len && !s.closed && !w.expired)
		lws_service(ctx, 0);
	lws_sul_cancel(&w.sul);
	assert_string_equal(s.out, "started\n");
	long long t0 = h_now_ms();
	nomad_exec_cancel(s.x);
	struct sink *all[] = {&s};
	assert_int_equal(ev_run(ctx, all, 1, 5000), 0);
	assert_true(h_now_ms() - t0 < 1000);
	assert_false(s.exited);
	assert_int_equal(s.errors, 0);
	assert_string_equal(s.out, "started\n");
	sink_free(&s);
	lws_context_destroy(ctx);

	/* the synchronous form gives up at its timeout */
	sink_init(&s);
	t0 = h_now_ms();
	assert_int_equal(run_sync(&nl_ep, nl_alloc, argv, 0, &s, 0, 500), -1);
	assert_true(h_now_ms() - t0 < 1500);
	assert_int_equal(s.failure, NOMAD_EXEC_FAIL_LOCAL);
	assert_string_equal(s.out, "started\n");
	sink_free(&s);
}

static void test_nomad_event_loop_two_sessions(void **state)
{
	(void)state;
	struct lws_context *ctx = caller_context();
	const char *argv_a[] = {"/bin/bash", "-c", "sleep 0.5; cat", NULL};
	const char *argv_b[] = {"/bin/bash", "-c", "sleep 0.5; echo b; echo b2 >&2; exit 5", NULL};
	struct nomad_exec_opts oa = {.alloc_id = nl_alloc, .argv = argv_a};
	struct nomad_exec_opts ob = {.alloc_id = nl_alloc, .argv = argv_b};
	size_t n = 100 * 1024;
	char *in = pattern(n);
	struct sink a, b;
	sink_init(&a);
	sink_init(&b);
	a.in = in;
	a.in_len = n;
	struct perr e;
	long long t0 = h_now_ms();
	a.x = nomad_exec_start(ctx, &nl_ep, &oa, &ev_cbs, &a, &e);
	assert_non_null(a.x);
	b.x = nomad_exec_start(ctx, &nl_ep, &ob, &ev_cbs, &b, &e);
	assert_non_null(b.x);
	ev_pump(&a);
	struct sink *all[] = {&a, &b};
	assert_int_equal(ev_run(ctx, all, 2, 20000), 0);
	long long took = h_now_ms() - t0;
	assert_true(a.exited && b.exited);
	assert_int_equal(a.exit_code, 0);
	assert_int_equal(a.out_len, n);
	assert_memory_equal(a.out, in, n);
	assert_true(a.ready_calls >= 1); /* 100 KiB does not fit the 64 KiB queue at once */
	assert_int_equal(b.exit_code, 5);
	assert_string_equal(b.out, "b\n");
	assert_string_equal(b.err, "b2\n");
	/* both slept at the same time */
	print_message("two concurrent sessions with 0.5 s sleeps each: %lld ms\n", took);
	assert_true(took < 950);
	free(in);
	sink_free(&a);
	sink_free(&b);
	lws_context_destroy(ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fake_request_headers),
	    cmocka_unit_test(test_fake_fragmented_messages_are_reassembled),
	    cmocka_unit_test(test_fake_stdin_is_framed_and_closed),
	    cmocka_unit_test(test_fake_drop_before_exit_is_a_failure),
	    cmocka_unit_test(test_fake_close_frames),
	    cmocka_unit_test(test_fake_http_answers),
	    cmocka_unit_test(test_fake_garbage_and_timeout),
	    cmocka_unit_test(test_fake_heartbeats),
	    cmocka_unit_test(test_fake_source_and_sink_failures),
	    cmocka_unit_test(test_fake_event_loop_backpressure_on_a_server_context),
	    cmocka_unit_test(test_fake_event_loop_cancel_and_drop),
	    cmocka_unit_test(test_tls_with_client_certificate),
	};
	const struct CMUnitTest nomad_tests[] = {
	    cmocka_unit_test(test_nomad_output_and_exit_code),
	    cmocka_unit_test(test_nomad_tty_merges_stderr),
	    cmocka_unit_test(test_nomad_stdin_through_cat),
	    cmocka_unit_test(test_nomad_unknown_allocation_and_refused),
	    cmocka_unit_test(test_nomad_long_command),
	    cmocka_unit_test(test_nomad_sync_200_in_a_row),
	    cmocka_unit_test(test_nomad_cancel_and_timeout),
	    cmocka_unit_test(test_nomad_event_loop_two_sessions),
	};
	int rc = cmocka_run_group_tests_name("scripted server", tests, NULL, NULL);
	rc += cmocka_run_group_tests_name("nomad-local", nomad_tests, nl_setup, nl_teardown);
	nomad_exec_sync_shutdown();
	return rc;
}
