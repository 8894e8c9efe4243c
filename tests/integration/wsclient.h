/* A raw-socket WebSocket client for the tests and benchmarks that talk to poseidon-wsgate, directly
 * or through a front's upgrade proxy: the TCP connection to 127.0.0.1, the HTTP handshake (or any
 * other request head sent as is), masked frames out, and frames in, continuations joined. It shows
 * everything a server sends (pings, close frames, refusals with their bodies) and decides nothing:
 * the callers assert. Frames are read in place: wsc_next hands out a pointer into the receive
 * buffer, so that a benchmark reads as fast as the kernel delivers; wsc_read copies for the rest.
 * Not thread-safe per connection; any number of connections may live in as many threads. */
#ifndef POSEIDON_TESTS_WSCLIENT_H
#define POSEIDON_TESTS_WSCLIENT_H

#include <stddef.h>

/* Opcodes of RFC 6455 section 5.2. */
enum { WSC_TEXT = 1, WSC_BINARY = 2, WSC_CLOSE = 8, WSC_PING = 9, WSC_PONG = 10 };

/* One connection. Fields are the module's; a caller only tests fd >= 0 or sets {.fd = -1} so
 * that wsc_close of a connection never opened is harmless. */
struct wsc {
	int fd;
	unsigned char *buf; /* received, unread bytes are buf[off, len) */
	size_t off, len, cap;
	unsigned char *msg; /* a fragmented message being joined */
	size_t mlen, mcap;
	int mop; /* its opcode; 0 when none is under way */
	char *cpath; /* upgraded on this /api/v1 path while the contract log records (contract.h) */
};

/* Connects to 127.0.0.1:port (TCP_NODELAY). 0, or -1 with c closed (fd -1, nothing held). */
int wsc_connect(struct wsc *c, int port);

/* Sends the request head `request` (NUL-terminated, sent as it is) on a connected c and reads the
 * response head and, unless the status is 101, its Content-Length body. Returns the status, or -1
 * when the connection failed or no head came. head (if not NULL) receives the response head, body (if
 * not NULL) the body; both NUL-terminated and cut to their caps, the body empty after a 101. Bytes
 * after a 101 head stay buffered for wsc_next. */
int wsc_request(struct wsc *c, const char *request, char *head, size_t head_cap, char *body, size_t body_cap);

/* Connects to 127.0.0.1:port and sends GET path_query, with the WebSocket upgrade when upgrade is
 * set, and the extra header lines ("Name: value", NULL-terminated list; NULL for none). Returns the
 * status (101: frames follow), a refusal's body in body as wsc_request does, or -1 with c closed.
 * Whatever it returns, wsc_close(c) afterwards is correct. */
int wsc_open(struct wsc *c, int port, const char *path_query, int upgrade, const char *const *headers,
             char *body, size_t body_cap);

/* Sends one masked, unfragmented frame of any length. 0 or -1. */
int wsc_send(struct wsc *c, int opcode, const void *data, size_t len);

/* Sends a close frame with the status code and no reason. 0 or -1. */
int wsc_send_close(struct wsc *c, int code);

/* The next whole message within timeout_ms: continuation frames are joined, control frames (close,
 * ping, pong) come alone, also between the fragments of a message. Returns 1 with *op, *data and
 * *n set: *data points into c's buffers, is not NUL-terminated, and stays valid only until the next
 * call on c. Returns 0 when the server hung up, -1 on timeout or on a frame no server may send
 * (masked, or a continuation without a start). */
int wsc_next(struct wsc *c, int timeout_ms, int *op, const unsigned char **data, size_t *n);

/* wsc_next with a copy: returns the message's opcode with *data (malloc'd, NUL-terminated, the
 * caller frees) and *n; 0 when the server hung up, -1 on timeout or error, *data NULL then. */
int wsc_read(struct wsc *c, int timeout_ms, char **data, size_t *n);

/* Closes the socket and frees the buffers; c is left closed (fd -1) and may be opened again. */
void wsc_close(struct wsc *c);

#endif
