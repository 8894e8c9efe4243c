/* httpd: see httpd.h. Connections live in MODE_HTTP (request/response, keep-alive), MODE_STREAM
 * (a chunked response that stays open) or MODE_WS (RFC 6455 frames). Output is queued in one
 * buffer per connection and written as the socket allows; the read side can be paused for
 * back-pressure. Answers to malformed requests copy Go's net/http texts. */
#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "util.h"

#define HTTPD_READ_CHUNK 65536
#define HTTPD_MAX_CONNS 4096
#define HTTPD_WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

enum conn_mode { MODE_HTTP, MODE_STREAM, MODE_WS };
enum parse_state { ST_HEADERS, ST_BODY, ST_CHUNK_SIZE, ST_CHUNK_DATA, ST_CHUNK_CRLF, ST_TRAILERS };

struct http_conn {
	struct loop_watch w;
	enum conn_mode mode;
	struct buf in;
	struct buf out;
	size_t out_off;
	int closing, closed, paused, keepalive;
	int rd_eof; /* the peer half-closed: only answers left to flush */
	char peer[64];
	void (*close_cb)(struct http_conn *, void *);
	void *close_arg;
	void (*drain_cb)(struct http_conn *, void *);
	size_t low_water;
	int above_water;
	/* request parsing */
	enum parse_state st;
	struct http_req req;
	char *hdrblock;
	size_t body_left;
	struct buf body;
	/* websocket */
	void (*ws_msg)(struct http_conn *, void *, const char *, size_t);
	struct buf ws_frag;
	int ws_frag_active;
	int ws_close_sent;
};

static struct loop_listener listener = {.w.fd = -1};
static http_handler handler;
static int nconns;
static struct http_conn **conns;
static int conns_cap;

static void conn_flush(struct http_conn *c);
static void conn_process(struct http_conn *c);

static const char *status_text(int code)
{
	switch (code) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Request Entity Too Large";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

static void http_date(char out[40])
{
	time_t t = time(NULL);
	struct tm tm;
	static const char *days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
				       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	gmtime_r(&t, &tm);
	snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
		 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* ---- connection table (for close_all) ---- */

static void conns_add(struct http_conn *c)
{
	if (nconns == conns_cap) {
		int cap = conns_cap ? conns_cap * 2 : 64;
		struct http_conn **n = realloc(conns, (size_t)cap * sizeof *n);
		if (!n)
			return;
		conns = n;
		conns_cap = cap;
	}
	conns[nconns++] = c;
}

static void conns_del(struct http_conn *c)
{
	for (int i = 0; i < nconns; i++)
		if (conns[i] == c) {
			conns[i] = conns[--nconns];
			return;
		}
}

/* ---- lifecycle ---- */

static void req_reset(struct http_conn *c)
{
	free(c->req.path);
	free(c->hdrblock);
	c->hdrblock = NULL;
	buf_free(&c->body);
	memset(&c->req, 0, sizeof c->req);
	c->st = ST_HEADERS;
	c->body_left = 0;
}

static void conn_free(void *p)
{
	struct http_conn *c = p;
	req_reset(c);
	buf_free(&c->in);
	buf_free(&c->out);
	buf_free(&c->ws_frag);
	free(c);
}

void http_close(struct http_conn *c)
{
	if (c->closed)
		return;
	c->closed = 1;
	int fd = c->w.fd;
	loop_unwatch(&c->w);
	if (fd >= 0) {
		close(fd);
		loop_fd_released();
	}
	conns_del(c);
	if (c->close_cb) {
		void (*cb)(struct http_conn *, void *) = c->close_cb;
		c->close_cb = NULL;
		cb(c, c->close_arg);
	}
	loop_defer_free(conn_free, c);
}

void http_close_after_flush(struct http_conn *c)
{
	if (c->closed)
		return;
	c->closing = 1;
	if (c->out.len == c->out_off)
		http_close(c);
}

void http_on_close(struct http_conn *c, void (*cb)(struct http_conn *c, void *arg), void *arg)
{
	c->close_cb = cb;
	c->close_arg = arg;
}

void http_on_drain(struct http_conn *c, size_t low_water, void (*cb)(struct http_conn *c, void *arg))
{
	c->low_water = low_water;
	c->drain_cb = cb;
}

size_t http_out_pending(const struct http_conn *c) { return c->out.len - c->out_off; }

const char *http_peer(const struct http_conn *c) { return c->peer; }

/* Level-triggered: only what the connection acts on now. Paused, it reads nothing (an EOF or
 * EPOLLRDHUP waits until it resumes); after the peer's EOF there is nothing more to read. Either
 * kept in the mask, the peer's FIN would wake the loop at once, forever. */
static void conn_update_events(struct http_conn *c)
{
	if (c->closed)
		return;
	uint32_t ev = 0;
	if (!c->paused && !c->rd_eof)
		ev |= EPOLLIN | EPOLLRDHUP;
	if (c->out.len > c->out_off)
		ev |= EPOLLOUT;
	loop_rewatch(&c->w, ev);
}

void http_pause_read(struct http_conn *c, int pause)
{
	if (c->closed || c->paused == !!pause)
		return;
	c->paused = !!pause;
	conn_update_events(c);
	if (!pause && c->in.len > 0)
		conn_process(c);
}

static void conn_queue(struct http_conn *c, const void *data, size_t len)
{
	if (c->closed)
		return;
	if (buf_add(&c->out, data, len) < 0) {
		log_error("http: out of memory queueing output", "peer", c->peer);
		http_close(c);
		return;
	}
	if (c->drain_cb && c->out.len - c->out_off > c->low_water)
		c->above_water = 1;
}

static void conn_flush(struct http_conn *c)
{
	while (!c->closed && c->out.len > c->out_off) {
		ssize_t n = send(c->w.fd, c->out.p + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			log_debug("http: write failed", "peer", c->peer, "error", strerror(errno));
			http_close(c);
			return;
		}
		c->out_off += (size_t)n;
	}
	if (c->closed)
		return;
	if (c->out_off == c->out.len) {
		c->out.len = c->out_off = 0;
		if (c->out.cap > 1024 * 1024)
			buf_free(&c->out);
		if (c->closing) {
			http_close(c);
			return;
		}
	} else if (c->out_off > 65536 && c->out_off > c->out.len / 2) {
		buf_consume(&c->out, c->out_off);
		c->out_off = 0;
	}
	conn_update_events(c);
	if (c->above_water && c->drain_cb && c->out.len - c->out_off <= c->low_water) {
		c->above_water = 0;
		c->drain_cb(c, c->close_arg);
	}
}

/* ---- responses ---- */

void http_respond(struct http_conn *c, int status, const char *content_type, const char *extra_headers,
		  const char *body, size_t len)
{
	char date[40];
	struct buf h = {0};
	if (c->closed)
		return;
	http_date(date);
	buf_printf(&h, "HTTP/1.1 %d %s\r\n", status, status_text(status));
	if (content_type)
		buf_printf(&h, "Content-Type: %s\r\n", content_type);
	buf_adds(&h, "Vary: Accept-Encoding\r\n");
	if (extra_headers)
		buf_adds(&h, extra_headers);
	buf_printf(&h, "Date: %s\r\nContent-Length: %zu\r\n", date, len);
	if (!c->keepalive)
		buf_adds(&h, "Connection: close\r\n");
	buf_adds(&h, "\r\n");
	if (!h.p) {
		http_close(c);
		return;
	}
	conn_queue(c, h.p, h.len);
	buf_free(&h);
	if (strcmp(c->req.method, "HEAD") != 0 && len)
		conn_queue(c, body, len);
	if (!c->keepalive)
		c->closing = 1;
	conn_flush(c);
}

int http_stream_begin(struct http_conn *c, int status, const char *content_type, const char *extra_headers)
{
	char date[40];
	struct buf h = {0};
	if (c->closed)
		return -1;
	http_date(date);
	buf_printf(&h, "HTTP/1.1 %d %s\r\n", status, status_text(status));
	if (content_type)
		buf_printf(&h, "Content-Type: %s\r\n", content_type);
	buf_adds(&h, "Vary: Accept-Encoding\r\n");
	if (extra_headers)
		buf_adds(&h, extra_headers);
	buf_printf(&h, "Date: %s\r\nTransfer-Encoding: chunked\r\n\r\n", date);
	if (!h.p)
		return -1;
	conn_queue(c, h.p, h.len);
	buf_free(&h);
	c->mode = MODE_STREAM;
	conn_flush(c);
	return c->closed ? -1 : 0;
}

int http_stream_write(struct http_conn *c, const char *data, size_t len)
{
	char hdr[32];
	if (c->closed || c->mode != MODE_STREAM || len == 0)
		return -1;
	int n = snprintf(hdr, sizeof hdr, "%zx\r\n", len);
	conn_queue(c, hdr, (size_t)n);
	conn_queue(c, data, len);
	conn_queue(c, "\r\n", 2);
	conn_flush(c);
	return c->closed ? -1 : 0;
}

/* Go's net/http answers to requests it cannot parse, before any handler runs. */
static void respond_go_error(struct http_conn *c, int status)
{
	char msg[256];
	int n = snprintf(msg, sizeof msg,
			 "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n%d %s",
			 status, status_text(status), status, status_text(status));
	conn_queue(c, msg, (size_t)n);
	c->closing = 1;
	c->in.len = 0;
	conn_flush(c);
}

/* ---- request parsing ---- */

const char *http_header(const struct http_req *r, const char *name)
{
	for (int i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}

int http_query_next(const struct http_req *r, const char *key, size_t *pos, char *out, size_t cap)
{
	const char *q = r->query ? r->query : "";
	size_t qlen = strlen(q), klen = strlen(key);
	while (*pos < qlen) {
		const char *s = q + *pos;
		const char *amp = strchr(s, '&');
		size_t len = amp ? (size_t)(amp - s) : strlen(s);
		*pos += len + 1;
		if (len == 0 || memchr(s, ';', len))
			continue; /* Go drops pairs with ';' */
		const char *eq = memchr(s, '=', len);
		size_t kl = eq ? (size_t)(eq - s) : len;
		char kbuf[256];
		if (kl >= sizeof kbuf)
			continue;
		if (url_decode(s, kl, kbuf, 1) < 0 || strlen(kbuf) != klen || memcmp(kbuf, key, klen) != 0)
			continue;
		const char *v = eq ? eq + 1 : s + len;
		size_t vl = eq ? len - kl - 1 : 0;
		char *tmp = malloc(vl + 1);
		if (!tmp)
			return 0;
		if (url_decode(v, vl, tmp, 1) < 0) {
			free(tmp);
			continue; /* Go skips pairs it cannot unescape */
		}
		snprintf(out, cap, "%s", tmp);
		free(tmp);
		return 1;
	}
	if (cap)
		out[0] = '\0';
	return 0;
}

int http_query(const struct http_req *r, const char *key, char *out, size_t cap)
{
	size_t pos = 0;
	return http_query_next(r, key, &pos, out, cap);
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

static int has_token(const char *list, const char *token)
{
	size_t tl = strlen(token);
	for (const char *p = list; p && *p;) {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		const char *e = p;
		while (*e && *e != ',')
			e++;
		const char *t = e;
		while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
			t--;
		if ((size_t)(t - p) == tl && strncasecmp(p, token, tl) == 0)
			return 1;
		p = e;
	}
	return 0;
}

/* Parses the header block (NUL-terminated copy in c->hdrblock). 0, or the status to answer. */
static int parse_head(struct http_conn *c)
{
	struct http_req *r = &c->req;
	char *save = NULL;
	char *line = strtok_r(c->hdrblock, "\n", &save);
	if (!line)
		return 400;
	line = trim(line);
	char *sp1 = strchr(line, ' ');
	char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp1 || !sp2 || (size_t)(sp1 - line) >= sizeof r->method || sp1 == line)
		return 400;
	*sp1 = *sp2 = '\0';
	snprintf(r->method, sizeof r->method, "%s", line);
	r->target = sp1 + 1;
	const char *proto = sp2 + 1;
	if (strcmp(proto, "HTTP/1.1") == 0)
		r->http10 = 0;
	else if (strcmp(proto, "HTTP/1.0") == 0)
		r->http10 = 1;
	else if (strncmp(proto, "HTTP/", 5) == 0)
		return 505;
	else
		return 400;
	for (const char *m = r->method; *m; m++)
		if (*m < 'A' || *m > 'Z')
			return 400;
	if (r->target[0] != '/')
		return 400;
	while ((line = strtok_r(NULL, "\n", &save))) {
		line = trim(line);
		if (!*line)
			break;
		char *colon = strchr(line, ':');
		if (!colon || colon == line)
			return 400;
		*colon = '\0';
		for (char *p = line; *p; p++)
			if (*p == ' ' || *p == '\t')
				return 400;
		if (r->nheaders >= HTTPD_MAX_HEADERS)
			return 431;
		r->headers[r->nheaders].name = line;
		r->headers[r->nheaders].value = trim(colon + 1);
		r->nheaders++;
	}
	/* path and query */
	char *qm = strchr(r->target, '?');
	size_t plen = qm ? (size_t)(qm - r->target) : strlen(r->target);
	r->path = malloc(plen + 1);
	if (!r->path || url_decode(r->target, plen, r->path, 0) < 0)
		return 400;
	r->query = qm ? qm + 1 : (char *)"";
	const char *conn = http_header(r, "Connection");
	c->keepalive = r->http10 ? (conn && has_token(conn, "keep-alive")) : !(conn && has_token(conn, "close"));
	return 0;
}

static void dispatch(struct http_conn *c)
{
	struct http_req *r = &c->req;
	if (buf_reserve(&c->body, 0) < 0) {
		http_close(c);
		return;
	}
	r->body = c->body.p;
	r->body_len = c->body.len;
	handler(c, r);
	if (c->closed)
		return; /* conn_free resets the request */
	req_reset(c);
}

static void ws_process(struct http_conn *c);

/* Finds the end of the header block; returns its length including the blank line, or 0. */
static size_t head_end(const char *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++) {
		if (p[i] == '\n' && p[i + 1] == '\n')
			return i + 2;
		if (p[i] == '\n' && p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

static void conn_process(struct http_conn *c)
{
	while (!c->closed && !c->closing && !c->paused) {
		if (c->mode == MODE_WS) {
			ws_process(c);
			return;
		}
		if (c->mode == MODE_STREAM) {
			c->in.len = 0; /* a stream reader has nothing to say */
			return;
		}
		if (c->st == ST_HEADERS) {
			size_t n = head_end(c->in.p ? c->in.p : "", c->in.len);
			if (!n) {
				if (c->in.len > HTTPD_MAX_HEADER)
					respond_go_error(c, 431);
				return;
			}
			if (n > HTTPD_MAX_HEADER) {
				respond_go_error(c, 431);
				return;
			}
			c->hdrblock = malloc(n + 1);
			if (!c->hdrblock) {
				http_close(c);
				return;
			}
			memcpy(c->hdrblock, c->in.p, n);
			c->hdrblock[n] = '\0';
			buf_consume(&c->in, n);
			int err = parse_head(c);
			if (err) {
				log_debug("http: malformed request", "peer", c->peer);
				free(c->req.path);
				c->req.path = NULL;
				respond_go_error(c, err);
				return;
			}
			const char *te = http_header(&c->req, "Transfer-Encoding");
			const char *cl = http_header(&c->req, "Content-Length");
			if (te && cl) {
				free(c->req.path);
				c->req.path = NULL;
				respond_go_error(c, 400);
				return;
			}
			if (te) {
				if (strcasecmp(te, "chunked") != 0) {
					free(c->req.path);
					c->req.path = NULL;
					respond_go_error(c, 501);
					return;
				}
				c->req.has_body = 1;
				c->st = ST_CHUNK_SIZE;
			} else if (cl) {
				char *end;
				errno = 0;
				unsigned long long v = strtoull(cl, &end, 10);
				if (errno || *end || !*cl || cl[0] == '-') {
					free(c->req.path);
					c->req.path = NULL;
					respond_go_error(c, 400);
					return;
				}
				if (v > HTTPD_MAX_BODY) {
					static const char msg[] = "http: request body too large";
					log_warn("http: request body over the limit", "peer", c->peer,
						 "content_length", cl);
					c->keepalive = 0;
					http_respond(c, 413, "text/plain; charset=utf-8", NULL, msg, sizeof msg - 1);
					free(c->req.path);
					c->req.path = NULL;
					return;
				}
				c->body_left = (size_t)v;
				c->req.has_body = v > 0;
				c->st = ST_BODY;
			} else {
				c->st = ST_BODY;
				c->body_left = 0;
			}
			const char *expect = http_header(&c->req, "Expect");
			if (expect && strcasecmp(expect, "100-continue") == 0 && c->req.has_body && c->in.len == 0 &&
			    !c->req.http10) {
				static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
				conn_queue(c, cont, sizeof cont - 1);
				conn_flush(c);
			}
			continue;
		}
		if (c->st == ST_BODY) {
			size_t take = c->in.len < c->body_left ? c->in.len : c->body_left;
			if (take) {
				if (buf_add(&c->body, c->in.p, take) < 0) {
					http_close(c);
					return;
				}
				buf_consume(&c->in, take);
				c->body_left -= take;
			}
			if (c->body_left > 0)
				return;
			dispatch(c);
			if (!c->closed && !c->keepalive && c->mode == MODE_HTTP)
				c->closing = 1;
			continue;
		}
		if (c->st == ST_CHUNK_SIZE || c->st == ST_TRAILERS) {
			char *nl = c->in.p ? memchr(c->in.p, '\n', c->in.len) : NULL;
			if (!nl) {
				if (c->in.len > 4096)
					respond_go_error(c, 400);
				return;
			}
			size_t ll = (size_t)(nl - c->in.p) + 1;
			char line[4100];
			memcpy(line, c->in.p, ll < sizeof line ? ll : sizeof line - 1);
			line[ll < sizeof line ? ll : sizeof line - 1] = '\0';
			buf_consume(&c->in, ll);
			char *t = trim(line);
			size_t tl = strlen(t);
			if (tl && t[tl - 1] == '\n')
				t[--tl] = '\0';
			t = trim(t);
			if (c->st == ST_TRAILERS) {
				if (!*t) {
					dispatch(c);
					if (!c->closed && !c->keepalive && c->mode == MODE_HTTP)
						c->closing = 1;
				}
				continue;
			}
			char *end;
			errno = 0;
			unsigned long long v = strtoull(t, &end, 16);
			if (errno || end == t || (*end && *end != ';')) {
				respond_go_error(c, 400);
				return;
			}
			if (v == 0) {
				c->st = ST_TRAILERS;
				continue;
			}
			if (c->body.len + v > HTTPD_MAX_BODY) {
				static const char msg[] = "http: request body too large";
				c->keepalive = 0;
				http_respond(c, 413, "text/plain; charset=utf-8", NULL, msg, sizeof msg - 1);
				return;
			}
			c->body_left = (size_t)v;
			c->st = ST_CHUNK_DATA;
			continue;
		}
		if (c->st == ST_CHUNK_DATA) {
			size_t take = c->in.len < c->body_left ? c->in.len : c->body_left;
			if (take) {
				if (buf_add(&c->body, c->in.p, take) < 0) {
					http_close(c);
					return;
				}
				buf_consume(&c->in, take);
				c->body_left -= take;
			}
			if (c->body_left > 0)
				return;
			c->st = ST_CHUNK_CRLF;
			continue;
		}
		if (c->st == ST_CHUNK_CRLF) {
			if (c->in.len < 1)
				return;
			if (c->in.p[0] == '\n') {
				buf_consume(&c->in, 1);
			} else if (c->in.p[0] == '\r') {
				if (c->in.len < 2)
					return;
				if (c->in.p[1] != '\n') {
					respond_go_error(c, 400);
					return;
				}
				buf_consume(&c->in, 2);
			} else {
				respond_go_error(c, 400);
				return;
			}
			c->st = ST_CHUNK_SIZE;
			continue;
		}
	}
}

static void on_conn_event(struct loop_watch *w, uint32_t events)
{
	struct http_conn *c = w->arg;
	if (events & EPOLLOUT)
		conn_flush(c);
	if (c->closed)
		return;
	if ((events & EPOLLERR) || ((events & EPOLLHUP) && (c->paused || c->rd_eof))) {
		/* EPOLLHUP cannot be masked: gone both ways, so nothing can be answered either */
		http_close(c);
		return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP)) {
		if (c->paused && !(events & (EPOLLHUP | EPOLLRDHUP)))
			return;
		static char tmp[HTTPD_READ_CHUNK];
		for (int rounds = 0; rounds < 16; rounds++) {
			if (c->closed || c->paused)
				return;
			ssize_t n = recv(c->w.fd, tmp, sizeof tmp, 0);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					return;
				http_close(c);
				return;
			}
			if (n == 0) {
				/* peer closed: finish what it sent, then drop the connection */
				conn_process(c);
				if (!c->closed && c->mode == MODE_HTTP && c->out.len > c->out_off) {
					c->closing = 1;
					c->rd_eof = 1;
					conn_update_events(c);
				} else {
					http_close(c);
				}
				return;
			}
			if (c->mode == MODE_STREAM)
				continue; /* a stream reader has nothing to say */
			if (buf_add(&c->in, tmp, (size_t)n) < 0) {
				http_close(c);
				return;
			}
			conn_process(c);
		}
	}
}

static void on_accept(struct loop_watch *w, uint32_t events)
{
	(void)w, (void)events;
	for (;;) {
		struct sockaddr_in sa;
		socklen_t sl = sizeof sa;
		/* out of descriptors, the listener pauses (loop.h) instead of failing at once, forever */
		int fd = loop_accept(&listener, (struct sockaddr *)&sa, &sl);
		if (fd < 0)
			return;
		if (nconns >= HTTPD_MAX_CONNS) {
			log_warn("http: connection limit reached, refusing");
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct http_conn *c = calloc(1, sizeof *c);
		if (!c) {
			close(fd);
			loop_listener_starve(&listener, ENOMEM);
			return;
		}
		char ip[INET_ADDRSTRLEN] = "?";
		inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof ip);
		snprintf(c->peer, sizeof c->peer, "%s:%d", ip, ntohs(sa.sin_port));
		c->keepalive = 1;
		if (loop_watch(&c->w, fd, EPOLLIN | EPOLLRDHUP, on_conn_event, c) < 0) {
			int e = errno;
			close(fd);
			free(c);
			loop_listener_starve(&listener, e);
			return;
		}
		conns_add(c);
	}
}

int httpd_listen(const char *addr, int port, http_handler h)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
		errno = EINVAL;
		return -1;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 512) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	handler = h;
	if (loop_listen(&listener, fd, "http", on_accept, NULL) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return 0;
}

void httpd_close(void) { loop_listen_close(&listener); }

void httpd_close_all(void)
{
	while (nconns > 0)
		http_close(conns[nconns - 1]);
	free(conns);
	conns = NULL;
	conns_cap = 0;
}

/* ---- websocket ---- */

int http_ws_accept(struct http_conn *c, struct http_req *r,
		   void (*on_message)(struct http_conn *c, void *arg, const char *data, size_t len), void *arg)
{
	const char *key = http_header(r, "Sec-WebSocket-Key");
	unsigned char digest[20];
	char accept[32];
	struct buf k = {0};
	if (!key || buf_adds(&k, key) < 0 || buf_adds(&k, HTTPD_WS_GUID) < 0) {
		buf_free(&k);
		return -1;
	}
	sha1((const unsigned char *)k.p, k.len, digest);
	buf_free(&k);
	b64_encode(digest, 20, accept);
	char resp[256];
	int n = snprintf(resp, sizeof resp,
			 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			 "Sec-WebSocket-Accept: %s\r\n\r\n",
			 accept);
	c->mode = MODE_WS;
	c->keepalive = 0;
	c->ws_msg = on_message;
	c->close_arg = arg;
	conn_queue(c, resp, (size_t)n);
	conn_flush(c);
	return c->closed ? -1 : 0;
}

static void ws_frame(struct http_conn *c, int opcode, const void *data, size_t len)
{
	unsigned char h[10];
	size_t hl;
	h[0] = (unsigned char)(0x80 | opcode);
	if (len < 126) {
		h[1] = (unsigned char)len;
		hl = 2;
	} else if (len < 65536) {
		h[1] = 126;
		h[2] = (unsigned char)(len >> 8);
		h[3] = (unsigned char)len;
		hl = 4;
	} else {
		h[1] = 127;
		for (int i = 0; i < 8; i++)
			h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
		hl = 10;
	}
	conn_queue(c, h, hl);
	if (len)
		conn_queue(c, data, len);
}

int ws_send_text(struct http_conn *c, const char *data, size_t len)
{
	if (!c || c->closed || c->mode != MODE_WS || c->ws_close_sent)
		return -1;
	ws_frame(c, 1, data, len);
	conn_flush(c);
	return c->closed ? -1 : 0;
}

void ws_send_close(struct http_conn *c, int code, const char *reason)
{
	unsigned char p[125];
	size_t rl = reason ? strlen(reason) : 0;
	if (c->closed || c->ws_close_sent)
		return;
	if (rl > 123)
		rl = 123;
	p[0] = (unsigned char)(code >> 8);
	p[1] = (unsigned char)code;
	if (rl)
		memcpy(p + 2, reason, rl);
	ws_frame(c, 8, p, 2 + rl);
	c->ws_close_sent = 1;
	http_close_after_flush(c);
	if (!c->closed)
		conn_flush(c);
}

static void ws_process(struct http_conn *c)
{
	while (!c->closed && !c->paused && c->in.len >= 2) {
		unsigned char *p = (unsigned char *)c->in.p;
		int fin = p[0] & 0x80, opcode = p[0] & 0x0f, masked = p[1] & 0x80;
		uint64_t len = p[1] & 0x7f;
		size_t hl = 2;
		if (p[0] & 0x70) {
			ws_send_close(c, 1002, "");
			return;
		}
		if (len == 126) {
			if (c->in.len < 4)
				return;
			len = (uint64_t)p[2] << 8 | p[3];
			hl = 4;
		} else if (len == 127) {
			if (c->in.len < 10)
				return;
			len = 0;
			for (int i = 0; i < 8; i++)
				len = len << 8 | p[2 + i];
			hl = 10;
		}
		if (!masked) {
			ws_send_close(c, 1002, "");
			return;
		}
		if (len > HTTPD_MAX_WS_MESSAGE) {
			ws_send_close(c, 1009, "");
			return;
		}
		if (c->in.len < hl + 4 + len)
			return;
		unsigned char *mask = p + hl, *data = p + hl + 4;
		for (uint64_t i = 0; i < len; i++)
			data[i] ^= mask[i & 3];
		if (opcode >= 8) {
			if (!fin || len > 125) {
				ws_send_close(c, 1002, "");
				return;
			}
			if (opcode == 8) {
				/* echo the close code like gorilla's default handler, then hang up */
				int code = len >= 2 ? (data[0] << 8 | data[1]) : 1000;
				if (len < 2 || code == 1005)
					code = 1000;
				char reason[1] = "";
				ws_send_close(c, code, reason);
				c->in.len = 0;
				return;
			} else if (opcode == 9) {
				ws_frame(c, 10, data, (size_t)len);
				conn_flush(c);
			}
		} else {
			if (opcode != 0 && c->ws_frag_active) {
				ws_send_close(c, 1002, "");
				return;
			}
			if (opcode == 0 && !c->ws_frag_active) {
				ws_send_close(c, 1002, "");
				return;
			}
			if (c->ws_frag.len + len > HTTPD_MAX_WS_MESSAGE) {
				ws_send_close(c, 1009, "");
				return;
			}
			if (buf_add(&c->ws_frag, data, (size_t)len) < 0) {
				http_close(c);
				return;
			}
			c->ws_frag_active = !fin;
			if (fin) {
				struct buf msg = c->ws_frag;
				memset(&c->ws_frag, 0, sizeof c->ws_frag);
				buf_consume(&c->in, hl + 4 + (size_t)len);
				if (c->ws_msg && !c->ws_close_sent)
					c->ws_msg(c, c->close_arg, msg.p ? msg.p : "", msg.len);
				buf_free(&msg);
				continue;
			}
		}
		buf_consume(&c->in, hl + 4 + (size_t)len);
	}
}
