/* httpd: the HTTP/1.1 and WebSocket server of nomad-local, on the shared event loop.
 *
 * One listening socket; each connection parses requests with bounded buffers (request line
 * and headers HTTPD_MAX_HEADER, bodies HTTPD_MAX_BODY, Content-Length or chunked, Expect:
 * 100-continue answered), hands every complete request to the router and writes responses the
 * way Go's net/http does (Date, Content-Length, keep-alive). A handler answers once with
 * http_respond(), or turns the connection into a chunked stream (http_stream_begin, the event
 * stream) or into a WebSocket (http_ws_accept, exec). Streams and WebSockets report their end
 * through the close callback; the connection memory is freed after the loop batch, so the
 * owner must drop its pointer in that callback.
 */
#ifndef NL_HTTPD_H
#define NL_HTTPD_H

#include <stddef.h>

#define HTTPD_MAX_HEADER (64 * 1024)
#define HTTPD_MAX_BODY (16 * 1024 * 1024)
#define HTTPD_MAX_HEADERS 100
#define HTTPD_MAX_WS_MESSAGE (1024 * 1024)

struct http_conn;

struct http_header {
	char *name;
	char *value;
};

struct http_req {
	char method[16];
	char *target;   /* raw request-target */
	char *path;     /* percent-decoded path (Go's URL.Path) */
	char *query;    /* raw query string, "" when none */
	struct http_header headers[HTTPD_MAX_HEADERS];
	int nheaders;
	char *body;     /* NUL-terminated */
	size_t body_len;
	int has_body;   /* Content-Length > 0 or chunked */
	int http10;
};

typedef void (*http_handler)(struct http_conn *c, struct http_req *r);

int httpd_listen(const char *addr, int port, http_handler h);
void httpd_close(void);
/* Closes every connection (streams and WebSockets included). */
void httpd_close_all(void);

/* Case-insensitive header lookup; NULL when absent. */
const char *http_header(const struct http_req *r, const char *name);
/* First value of a query parameter, decoded (Go's URL.Query().Get); returns 1 when present.
 * out is "" when absent. */
int http_query(const struct http_req *r, const char *key, char *out, size_t cap);
/* Iterates every value of key: call with *pos = 0; returns 1 and fills out while found. */
int http_query_next(const struct http_req *r, const char *key, size_t *pos, char *out, size_t cap);
/* Peer address for logs. */
const char *http_peer(const struct http_conn *c);

/* A complete response. extra_headers: "Name: value\r\n" lines or NULL. content_type NULL: none. */
void http_respond(struct http_conn *c, int status, const char *content_type, const char *extra_headers,
		  const char *body, size_t len);

/* Chunked streaming response. */
int http_stream_begin(struct http_conn *c, int status, const char *content_type, const char *extra_headers);
int http_stream_write(struct http_conn *c, const char *data, size_t len);

/* Bytes queued and not yet written to the socket. */
size_t http_out_pending(const struct http_conn *c);
/* Called when the connection closes (peer gone, error, or after http_close). */
void http_on_close(struct http_conn *c, void (*cb)(struct http_conn *c, void *arg), void *arg);
/* Called when the output queue drops to or below low_water after having been above it. */
void http_on_drain(struct http_conn *c, size_t low_water, void (*cb)(struct http_conn *c, void *arg));
/* Stops/starts reading from the peer (back-pressure). */
void http_pause_read(struct http_conn *c, int pause);
/* Closes once everything queued is written. */
void http_close_after_flush(struct http_conn *c);
/* Closes now (queued output is dropped). */
void http_close(struct http_conn *c);

/* WebSocket: writes the 101 answer and switches the connection. on_message receives every text or
 * binary message; on_close comes through http_on_close. */
int http_ws_accept(struct http_conn *c, struct http_req *r,
		   void (*on_message)(struct http_conn *c, void *arg, const char *data, size_t len), void *arg);
int ws_send_text(struct http_conn *c, const char *data, size_t len);
/* Sends a close frame (code, reason) and closes after flushing. */
void ws_send_close(struct http_conn *c, int code, const char *reason);

#endif
