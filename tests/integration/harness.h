/* harness: real services for integration tests and benchmarks.
 *
 * Starts redis-server, lighttpd with poseidon-api workers (or nginx or Apache in front of them,
 * see enum h_front_server), nomad-local and the daemons on free loopback ports inside one
 * temporary directory, and stops all of them when the test program exits: normally (atexit), on
 * a signal, and even when it crashes, because every child receives PR_SET_PDEATHSIG. Programs are found in
 * $POSEIDON_BIN_DIR, the source tree (for lighttpd.conf and deploy/) in $POSEIDON_SRC_DIR; the Makefile sets
 * both. Nothing here talks to anything but 127.0.0.1.
 */
#ifndef POSEIDON_HARNESS_H
#define POSEIDON_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

#include "config.h"
#include "harness_nomad.h"
#include "store.h"

/* The per-process temporary directory (created on first use, removed at exit). */
const char *h_tmpdir(void);
/* A loopback TCP port that was free a moment ago. */
int h_free_port(void);
/* Directory of the built programs / of the source tree. */
const char *h_bin_dir(void);
const char *h_src_dir(void);

/* Starts argv[0] (a path) with extra "K=V" variables added to the environment, stdout and
 * stderr appended to logfile (NULL: <tmpdir>/<basename>.log), in its own process group. The
 * child is killed when this process dies. Returns its pid or -1. */
pid_t h_spawn(char *const argv[], char *const extra_env[], const char *logfile);
/* SIGTERM to the process group, wait up to 5 s, then SIGKILL. Returns the exit status. */
int h_stop(pid_t pid);
/* SIGKILL to the process group and reap it. */
void h_kill(pid_t pid);
/* Stops every child still running (also called at exit). */
void h_stop_all(void);
/* Waits until 127.0.0.1:port accepts a connection; 0 on success, -1 on timeout. */
int h_wait_port(int port, int timeout_ms);
/* Sleeps ms milliseconds. */
void h_sleep_ms(int ms);
/* Monotonic time in milliseconds. */
long long h_now_ms(void);

/* A redis-server on a free port with its data dir under tmpdir (appendonly on). */
struct h_redis {
	int port;
	pid_t pid;
	char dir[512]; /* its data dir; the unix socket is <dir>/redis.sock */
};
int h_redis_start(struct h_redis *r);
/* Stops it if running and starts it again on the same port and data directory. */
int h_redis_restart(struct h_redis *r);
/* Runs a redis-cli command against it and returns its trimmed output (static buffer). */
const char *h_redis_cli(const struct h_redis *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same as an integer (0 when the answer is not one). */
long long h_redis_int(const struct h_redis *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Waits until environment env's pool holds at least n ready runners; 0, or -1 after timeout_ms. */
int h_wait_pool(const struct h_redis *r, long long env, int n, int timeout_ms);

/* Which web server fronts the stack. nginx and Apache run the repository's site files
 * (deploy/nginx/poseidon.conf, deploy/apache/poseidon.conf) on the stack's own port and paths, in
 * the foreground, with the workers under spawn-fcgi + multiwatch on a unix socket in the run dir,
 * as deploy/systemd/poseidon-api-spawnfcgi.service runs them. Run as root, the web server's
 * workers run as www-data, which owns that socket. */
enum h_front_server {
	H_FRONT_DEFAULT = 0, /* $POSEIDON_TEST_FRONT ("lighttpd", "nginx", "apache"), else lighttpd */
	H_FRONT_LIGHTTPD,
	H_FRONT_NGINX,
	H_FRONT_APACHE,
};
/* "lighttpd", "nginx" or "apache" (the default resolved as h_stack_start does). */
const char *h_front_name(enum h_front_server server);
/* nginx -t or apache2 -t on the site file as shipped, with its own defaults, in the harness's
 * main context. Returns the exit status (0: accepted; -1: could not run, or lighttpd, whose
 * file needs its variables) and the server's output in out. */
int h_front_check_site(enum h_front_server server, char *out, size_t cap);

/* The web front: lighttpd with poseidon-api FastCGI workers (or nginx or Apache, see above). */
struct h_front_opts {
	int workers;            /* 0: 2 */
	const char *token;      /* server.token, NULL: none */
	/* extra POSEIDON_* "K=V" for the workers, NULL-terminated. The front takes two of them
	 * too: POSEIDON_SERVER_MAXBODYSIZE is its body limit (as the workers' default is when it
	 * is not given), POSEIDON_FRONT_WRITE_IDLE its write idle limit in seconds (default 60). */
	const char *const *env;
	int valgrind;           /* run workers under valgrind (leak check) */
	enum h_front_server server;
};
struct h_stack {
	struct h_redis redis;
	struct h_nomad nomad; /* when started with h_stack_start_nomad (port 0 otherwise) */
	pid_t refill;
	int port; /* the front (lighttpd, nginx or Apache) */
	int wsgate_port;
	pid_t lighttpd; /* the web server: lighttpd, or nginx or Apache (their master process) */
	char base[128]; /* http://127.0.0.1:<port>/api/v1 */
	char rundir[512];
	enum h_front_server server; /* which one runs (never H_FRONT_DEFAULT once started) */
	/* nginx and Apache only: spawn-fcgi's process (multiwatch, execed in it) and its group, the
	 * workers on <rundir>/api.sock; their environment, kept for h_stack_restart_workers. Tests
	 * that reach into lighttpd's process group for its workers assume lighttpd. */
	pid_t workers;
	char **workers_env;
	/* what the front was given: the workers' server.maxbodysize (bytes), which is its own body
	 * limit, and its write idle limit (seconds) */
	long long maxbody;
	int write_idle;
};
/* Starts Redis (unless redis.port is already set) and the front with its workers. 0 or -1. */
int h_stack_start(struct h_stack *s, const struct h_front_opts *o);
void h_stack_stop(struct h_stack *s);
/* nginx and Apache fronts: stops the workers as systemd's KillMode=mixed does (SIGTERM to
 * multiwatch, which passes it on) and starts them again on the same socket, waiting until
 * they accept. 0 or -1. */
int h_stack_restart_workers(struct h_stack *s);
/* Stops the workers of an nginx or Apache front (the front keeps running). */
void h_stack_stop_workers(struct h_stack *s);
/* Starts nomad-local for the stack (before h_stack_start, so the workers know its port); a
 * second call restarts it on the same port and state. 0 or -1. */
int h_stack_start_nomad(struct h_stack *s);
/* Starts (another) poseidon-refill against the stack's Redis and nomad-local; extra env optional. */
pid_t h_stack_start_refill(struct h_stack *s, const char *const *env);
/* The POSEIDON_* variables that point a program at the stack's Redis and Nomad, NULL-terminated
 * (static storage, valid until the next call). */
char *const *h_stack_env(const struct h_stack *s);
/* Defaults with redis.port and nomad.port of the stack: what a test's own lib/ calls use. */
void h_stack_config(const struct h_stack *s, struct config *c);
/* A lib/store connection to the stack's Redis (store_close when done), NULL on failure. */
struct store *h_stack_store(const struct h_stack *s);
/* Number of sanitizer reports (ASan/UBSan builds) left in dir by the programs; prints them. */
int h_sanitizer_reports(const char *dir);

/* A finished HTTP exchange. */
struct h_resp {
	long status;
	char *body; /* NUL-terminated; owned, free with h_resp_free */
	size_t len;
	char *headers; /* raw response header block, lower-cased names not guaranteed */
	double seconds;
};
/* method, url, optional body (len may be -1 for strlen), NULL-terminated extra header lines.
 * Returns 0 when an HTTP answer arrived (any status), -1 on transport failure. */
int h_http(struct h_resp *r, const char *method, const char *url, const char *body, long len,
           const char *const *headers);
void h_resp_free(struct h_resp *r);
/* method on s->base + path (e.g. "/runners") with an optional body; the response body is copied
 * into out (when not NULL, truncated to cap). Returns the status, or -1 on transport failure. */
long h_api(const struct h_stack *s, const char *method, const char *path, const char *body, char *out, size_t cap);
/* data as base64 (libwebsockets' encoder), as CodeOcean sends file contents; malloc'd, NULL on
 * failure. */
char *h_base64(const void *data, size_t len);
/* Copies one file into the runner through PATCH /runners/<id>/files; returns the status. */
long h_copy_file(const struct h_stack *s, const char *runner, const char *path, const void *data, size_t len);
/* The whole file at path (malloc'd, NUL-terminated; its length in *len when not NULL), NULL when
 * it cannot be read. */
char *h_read_file(const char *path, size_t *len);
/* Value of a response header (case-insensitive), copied into out; 1 if found. */
int h_header(const struct h_resp *r, const char *name, char *out, size_t cap);
/* 0 when r is a 200 with Content-Type application/yaml whose body is api/openapi.yaml of the
 * source tree byte for byte (the worker embeds the file at build time); else 1 and why. */
int h_openapi_mismatch(const struct h_resp *r, char *why, size_t cap);

/* ---- poseidon-wsgate ---- */
/* Starts poseidon-wsgate on s->wsgate_port (picked here when still 0; lighttpd proxies the
 * WebSocket route to it) against the stack's Redis and Nomad, and waits until it listens.
 * Returns its pid or -1. Its log is <tmpdir>/wsgate-<port>-<n>.log; sanitizer reports go to
 * s->rundir like the workers'. h_stop(pid) stops it (SIGTERM). */
pid_t h_stack_start_wsgate(struct h_stack *s);
/* The same with extra "K=V" variables (e.g. POSEIDON_SERVER_TOKEN=...) and extra arguments
 * (e.g. "-ping-ms", "300"), each NULL-terminated or NULL. */
pid_t h_stack_start_wsgate_with(struct h_stack *s, const char *const *env, const char *const *args);

#endif
