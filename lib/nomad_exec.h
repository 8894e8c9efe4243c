/* nomad_exec: running a command in an allocation through Nomad's alloc exec WebSocket
 * (GET /v1/client/allocation/<alloc>/exec, docs/nomad-api.md 4.9 and its exec frames).
 *
 * A libwebsockets client, usable two ways:
 *   - event loop (poseidon-wsgate): nomad_exec_start() on the caller's own lws_context; results
 *     arrive through callbacks while the caller services that context;
 *   - synchronous (poseidon-api's FastCGI workers): nomad_exec_run() runs one session to its end
 *     on a context the module creates on first use in the process and then reuses.
 * The module alone knows the exec frames: stdin goes out base64 in frames of at most 2048 raw
 * bytes, stdout/stderr come back as raw bytes, the exit frame becomes an exit code, close frames
 * and dropped connections become struct perr. No gzip, no subprotocol, no permessage-deflate:
 * connections are bound to a client-only vhost ("nomad-exec", "nomad-exec-tls-<hash>") that the
 * module adds to the context on first use, so the caller's protocols and extensions never touch
 * them and the caller need not list nomad_exec_protocol() anywhere.
 *
 * Errors (struct perr kinds):
 *   PERR_NOMAD_UNREACHABLE  connect, DNS, TLS or handshake failure; connection dropped before the
 *                           exit frame (failure NOMAD_EXEC_FAIL_DROPPED)
 *   PERR_NOMAD_OVERLOAD     HTTP 429 or 5xx instead of 101
 *   PERR_NOMAD_INTERNAL     any other non-101 answer; a close frame before the exit frame (the
 *                           message holds its code and reason verbatim, so callers can look for
 *                           "Unknown allocation"); an unusable frame; a timeout in nomad_exec_run
 *   PERR_BAD_REQUEST        options that cannot make a request (no command, bad alloc id,
 *                           request line longer than lws 4.1 can send)
 *   PERR_UNKNOWN            a local failure: out of memory, a stdin source or output sink error
 * Nothing here is thread-safe: one thread drives a context (as libwebsockets requires).
 */
#ifndef POSEIDON_NOMAD_EXEC_H
#define POSEIDON_NOMAD_EXEC_H

#include <stddef.h>
#include <sys/types.h>

#include "err.h"
#include "nomad.h"

struct lws_context;
struct lws_protocols;

#define NOMAD_EXEC_DEFAULT_TASK    "default-task"
#define NOMAD_EXEC_STDIN_CHUNK     2048          /* raw stdin bytes per frame (the Go client's size) */
#define NOMAD_EXEC_STDIN_QUEUE_MAX (64 * 1024)   /* bytes nomad_exec_write_stdin may hold unsent */
#define NOMAD_EXEC_HEARTBEAT_MS    10000         /* "{}" while connected, as the Go client does */
#define NOMAD_EXEC_FRAME_MAX       (1024 * 1024) /* largest server message we reassemble */
/* libwebsockets 4.1 formats the request line into 2048 bytes ("GET <path> HTTP/1.1\r\n"), so
 * the path with its query can be at most this long; longer commands are PERR_BAD_REQUEST. */
#define NOMAD_EXEC_PATH_MAX     2032
#define NOMAD_EXEC_ALLOC_ID_MAX 64

/* What to run. Strings are copied by nomad_exec_start/nomad_exec_run; nothing is kept. */
struct nomad_exec_opts {
	const char *alloc_id;    /* letters, digits and '-' (a UUID) */
	const char *task;        /* NULL or "": NOMAD_EXEC_DEFAULT_TASK */
	const char *const *argv; /* NULL-terminated, argv[0] required: the "command" JSON array */
	int tty;
	int tty_height, tty_width; /* when either is > 0, one tty_size frame is sent after connect */
	int heartbeat_ms;          /* "{}" this often while connected; 0: NOMAD_EXEC_HEARTBEAT_MS */
};

/* Why a session failed (the perr says it in words; this is for code that must tell them apart). */
enum nomad_exec_failure {
	NOMAD_EXEC_FAIL_NONE = 0,
	NOMAD_EXEC_FAIL_CONNECT,     /* TCP/TLS/DNS/handshake: PERR_NOMAD_UNREACHABLE */
	NOMAD_EXEC_FAIL_HTTP,        /* non-101 answer: PERR_NOMAD_OVERLOAD or PERR_NOMAD_INTERNAL */
	NOMAD_EXEC_FAIL_CLOSE_FRAME, /* Nomad sent a close frame before the exit frame */
	NOMAD_EXEC_FAIL_DROPPED,     /* the connection ended before the exit frame, without a close
	                              * frame. Poseidon (Go) counted this as exit 0; a file copy must not */
	NOMAD_EXEC_FAIL_PROTOCOL,    /* a frame we cannot use (not JSON, bad base64, too large) */
	NOMAD_EXEC_FAIL_LOCAL,       /* out of memory, stdin source/sink failure, timeout (sync mode) */
};

/* ---- event-loop mode ----------------------------------------------------------------------- */

/* Called from inside lws_service() of the context given to nomad_exec_start, never from inside
 * nomad_exec_start itself. Every pointer may be NULL. After nomad_exec_start returned a handle:
 *   - on_stdout/on_stderr: decoded output bytes, in order (with tty, stderr comes merged into stdout);
 *   - then exactly one of on_exit (the exit frame; a missing exit_code is 0) or on_error
 *     (e and failure describe it; e is valid only during the call), unless nomad_exec_cancel was
 *     called, which suppresses all of them;
 *   - on_stdin_ready when a nomad_exec_write_stdin that accepted less than it was given is followed
 *     by the queue draining to half or less;
 *   - on_closed always, last, exactly once. The handle is freed right after it returns.
 * Callbacks may call nomad_exec_write_stdin/close_stdin/cancel on their own session (except from
 * on_closed). */
struct nomad_exec_callbacks {
	void (*on_stdout)(void *ud, const char *data, size_t len);
	void (*on_stderr)(void *ud, const char *data, size_t len);
	void (*on_exit)(void *ud, int exit_code);
	void (*on_error)(void *ud, const struct perr *e, enum nomad_exec_failure failure);
	void (*on_stdin_ready)(void *ud);
	void (*on_closed)(void *ud);
};

struct nomad_exec;

/* Opens the exec WebSocket on ctx, a context the caller services (TLS needs nothing of it: the
 * module's TLS vhost brings its own client TLS context with ep's CA, cert and key files). The
 * first call for a context adds the module's vhost to it. cb is copied; ud is passed back.
 * Returns the session, or NULL with e set and no callback ever made (bad options, out of memory,
 * or a failure lws meets before returning, e.g. a host name that does not resolve:
 * PERR_NOMAD_UNREACHABLE; a refused connection comes later, through on_error). Host names are
 * resolved with a blocking getaddrinfo (Debian's lws 4.1 has no async DNS). */
struct nomad_exec *nomad_exec_start(struct lws_context *ctx, const struct nomad_endpoint *ep,
                                    const struct nomad_exec_opts *o, const struct nomad_exec_callbacks *cb,
                                    void *ud, struct perr *e);

/* libwebsockets' log lines (lws_set_log_level's callback) as our debug lines "libwebsockets",
 * for every program that runs an lws context. */
void nomad_exec_lws_log(int level, const char *line);

/* Queues stdin bytes; they are sent in order, NOMAD_EXEC_STDIN_CHUNK per frame. Returns how many
 * were accepted (fewer than len, possibly 0, when the queue of NOMAD_EXEC_STDIN_QUEUE_MAX is
 * full: wait for on_stdin_ready), or -1 after nomad_exec_close_stdin, cancel or the end of the
 * session. Data queued before the connection is up is sent once it is. */
ssize_t nomad_exec_write_stdin(struct nomad_exec *x, const void *data, size_t len);
/* Sends {"stdin":{"close":true}} once everything queued has gone out. Idempotent. */
void nomad_exec_close_stdin(struct nomad_exec *x);
/* Closes the connection: no callback follows but on_closed. Idempotent. */
void nomad_exec_cancel(struct nomad_exec *x);
/* Output back-pressure: with pause set the session stops reading Nomad's socket (lws rx flow
 * control), so a program that writes faster than the caller can pass its output on blocks in
 * its own write instead of growing our memory; clearing it resumes. A message already being
 * delivered may still complete its callbacks. Heartbeats and stdin keep flowing. */
void nomad_exec_pause_output(struct nomad_exec *x, int pause);

/* The lws protocol the sessions are bound to (name "nomad-exec"). Callers do not need it: the
 * module's own vhost carries it. Listing it in another vhost is harmless; it ignores connections
 * it does not own. */
const struct lws_protocols *nomad_exec_protocol(void);

/* ---- synchronous mode ---------------------------------------------------------------------- */

/* Stdin source: fills buf with at most cap bytes and returns how many, 0 at EOF (then the stdin
 * close frame is sent), or -1 to abort the session. Called only when the socket can take a frame,
 * so stdin is streamed, never buffered whole. Sinks get decoded output and return 0, or -1 to
 * abort the session. */
struct nomad_exec_io {
	ssize_t (*read_stdin)(void *ud, void *buf, size_t cap);   /* NULL: no stdin frame at all and
	                                                           * stdin is never closed (ls, cat) */
	int (*on_stdout)(void *ud, const char *data, size_t len); /* NULL: discarded */
	int (*on_stderr)(void *ud, const char *data, size_t len); /* NULL: discarded */
	void *ud;
};

/* Runs one exec session to its end on the process's own context (created on first use, reused;
 * a forked child has its own). io may be NULL. timeout_ms <= 0 means no limit. Returns 0 with
 * *exit_code set when the exit frame arrived, else -1 with e set (*exit_code = -1) and *failure
 * (may be NULL) saying which kind of failure it was. */
int nomad_exec_run(const struct nomad_endpoint *ep, const struct nomad_exec_opts *o,
                   const struct nomad_exec_io *io, int timeout_ms, int *exit_code,
                   enum nomad_exec_failure *failure, struct perr *e);

/* Destroys the process's synchronous context, if any (for a clean exit or a leak check). The
 * next nomad_exec_run creates a new one. */
void nomad_exec_sync_shutdown(void);

/* ---- pure helpers (no I/O; exported for tests) ----------------------------------------------- */

/* Query-escapes s into out: letters, digits and -._~!$'()*,/:@ stay, space becomes '+', every
 * other byte %XX. Returns the length it needs (excluding the NUL); out holds it when < cap. */
size_t nomad_exec_query_escape(char *out, size_t cap, const char *s);

/* "/v1/client/allocation/<alloc>/exec?command=<json>&namespace=<ns>&task=<task>&tty=<bool>"
 * (keys sorted as the Go client sends them; ns NULL or "" means "default"). Returns its length,
 * or -1 with e set (PERR_BAD_REQUEST) when options are invalid or it needs cap bytes or more. */
int nomad_exec_request_path(char *out, size_t cap, const char *ns, const struct nomad_exec_opts *o,
                            struct perr *e);

/* Client frames into out (NUL-terminated). Return the length, or -1 if cap is too small. */
#define NOMAD_EXEC_STDIN_FRAME_MAX (24 + 4 * ((NOMAD_EXEC_STDIN_CHUNK + 2) / 3) + 1)
int nomad_exec_frame_stdin(char *out, size_t cap, const void *data, size_t len);
int nomad_exec_frame_stdin_close(char *out, size_t cap); /* {"stdin":{"close":true}} */
int nomad_exec_frame_tty_size(char *out, size_t cap, int height, int width);
int nomad_exec_frame_heartbeat(char *out, size_t cap); /* {} */

/* One server frame, parsed. stdout/stderr point into the caller's decode buffer. */
struct nomad_exec_frame {
	const char *out; /* stdout bytes, or NULL */
	size_t out_len;
	const char *err; /* stderr bytes, or NULL */
	size_t err_len;
	int exited;    /* 1 for {"exited":true,...} */
	int exit_code; /* result.exit_code; 0 when absent */
};
/* Bytes of decode buffer enough for any frame of frame_len bytes. */
size_t nomad_exec_decode_cap(size_t frame_len);
/* Parses one text frame. Heartbeats, close markers and unknown keys leave everything 0/NULL.
 * Returns 0, or -1 with e (PERR_NOMAD_INTERNAL) for a frame that is not a JSON object or whose
 * data is not valid base64 or does not fit buf. */
int nomad_exec_parse_frame(const char *json, size_t len, struct nomad_exec_frame *f, char *buf, size_t cap,
                           struct perr *e);

/* The perr for a non-101 answer with this HTTP status. */
void nomad_exec_http_error(struct perr *e, int status);
/* The perr for a close frame payload (2-byte big-endian code, then the reason), or for len < 2 a
 * close without status. */
void nomad_exec_close_error(struct perr *e, const unsigned char *payload, size_t len);

#endif
