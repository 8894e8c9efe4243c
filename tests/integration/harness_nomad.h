/* harness_nomad: nomad-local for integration tests and benchmarks.
 *
 * h_nomad_start() runs build/bin/nomad-local on a free loopback port with its state directory
 * inside the harness tmp dir and waits until it answers. Sandboxes outlive the agent by
 * design (like Nomad's tasks), so the harness kills every sandbox of every agent it started
 * when the test program ends (atexit and the harness's fatal signals), by running
 * `nomad-local -state DIR -cleanup`. Also here: a small blocking WebSocket client for the exec
 * endpoint that shows every frame (close frames and a bare TCP close included), and an
 * event-stream reader that de-chunks the NDJSON body line by line.
 */
#ifndef POSEIDON_HARNESS_NOMAD_H
#define POSEIDON_HARNESS_NOMAD_H

#include <stddef.h>
#include <sys/types.h>

struct h_nomad {
	int port;
	pid_t pid;
	char url[96];     /* http://127.0.0.1:<port> */
	char state[512];  /* state directory */
	char images[512]; /* images directory, "" for the host root */
	char token[128];  /* ACL token, "" for none */
	char log[600];    /* the agent's log file */
	const char *const *args; /* more flags (e.g. "-disk-mb", "64"), NULL-terminated; kept for restarts */
};

/* Starts nomad-local (token NULL or "": ACLs disabled). 0 or -1. */
int h_nomad_start(struct h_nomad *n, const char *token);
/* Same with an images directory (NULL: none). */
int h_nomad_start_images(struct h_nomad *n, const char *token, const char *images);
/* Same with more flags (args NULL-terminated, static storage: restarts pass them again). */
int h_nomad_start_args(struct h_nomad *n, const char *token, const char *images, const char *const *args);
/* SIGTERM and wait; the sandboxes keep running. Returns the exit status. */
int h_nomad_stop(struct h_nomad *n);
/* Starts the agent again on the same port and state directory. 0 or -1. */
int h_nomad_restart(struct h_nomad *n);
/* Kills the sandboxes recorded in n's state directory (also done at exit for every agent). */
void h_nomad_cleanup(struct h_nomad *n);

/* Headers for h_http with the agent's token (NULL-terminated list in a static buffer). */
const char *const *h_nomad_headers(const struct h_nomad *n);
/* PUT /v1/jobs with body; returns the HTTP status or -1, copies the EvalID when eval != NULL. */
int h_nomad_register(struct h_nomad *n, const char *body, char eval[64]);
/* Waits until job_id has an allocation in client status "running"; copies its ID. 0 or -1. */
int h_nomad_wait_running(struct h_nomad *n, const char *job_id, char alloc_id[64], int timeout_ms);
/* A job body for a runner-like job: group default-group running `sleep infinity` in the host
 * root plus a count-0 config group; extra is spliced into the group (e.g. a network block),
 * may be "". Caller frees. */
char *h_nomad_job(const char *id, int memory_max_mb, const char *extra_group_json);

/* ---- WebSocket client (blocking) ---- */
struct h_ws {
	int fd;
	char *rbuf;
	size_t rlen, rcap;
};
/* Connects and upgrades; returns the HTTP status (101 on success) or -1. On a non-101
 * answer the body is copied into body (if given). */
int h_ws_connect(struct h_ws *w, int port, const char *path_query, const char *token, char *body, size_t cap);
int h_ws_send_text(struct h_ws *w, const char *text);
/* Reads one frame: returns its opcode (1 text, 8 close...), 0 on a TCP close, -1 on timeout.
 * *payload is malloc'd (NUL-terminated), caller frees. */
int h_ws_recv(struct h_ws *w, int timeout_ms, char **payload, size_t *len);
void h_ws_close(struct h_ws *w);

struct h_exec {
	char *out, *err;      /* decoded stdout / stderr (NUL-terminated) */
	size_t out_len, err_len;
	int exited, exit_code;
	int stdout_closed, stderr_closed;
	int close_code;       /* close frame code, 0 when none */
	char close_reason[256];
	int tcp_closed;       /* the server hung up (after the exit frame, without a close frame) */
	char *frames;         /* every text frame, one per line */
	double seconds;
};
/* Runs cmd_json (a JSON array) in the allocation; stdin_data (may be NULL) is sent, then
 * {"stdin":{"close":true}} when close_stdin. Returns 0 when the session ended (exit frame or
 * close frame), -1 on transport failure/timeout. */
int h_nomad_exec(struct h_nomad *n, const char *alloc_id, const char *cmd_json, int tty, const char *stdin_data,
		 int close_stdin, struct h_exec *res);
void h_exec_free(struct h_exec *res);

/* ---- event stream ---- */
struct h_stream {
	int fd;
	int status;
	int chunked;
	char *buf;   /* raw bytes after the headers */
	size_t len, cap;
	char *body;  /* de-chunked body not yet returned as lines */
	size_t blen, bcap;
};
/* GET path_query on port; returns the HTTP status or -1. */
int h_stream_open(struct h_stream *s, int port, const char *path_query, const char *token);
/* Next line without its '\n' (malloc'd), or NULL on timeout or end of stream. */
char *h_stream_line(struct h_stream *s, int timeout_ms);
void h_stream_close(struct h_stream *s);

/* ---- a machine next door, for outbound network tests ----
 * A TCP server in a network namespace of its own, joined to this host by a veth pair
 * (host 10.203.<k>.1/30, server 10.203.<k>.2/30, k from the test's pid): reachable from the
 * host's network stack, and so from a runner with outbound network, while no packet leaves the
 * machine. It answers every connection with "hello from next door\n" and closes. */
struct h_netns_server {
	char ns[32], veth[16];
	char ip[16]; /* the server's address */
	int port;
	pid_t pid;
};
int h_netns_server_start(struct h_netns_server *s);
/* Stops the server and removes the namespace and the veth pair. */
void h_netns_server_stop(struct h_netns_server *s);
#define H_NETNS_GREETING "hello from next door"

/* JSON shape check: every object key set and value type of `ours` must match `sample`
 * (null matches anything; objects listed as maps compare only the values they share).
 * Returns 0, or -1 with the first difference described in why. */
int h_json_same_shape(const char *sample_json, const char *ours_json, char *why, size_t cap);

#endif
