/* nomad_exec against real servers on 127.0.0.1.
 *
 * Part 1, a scripted WebSocket server in a thread of this process ("fake"): it checks the bytes
 * the client puts on the wire (request line, headers, masked client frames) and sends what
 * nomad-local never sends (fragmented messages, a drop before the exit frame, close 1000, 429,
 * garbage), so every error path is exercised.
 * Part 2, nomad-local started by the harness: a job from nomad-samples, then real commands in
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
#include <libwebsockets.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "harness.h"
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
	struct nomad_exec_io io = {.read_stdin = with_stdin ? io_in : NULL, .on_stdout = io_out, .on_stderr = io_err,
				   .ud = s};
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
	int status;            /* non-101 answer instead of the upgrade, 0: upgrade */
	char req[8192];        /* the handshake request as received */
	/* what the client sent, for the assertions of the main thread */
	char stdin_data[BUF_MAX];
	size_t stdin_len;
	int frames, stdin_frames, max_stdin_raw, saw_close, first_is_tty, saw_other;
	char first_frame[256];
	int done;
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
		int k = snprintf(resp, sizeof resp,
				 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
				 "Sec-WebSocket-Accept: %s\r\n\r\n",
				 acc);
		write_all(fd, resp, (size_t)k);
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
	const char *line = "GET /v1/client/allocation/" FAKE_ALLOC "/exec?command=%5B%22/bin/bash%22,%22-c%22,"
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
	struct nomad_exec_opts o = {.alloc_id = FAKE_ALLOC, .argv = argv_true, .tty = 1, .tty_height = 24,
				    .tty_width = 80};
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
	{"permessage-deflate", lws_extension_callback_pm_deflate, "permessage-deflate; client_no_context_takeover"},
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
		cmocka_unit_test(test_fake_event_loop_backpressure_on_a_server_context),
		cmocka_unit_test(test_fake_event_loop_cancel_and_drop),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	nomad_exec_sync_shutdown();
	return rc;
}
