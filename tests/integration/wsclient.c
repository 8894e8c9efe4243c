/* The tests' WebSocket client (wsclient.h): one TCP connection to 127.0.0.1, a receive buffer and
 * the message being joined. Invariants: the unread bytes are buf[off, len); a frame is consumed
 * (off moves past it) only when it is whole; the buffer is compacted or grown only in fill(), so a
 * pointer wsc_next hands out stays valid until the next call. Reads are READ_CHUNK at a time into
 * the buffer and frames are parsed where they lie: wsc_next copies nothing but the fragments of a
 * fragmented message, which bench_wsgate's throughput figure relies on. */
#include "wsclient.h"

#include "contract.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK (256 * 1024)               /* the room a read receives; the buffer grows in its multiples */
#define WAIT_MS    20000                      /* for each part of a response head or body to arrive */
#define REQUEST    8192                       /* the largest request head wsc_open builds */
#define WS_KEY     "dGhlIHNhbXBsZSBub25jZQ==" /* RFC 6455's sample; the tests do not check the accept */

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int send_all(int fd, const void *p, size_t n)
{
	for (const char *at = p; n;) {
		ssize_t w = send(fd, at, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		at += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads what arrives within timeout_ms: 1 bytes came, 0 the peer hung up (or reset), -1 timeout
 * or error. Makes room first: drops consumed bytes when that frees enough, else doubles. */
static int fill(struct wsc *c, int timeout_ms)
{
	if (c->off == c->len)
		c->off = c->len = 0;
	if (c->cap - c->len < READ_CHUNK && c->off) {
		memmove(c->buf, c->buf + c->off, c->len - c->off);
		c->len -= c->off;
		c->off = 0;
	}
	if (c->cap - c->len < READ_CHUNK) {
		size_t cap = c->cap ? c->cap * 2 : 2 * READ_CHUNK;
		unsigned char *b = realloc(c->buf, cap);
		if (!b)
			return -1;
		c->buf = b;
		c->cap = cap;
	}
	struct pollfd p = {.fd = c->fd, .events = POLLIN};
	if (poll(&p, 1, timeout_ms < 0 ? 0 : timeout_ms) <= 0)
		return -1;
	ssize_t n;
	while ((n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0)) < 0 && errno == EINTR)
		;
	if (n < 0)
		return errno == ECONNRESET ? 0 : -1;
	if (n == 0)
		return 0;
	c->len += (size_t)n;
	return 1;
}

void wsc_close(struct wsc *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	free(c->msg);
	free(c->cpath);
	memset(c, 0, sizeof *c);
	c->fd = -1;
}

int wsc_connect(struct wsc *c, int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int one = 1;
	memset(c, 0, sizeof *c);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0 ||
	    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) {
		wsc_close(c);
		return -1;
	}
	return 0;
}

int wsc_request(struct wsc *c, const char *request, char *head, size_t head_cap, char *body, size_t body_cap)
{
	unsigned char *end;
	if (c->fd < 0 || send_all(c->fd, request, strlen(request)) < 0)
		return -1;
	while (!(end = c->len > c->off ? memmem(c->buf + c->off, c->len - c->off, "\r\n\r\n", 4) : NULL))
		if (fill(c, WAIT_MS) <= 0)
			return -1;
	size_t hl = (size_t)(end - (c->buf + c->off)) + 4;
	char *h = malloc(hl + 1); /* the head as a string, for sscanf and strcasestr */
	if (!h)
		return -1;
	memcpy(h, c->buf + c->off, hl);
	h[hl] = '\0';
	int status = 0;
	if (sscanf(h, "HTTP/1.%*d %d", &status) != 1) {
		free(h);
		return -1;
	}
	const char *cl = strcasestr(h, "\r\nContent-Length:");
	size_t want = cl ? strtoul(cl + 17, NULL, 10) : 0;
	if (head && head_cap)
		snprintf(head, head_cap, "%s", h);
	c->off += hl;
	if (status != 101)
		while (c->len - c->off < want && fill(c, WAIT_MS) > 0)
			;
	/* the contract log (contract.h): the answer to a request line "METHOD /api/v1/... HTTP/1.x",
	 * or, after an upgrade, the messages that follow */
	char method[16], target[REQUEST];
	if (sscanf(request, "%15s %8191s HTTP/1.", method, target) == 2 && contract_wanted(target)) {
		if (status == 101) {
			free(c->cpath);
			c->cpath = strdup(target);
		} else {
			size_t have = c->len - c->off;
			contract_http(method, target, status, h, c->buf + c->off, have < want ? have : want);
		}
	}
	free(h);
	if (body && body_cap) {
		size_t have = status == 101 ? 0 : c->len - c->off;
		size_t bl = have < body_cap - 1 ? have : body_cap - 1;
		memcpy(body, c->buf + c->off, bl);
		body[bl] = '\0';
	}
	return status;
}

/* Appends s to the request being built in req[0, *at); -1 when it would not fit. */
static int put(char *req, size_t *at, const char *s)
{
	size_t l = strlen(s);
	if (*at + l >= REQUEST)
		return -1;
	memcpy(req + *at, s, l + 1);
	*at += l;
	return 0;
}

int wsc_open(struct wsc *c, int port, const char *path_query, int upgrade, const char *const *headers,
             char *body, size_t body_cap)
{
	char req[REQUEST];
	int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n", path_query, port);
	size_t at = n > 0 && (size_t)n < sizeof req ? (size_t)n : sizeof req;
	int bad = at >= sizeof req;
	if (upgrade)
		bad = bad || put(req, &at,
		                 "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " WS_KEY
		                 "\r\nSec-WebSocket-Version: 13\r\n") < 0;
	for (const char *const *h = headers; h && *h && !bad; h++)
		bad = put(req, &at, *h) < 0 || put(req, &at, "\r\n") < 0;
	bad = bad || put(req, &at, "\r\n") < 0;
	int status = bad || wsc_connect(c, port) < 0 ? -1 : wsc_request(c, req, NULL, 0, body, body_cap);
	if (status < 0)
		wsc_close(c);
	return status;
}

int wsc_send(struct wsc *c, int opcode, const void *data, size_t len)
{
	static const unsigned char mask[4] = {0xa1, 0x5b, 0x3c, 0x7e};
	unsigned char *f = malloc(len + 14);
	size_t h = 0;
	if (!f)
		return -1;
	f[h++] = (unsigned char)(0x80 | opcode);
	if (len < 126) {
		f[h++] = (unsigned char)(0x80 | len);
	} else if (len < 65536) {
		f[h++] = 0x80 | 126;
		f[h++] = (unsigned char)(len >> 8);
		f[h++] = (unsigned char)len;
	} else {
		f[h++] = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			f[h++] = (unsigned char)((uint64_t)len >> (8 * i));
	}
	memcpy(f + h, mask, 4);
	h += 4;
	for (size_t i = 0; i < len; i++)
		f[h + i] = ((const unsigned char *)data)[i] ^ mask[i & 3];
	int rc = c->fd < 0 ? -1 : send_all(c->fd, f, h + len);
	free(f);
	return rc;
}

int wsc_send_close(struct wsc *c, int code)
{
	unsigned char p[2] = {(unsigned char)(code >> 8), (unsigned char)code};
	return wsc_send(c, WSC_CLOSE, p, 2);
}

/* Appends a fragment to the message being joined. 0 or -1. */
static int join(struct wsc *c, const unsigned char *p, size_t l)
{
	if (c->mlen + l > c->mcap) {
		size_t cap = (c->mlen + l) * 2;
		unsigned char *m = realloc(c->msg, cap);
		if (!m)
			return -1;
		c->msg = m;
		c->mcap = cap;
	}
	memcpy(c->msg + c->mlen, p, l);
	c->mlen += l;
	return 0;
}

int wsc_next(struct wsc *c, int timeout_ms, int *op, const unsigned char **data, size_t *n)
{
	long long end = now_ms() + timeout_ms;
	for (;;) {
		size_t avail = c->len - c->off, hl = 2;
		const unsigned char *p = c->buf ? c->buf + c->off : NULL; /* NULL before the first read */
		uint64_t l = avail >= 2 ? p[1] & 0x7f : 0;
		int whole = avail >= 2;
		if (whole && (p[1] & 0x80))
			return -1; /* a server's frames are never masked */
		if (whole && l == 126) {
			whole = avail >= 4;
			l = whole ? (uint64_t)p[2] << 8 | p[3] : 0;
			hl = 4;
		} else if (whole && l == 127) {
			whole = avail >= 10;
			l = 0;
			for (int i = 0; whole && i < 8; i++)
				l = l << 8 | p[2 + i];
			hl = 10;
		}
		if (whole && avail - hl >= l) {
			int fin = p[0] & 0x80, o = p[0] & 0x0f;
			const unsigned char *payload = p + hl;
			c->off += hl + (size_t)l;
			if (o >= 8 || (fin && o && !c->mop)) { /* control, or a message in one frame */
				*op = o;
				*data = payload;
				*n = (size_t)l;
				if (o == WSC_TEXT && c->cpath)
					contract_ws(c->cpath, payload, (size_t)l);
				return 1;
			}
			if (o)
				c->mop = o;
			if (!c->mop)
				return -1; /* a continuation without a start */
			if (join(c, payload, (size_t)l) < 0)
				return -1;
			if (fin) {
				*op = c->mop;
				*data = c->msg;
				*n = c->mlen;
				if (c->mop == WSC_TEXT && c->cpath)
					contract_ws(c->cpath, c->msg, c->mlen);
				c->mop = 0;
				c->mlen = 0;
				return 1;
			}
			continue;
		}
		long long left = end - now_ms();
		if (left <= 0)
			return -1;
		int r = fill(c, left > 0x7fffffff ? 0x7fffffff : (int)left);
		if (r <= 0)
			return r;
	}
}

int wsc_read(struct wsc *c, int timeout_ms, char **data, size_t *n)
{
	const unsigned char *d;
	int op;
	*data = NULL;
	*n = 0;
	int r = wsc_next(c, timeout_ms, &op, &d, n);
	if (r != 1) {
		*n = 0;
		return r;
	}
	*data = malloc(*n + 1);
	if (!*data)
		return -1;
	memcpy(*data, d, *n);
	(*data)[*n] = '\0';
	return op;
}
