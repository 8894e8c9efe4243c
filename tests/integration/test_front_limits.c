/* What a hostile client can make the web server store, for each of the three fronts (lighttpd as
 * `make run` starts it, nginx and Apache with the repository's sites), on one Redis, one nomad-local
 * and one poseidon-refill:
 *
 *  - a request body over the limit: an unauthenticated PATCH announcing 2 GB and sending as fast as
 *    the front takes it, with Content-Length and chunked. The answer is a 413 with the API's JSON
 *    message before the front has stored more than the limit (server.maxbodysize, 1 MiB here);
 *    a body of exactly the limit still reaches the workers, one byte more does not. Apache
 *    cannot refuse a chunked body early: it stores none of it and answers when it ends.
 *  - a download nobody reads: a 20 GiB sparse file in a runner, fetched by a client with a tiny
 *    receive buffer that stops reading. The front stores next to nothing meanwhile (the worker and
 *    the runner wait), cuts the connection after its write idle limit (2 s here,
 *    POSEIDON_FRONT_WRITE_IDLE) and the worker is free again at once.
 *
 * "Stored" is measured, not inferred: the bytes of the regular files (logs aside) in the front's run
 * directory, where the harness puts its temporary directories (lighttpd's server.upload-dirs,
 * nginx's client_body_temp_path and fastcgi_temp_path), and of those that any process of the
 * front's process group holds open wherever they are, deleted or not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define MAXBODY   1048576 /* server.maxbodysize of these stacks */
#define IDLE      2       /* the fronts' write idle limit here, seconds */
#define TOKEN     "Tok3n"
#define ENV       6
#define ANNOUNCED 2000000000LL
/* what a front may hold of a body it refuses: the limit and a little (lighttpd decides on the
 * chunked stream after each read) */
#define BODY_SPOOL_MAX (MAXBODY + 256 * 1024)
/* what a front may hold of a download nobody reads: far less than the 50-60 MB lighttpd spooled
 * per second with server.stream-response-body = 1 */
#define DOWNLOAD_SPOOL_MAX (8LL << 20)
/* 20 GiB: a worker that went on reading it would be busy for minutes */
#define BIG "21474836480"

enum { LIGHTTPD, NGINX, APACHE, NFRONTS };
static struct h_stack fr[NFRONTS];
static const enum h_front_server servers[NFRONTS] = {H_FRONT_LIGHTTPD, H_FRONT_NGINX, H_FRONT_APACHE};

/* ---- what a front holds on disk ------------------------------------------------------------ */

/* Files counted once each, by device and inode. */
static struct {
	dev_t dev;
	ino_t ino;
} seen[1024];
static int nseen;
static long long seen_bytes;

static void count_file(const char *path, const struct stat *st)
{
	if (!S_ISREG(st->st_mode) || strstr(path, ".log"))
		return;
	for (int i = 0; i < nseen; i++)
		if (seen[i].dev == st->st_dev && seen[i].ino == st->st_ino)
			return;
	if (nseen < (int)(sizeof seen / sizeof seen[0]))
		seen[nseen].dev = st->st_dev, seen[nseen].ino = st->st_ino, nseen++;
	seen_bytes += st->st_size;
}

static int count_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)ftw;
	if (flag == FTW_F)
		count_file(path, st);
	return 0;
}

/* Bytes the front holds on disk: the regular files under its run directory (its temporary
 * directories are there: lighttpd's server.upload-dirs, nginx's *_temp_path), and those that
 * processes of its process group hold open wherever they are, deleted or not; logs aside, each
 * file once. */
static long long spooled(const struct h_stack *s)
{
	nseen = 0;
	seen_bytes = 0;
	nftw(s->rundir, count_entry, 16, FTW_PHYS);
	DIR *proc = opendir("/proc");
	if (!proc)
		return -1;
	for (struct dirent *p; (p = readdir(proc));) {
		if (p->d_name[0] < '1' || p->d_name[0] > '9')
			continue;
		char path[300], stat_line[1024];
		snprintf(path, sizeof path, "/proc/%s/stat", p->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		size_t n = fread(stat_line, 1, sizeof stat_line - 1, f);
		fclose(f);
		stat_line[n] = '\0';
		const char *after = strrchr(stat_line, ')');
		char state;
		int ppid, pgrp;
		if (!after || sscanf(after + 1, " %c %d %d", &state, &ppid, &pgrp) != 3 ||
		    pgrp != s->lighttpd)
			continue;
		snprintf(path, sizeof path, "/proc/%s/fd", p->d_name);
		DIR *fds = opendir(path);
		if (!fds)
			continue;
		for (struct dirent *d; (d = readdir(fds));) {
			char fd_path[600], target[600];
			struct stat st;
			if (d->d_name[0] == '.')
				continue;
			snprintf(fd_path, sizeof fd_path, "%s/%s", path, d->d_name);
			ssize_t tl = readlink(fd_path, target, sizeof target - 1);
			if (tl < 0 || stat(fd_path, &st) < 0)
				continue;
			target[tl] = '\0';
			count_file(target, &st);
		}
		closedir(fds);
	}
	closedir(proc);
	return seen_bytes;
}

/* ---- raw HTTP ------------------------------------------------------------------------------ */

static int connect_to(int port, int rcvbuf)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	if (rcvbuf > 0)
		assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf), 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	return fd;
}

/* An answer read off a raw socket. */
struct answer {
	char buf[16384];
	size_t len;
	long status;
	const char *body; /* into buf, once the head is complete */
	long long content_length;
};

/* Takes what arrived; 1 once the head and its Content-Length body are complete. */
static int answer_complete(struct answer *a)
{
	a->buf[a->len] = '\0';
	char *end = strstr(a->buf, "\r\n\r\n");
	if (!end)
		return 0;
	if (!a->body) {
		a->body = end + 4;
		sscanf(a->buf, "HTTP/1.%*d %ld", &a->status);
		const char *cl = strcasestr(a->buf, "\r\nContent-Length:");
		a->content_length = cl && cl < end ? atoll(cl + 17) : -1;
	}
	if (a->status == 204 || a->status == 304)
		return 1;
	if (a->content_length >= 0)
		return (long long)(a->buf + a->len - a->body) >= a->content_length;
	/* chunked (Apache passes the workers' answers on so): complete with the last chunk; the body
	 * starts after the first chunk's size line */
	const char *te = strcasestr(a->buf, "\r\nTransfer-Encoding: chunked");
	if (!te || te > end)
		return 0;
	if (a->body == end + 4 && strstr(a->body, "\r\n"))
		a->body = strstr(a->body, "\r\n") + 2;
	return strstr(end, "\r\n0\r\n\r\n") != NULL;
}

/* The value of a header of a complete head, or "". */
static const char *answer_header(const struct answer *a, const char *name, char *out, size_t cap)
{
	char pat[128];
	snprintf(pat, sizeof pat, "\r\n%s:", name);
	const char *h = strcasestr(a->buf, pat);
	out[0] = '\0';
	if (h && (!a->body || h < a->body)) {
		h += strlen(pat);
		h += strspn(h, " ");
		snprintf(out, cap, "%.*s", (int)strcspn(h, "\r\n"), h);
	}
	return out;
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int setup(void **state)
{
	(void)state;
	static const char *env[] = {"POSEIDON_SERVER_MAXBODYSIZE=1048576", "POSEIDON_FRONT_WRITE_IDLE=2",
	                            NULL};
	static const char *refill_env[] = {"POSEIDON_REFILL_TICKMS=100", NULL};
	if (h_redis_start(&fr[0].redis) < 0 || h_stack_start_nomad(&fr[0]) < 0 ||
	    h_stack_start_refill(&fr[0], refill_env) < 0)
		return -1;
	for (int i = 0; i < NFRONTS; i++) {
		/* one worker each: a worker that stays busy after its client is gone shows at once */
		struct h_front_opts o = {.workers = 1, .token = TOKEN, .env = env, .server = servers[i]};
		if (i > 0) {
			fr[i].redis = fr[0].redis;
			fr[i].nomad = fr[0].nomad;
		}
		if (h_stack_start(&fr[i], &o) < 0 || fr[i].server != servers[i])
			return -1;
	}
	char url[256];
	struct h_resp r;
	const char *const token[] = {"Poseidon-Token: " TOKEN, NULL};
	snprintf(url, sizeof url, "%s/execution-environments/%d", fr[0].base, ENV);
	if (h_http(&r, "PUT", url,
	           "{\"prewarmingPoolSize\":3,\"cpuLimit\":100,\"memoryLimit\":256,\"image\":\"img\","
	           "\"networkAccess\":false,\"exposedPorts\":null}",
	           -1, token) < 0 ||
	    r.status != 201)
		return -1;
	h_resp_free(&r);
	return h_wait_pool(&fr[0].redis, ENV, 3, 30000);
}

static int teardown(void **state)
{
	(void)state;
	int reports = 0;
	for (int i = NFRONTS - 1; i >= 0; i--) {
		if (i > 0) { /* Redis and nomad-local are the first stack's */
			memset(&fr[i].redis, 0, sizeof fr[i].redis);
			memset(&fr[i].nomad, 0, sizeof fr[i].nomad);
		}
		h_stack_stop(&fr[i]);
		reports += h_sanitizer_reports(fr[i].rundir);
	}
	return reports == 0 ? 0 : -1;
}

/* ---- request bodies -------------------------------------------------------------------------- */

struct flood {
	struct answer a;
	long long sent, spool_max;
	long long ms; /* until the answer was complete */
};

/* A PATCH announcing ANNOUNCED bytes (Content-Length, or chunked when chunked is set), with the
 * header line extra (NULL: none; e.g. the token), whose body goes out as fast as the front takes
 * it, until the answer is complete, the front hung up, it stored more than BODY_SPOOL_MAX, or 20 s
 * passed. With end_after_ms, a chunked body ends (its last chunk) after that long. */
static void flood(const struct h_stack *s, int chunked, const char *extra, long long end_after_ms,
                  struct flood *f)
{
	static char chunk[65536 + 16];
	char head[512];
	memset(f, 0, sizeof *f);
	memset(chunk, ' ', sizeof chunk);
	size_t clen = sizeof chunk - 16, off = 0;
	if (chunked) { /* one chunk of 64 KiB: "10000\r\n" data "\r\n" */
		memcpy(chunk, "10000\r\n", 7);
		memcpy(chunk + 7 + 65536, "\r\n", 2);
		clen = 7 + 65536 + 2;
	}
	snprintf(head, sizeof head,
	         "PATCH /api/v1/runners/nonexistent/files HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
	         "Content-Type: application/json\r\n%s%s%s\r\n",
	         s->port, chunked ? "Transfer-Encoding: chunked\r\n" : "Content-Length: 2000000000\r\n",
	         extra ? extra : "", extra ? "\r\n" : "");
	int fd = connect_to(s->port, 0);
	assert_int_equal(write(fd, head, strlen(head)), (ssize_t)strlen(head));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	int sending = 1;
	long long t0 = h_now_ms(), next_sample = 0;
	for (;;) {
		long long now = h_now_ms();
		if (now >= next_sample) {
			long long sp = spooled(s);
			if (sp > f->spool_max)
				f->spool_max = sp;
			next_sample = now + 20;
		}
		if (f->spool_max > BODY_SPOOL_MAX || now - t0 > 20000)
			break;
		struct pollfd p = {.fd = fd, .events = POLLIN | (sending ? POLLOUT : 0)};
		if (poll(&p, 1, 20) <= 0)
			continue;
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(fd, f->a.buf + f->a.len, sizeof f->a.buf - 1 - f->a.len);
			if (n > 0)
				f->a.len += (size_t)n;
			if (answer_complete(&f->a) || n == 0 || (n < 0 && errno != EAGAIN))
				break;
		}
		if (sending && end_after_ms && now - t0 > end_after_ms && off == 0) {
			/* the last chunk (blocking: a few bytes) */
			fcntl(fd, F_SETFL, 0);
			assert_int_equal(send(fd, "0\r\n\r\n", 5, MSG_NOSIGNAL), 5);
			fcntl(fd, F_SETFL, O_NONBLOCK);
			sending = 0;
		}
		if (sending && (p.revents & POLLOUT)) {
			ssize_t n = send(fd, chunk + off, clen - off, MSG_NOSIGNAL);
			if (n > 0) {
				f->sent += n;
				off = (off + (size_t)n) % clen;
			} else if (n < 0 && errno != EAGAIN) {
				/* the front closed its side: what it answered is still to read */
				sending = 0;
			}
			if (!chunked && f->sent >= ANNOUNCED)
				sending = 0;
		}
	}
	f->ms = h_now_ms() - t0;
	close(fd);
	answer_complete(&f->a);
}

/* The API's JSON error: application/json, {"message":"..."}. */
static void assert_json_413(const struct flood *f, const char *front, const char *how)
{
	char type[128];
	const char *body = f->a.body ? f->a.body : "(no answer)";
	printf("    %s, %s: %ld after %lld ms, %lld bytes sent, at most %lld stored: %.*s\n", front, how,
	       f->a.status, f->ms, f->sent, f->spool_max, (int)strcspn(body, "\r\n"), body);
	if (f->spool_max > BODY_SPOOL_MAX)
		fail_msg("%s stored %lld bytes of a body over the limit of %d (%s)", front, f->spool_max,
		         MAXBODY, how);
	if (f->a.status != 413)
		fail_msg("%s answered %ld to a body over the limit (%s), not 413", front, f->a.status, how);
	assert_string_equal(answer_header(&f->a, "Content-Type", type, sizeof type), "application/json");
	assert_int_equal(strncmp(f->a.body, "{\"message\":\"", 12), 0);
}

static void body_over_the_limit(int front)
{
	struct flood f;
	const char *name = h_front_name(servers[front]);
	flood(&fr[front], 0, NULL, 0, &f);
	assert_json_413(&f, name, "Content-Length 2 GB");
	if (front != APACHE) {
		flood(&fr[front], 1, NULL, 0, &f);
		assert_json_413(&f, name, "chunked");
	} else {
		/* Apache cannot count a proxied chunked body (deploy/apache/poseidon.conf): it passes it
		 * on as it comes and stores none of it, and the answer comes once the body has ended:
		 * the worker's 401 without the token (it read nothing), its own JSON 413 with it (it
		 * kept the limit's worth and dropped the rest) */
		flood(&fr[front], 1, NULL, 1500, &f);
		printf("    apache, chunked, no token: %ld after %lld ms, %lld bytes sent, at most %lld "
		       "stored\n",
		       f.a.status, f.ms, f.sent, f.spool_max);
		assert_true(f.spool_max <= BODY_SPOOL_MAX);
		assert_int_equal(f.a.status, 401);
		flood(&fr[front], 1, "Poseidon-Token: " TOKEN, 1500, &f);
		assert_json_413(&f, name, "chunked, with the token");
		assert_non_null(strstr(f.a.body, "exceeds the limit of 1048576 bytes"));
	}
	/* the limit is the workers' own, to the byte: exactly the limit reaches them (a body they
	 * parse, {} and spaces: environment 0 does not exist), one byte more is refused */
	char *big = malloc(MAXBODY + 2), url[256];
	assert_non_null(big);
	memset(big, ' ', MAXBODY + 1);
	big[0] = '{';
	big[MAXBODY - 1] = '}';
	big[MAXBODY + 1] = '\0';
	const char *const token[] = {"Poseidon-Token: " TOKEN, NULL};
	struct h_resp r;
	snprintf(url, sizeof url, "%s/runners", fr[front].base);
	assert_int_equal(h_http(&r, "POST", url, big, MAXBODY, token), 0);
	if (r.status != 404)
		fail_msg("%s: a body of exactly the limit: %ld %s", name, r.status, r.body);
	h_resp_free(&r);
	assert_int_equal(h_http(&r, "POST", url, big, MAXBODY + 1, token), 0);
	assert_int_equal(r.status, 413);
	assert_int_equal(strncmp(r.body, "{\"message\":\"", 12), 0);
	h_resp_free(&r);
	free(big);
}

static void test_lighttpd_refuses_a_body_over_the_limit_before_storing_it(void **state)
{
	(void)state;
	body_over_the_limit(LIGHTTPD);
}

static void test_nginx_refuses_a_body_over_the_limit_before_storing_it(void **state)
{
	(void)state;
	body_over_the_limit(NGINX);
}

static void test_apache_refuses_a_body_over_the_limit_before_storing_it(void **state)
{
	(void)state;
	body_over_the_limit(APACHE);
}

/* ---- downloads nobody reads ------------------------------------------------------------------ */

static void stalled_download(int front)
{
	struct h_stack *s = &fr[front];
	const char *name = h_front_name(servers[front]);
	const char *const token[] = {"Poseidon-Token: " TOKEN, NULL};
	char url[256], body[128], id[128], alloc[128];
	struct h_resp r;

	/* a runner with a 20 GiB sparse file, made by a command in its allocation */
	snprintf(url, sizeof url, "%s/runners", s->base);
	snprintf(body, sizeof body, "{\"executionEnvironmentId\":%d,\"inactivityTimeout\":120}", ENV);
	for (int i = 0; i < 100; i++) {
		assert_int_equal(h_http(&r, "POST", url, body, -1, token), 0);
		if (r.status == 200)
			break;
		h_resp_free(&r);
		h_sleep_ms(100);
	}
	assert_int_equal(r.status, 200);
	assert_int_equal(sscanf(r.body, "{\"runnerId\":\"%127[^\"]\"", id), 1);
	h_resp_free(&r);
	snprintf(alloc, sizeof alloc, "%s", h_redis_cli(&fr[0].redis, "HGET poseidon:runner:%s allocId", id));
	struct h_exec x;
	assert_int_equal(h_nomad_exec(&fr[0].nomad, alloc,
	                              "[\"truncate\",\"-s\",\"" BIG "\",\"/workspace/big\"]", 0, NULL, 0, &x),
	                 0);
	assert_int_equal(x.exit_code, 0);
	h_exec_free(&x);

	/* a client with a tiny receive window asks for it, reads the head and stops reading */
	char request[512];
	snprintf(
	    request, sizeof request,
	    "GET /api/v1/runners/%s/files/raw?path=%%2Fworkspace%%2Fbig HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
	    "Poseidon-Token: " TOKEN "\r\n\r\n",
	    id, s->port);
	int fd = connect_to(s->port, 4096);
	assert_int_equal(write(fd, request, strlen(request)), (ssize_t)strlen(request));
	struct answer a = {0};
	long long t0 = h_now_ms();
	while (!strstr(a.buf, "\r\n\r\n") && h_now_ms() - t0 < 20000) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 1000) == 1) {
			ssize_t n = read(fd, a.buf + a.len, 512);
			assert_true(n > 0);
			a.len += (size_t)n;
			a.buf[a.len] = '\0';
		}
	}
	answer_complete(&a);
	assert_int_equal(a.status, 200);
	/* (mod_proxy_fcgi drops a FastCGI response's Content-Length and sends it chunked) */
	char cl[64];
	if (front == APACHE ? strcmp(answer_header(&a, "Transfer-Encoding", cl, sizeof cl), "chunked") != 0
	                    : strcmp(answer_header(&a, "Content-Length", cl, sizeof cl), BIG) != 0)
		fail_msg("%s: not the file's length: %s", name, a.buf);

	/* what the front holds meanwhile, until the idle limit and a little more passed */
	long long max = 0;
	for (long long end = h_now_ms() + (IDLE + 3) * 1000; h_now_ms() < end; h_sleep_ms(100)) {
		long long sp = spooled(s);
		if (sp > max)
			max = sp;
		if (max > DOWNLOAD_SPOOL_MAX)
			break;
	}
	/* then the client reads again: what was on its way, and the end of the connection */
	long long got = 0, stalled_ms = h_now_ms() - t0;
	int ended = 0;
	fcntl(fd, F_SETFL, O_NONBLOCK);
	for (long long end = h_now_ms() + 10000; !ended && got < (256LL << 20) && h_now_ms() < end;) {
		static char buf[1 << 16];
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 200) <= 0)
			continue;
		ssize_t n = read(fd, buf, sizeof buf);
		if (n > 0)
			got += n;
		else if (n == 0 || errno != EAGAIN)
			ended = 1;
	}
	close(fd);
	printf("    %s: stalled %lld ms, at most %lld bytes stored, %s after %lld more bytes\n", name,
	       stalled_ms, max, ended ? "cut" : "NOT cut", got);
	if (max > DOWNLOAD_SPOOL_MAX)
		fail_msg("%s stored %lld bytes of a download its client did not read", name, max);
	if (!ended)
		fail_msg("%s kept a client that read nothing for %d s (write idle limit %d s)", name,
		         IDLE + 3, IDLE);

	/* the one worker is free again: it stopped reading the file when its client was gone (one
	 * that went on would be busy with the rest of 20 GiB for minutes) */
	struct answer h = {0};
	snprintf(request, sizeof request, "GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n",
	         s->port);
	fd = connect_to(s->port, 0);
	assert_int_equal(write(fd, request, strlen(request)), (ssize_t)strlen(request));
	t0 = h_now_ms();
	while (!answer_complete(&h) && h_now_ms() - t0 < 3000) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 100) == 1) {
			ssize_t n = read(fd, h.buf + h.len, sizeof h.buf - 1 - h.len);
			if (n <= 0)
				break;
			h.len += (size_t)n;
		}
	}
	close(fd);
	long long health_ms = h_now_ms() - t0;
	printf("    %s: /health answered %ld after %lld ms\n", name, h.status, health_ms);
	if (h.status != 204)
		fail_msg("%s: the worker is still busy %lld ms after its client was cut", name, health_ms);
	snprintf(url, sizeof url, "%s/runners/%s", s->base, id);
	assert_int_equal(h_http(&r, "DELETE", url, NULL, -1, token), 0);
	assert_int_equal(r.status, 204);
	h_resp_free(&r);
}

static void test_lighttpd_holds_back_a_download_and_cuts_a_stalled_client(void **state)
{
	(void)state;
	stalled_download(LIGHTTPD);
}

static void test_nginx_holds_back_a_download_and_cuts_a_stalled_client(void **state)
{
	(void)state;
	stalled_download(NGINX);
}

static void test_apache_holds_back_a_download_and_cuts_a_stalled_client(void **state)
{
	(void)state;
	stalled_download(APACHE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lighttpd_refuses_a_body_over_the_limit_before_storing_it),
	    cmocka_unit_test(test_nginx_refuses_a_body_over_the_limit_before_storing_it),
	    cmocka_unit_test(test_apache_refuses_a_body_over_the_limit_before_storing_it),
	    cmocka_unit_test(test_lighttpd_holds_back_a_download_and_cuts_a_stalled_client),
	    cmocka_unit_test(test_nginx_holds_back_a_download_and_cuts_a_stalled_client),
	    cmocka_unit_test(test_apache_holds_back_a_download_and_cuts_a_stalled_client),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
