/* poseidon-wsgate: what its modules share (see main.c for the process picture).
 *
 *   main.c       configuration, signals, the libwebsockets context and its loop, shutdown
 *   protocol.c   the one lws protocol: routes lws callbacks to the two modules below
 *   handshake.c  the HTTP side of the route: checks in the reference's order, answers
 *                401/404/405/410/400/403 with real HTTP responses, keeps the upgrade's facts
 *   session.c    one execution after the upgrade: Nomad exec sessions, the client's message
 *                queue, timers (time limit, grace, stderr drain, OOM wait, runner poll, ping)
 *   destroyer.c  a thread that destroys runners (Redis, then a Nomad purge) off the loop
 *   listener.c   the listening socket (SO_REUSEPORT: several gateways may share the port)
 * Everything runs on the loop's thread except destroyer's worker, which shares nothing with
 * it but a locked queue of runner ids.
 */
#ifndef POSEIDON_WSGATE_GATE_H
#define POSEIDON_WSGATE_GATE_H

#include <libwebsockets.h>

#include "config.h"
#include "model.h"
#include "nomad.h"
#include "store.h"

#define GATE_PING_MS         30000 /* a ping to the client this often (nginx's idle default is 60 s) */
#define GATE_QUEUE_MAX       64    /* messages queued toward a client before the program is paused */
#define GATE_GRACE_MS        3000  /* after 0x1C: the program's time to end before its runner is destroyed */
#define GATE_REQUIT_MS       400   /* 0x1C again until the program ends (a starting bash ignores the first) */
#define GATE_OOM_WAIT_MS     1000  /* exit 128: how long to wait for the allocation's OOM mark */
#define GATE_OOM_STEP_MS     100
#define GATE_POLL_MS         500         /* how often a running execution looks at its runner in Redis */
#define GATE_STDERR_DRAIN_MS 2000        /* after the program's end: stderr's time to reach its end */
#define GATE_ERR_KILL_MS     500         /* after its 0x1C: the stderr session's time to end */
#define GATE_SHUTDOWN_MS     3000        /* SIGTERM: time to flush the terminal messages */
#define GATE_EXEC_ID_MAX     64
#define GATE_VHOST           "poseidon-wsgate"
#define GATE_LISTEN_PROTOCOL "poseidon-wsgate-listen"

struct destroyer;
struct session;

struct gate {
	struct config cfg;
	struct nomad_endpoint ep;
	struct store *store; /* the loop's connection (blocking round trips; Redis is near) */
	struct lws_context *ctx;
	struct destroyer *destroyer;
	struct session *sessions; /* upgraded sessions, for shutdown */
	int nsessions;
	int ping_ms;
	int stopping; /* SIGTERM seen: new requests get 503, sessions end with an error */
};

/* handshake.c: LWS_CALLBACK_HTTP_CONFIRM_UPGRADE and LWS_CALLBACK_HTTP. Return what lws
 * expects from those callbacks. */
int handshake_confirm_upgrade(struct gate *g, struct lws *wsi);
int handshake_http(struct gate *g, struct lws *wsi);

/* session.c */
/* A session for an upgrade that passed the checks (not yet taken); owned by the wsi from now. */
struct session *session_new(struct gate *g, struct lws *wsi, const char *runner_id, const char *exec_id,
                            const char *alloc_id);
/* The upgrade is done: take the execution, send start, run the program. */
void session_established(struct session *s);
void session_on_receive(struct session *s, const void *in, size_t len);
int session_on_writeable(struct session *s);
/* The client sent a close frame; returns what LWS_CALLBACK_WS_PEER_INITIATED_CLOSE returns. */
int session_on_peer_close(struct session *s);
void session_on_ping_timer(struct session *s);
/* The client's connection is gone (LWS_CALLBACK_CLOSED / WSI_DESTROY); safe to call twice. */
void session_on_client_gone(struct session *s);
/* SIGTERM: every session ends with an error message now. */
void session_shutdown_all(struct gate *g);
/* Upgraded sessions whose client is still connected. */
int session_clients(const struct gate *g);
/* Upgraded sessions of runner whose client is connected; with runner NULL, every session whose
 * program has not ended (a client gone leaves its program to end within the grace). */
int session_count(const struct gate *g, const char *runner);
/* The session owned by wsi, or NULL. */
struct session *session_of(struct lws *wsi);

/* destroyer.c */
struct destroyer *destroyer_start(const struct config *c);
/* Queues runner_id for store_destroy + nomad_job_purge; never blocks. */
void destroyer_push(struct destroyer *d, const char *runner_id, const char *why);
/* Finishes the queue (at most timeout_ms) and stops the thread. */
void destroyer_stop(struct destroyer *d, int timeout_ms);

/* listener.c */
/* A non-blocking listening socket on address:port with SO_REUSEPORT; the fd, or -1 with e. */
int listener_open(const char *address, int port, struct perr *e);
/* Hands fd to the context's loop; accepted connections become HTTP connections of GATE_VHOST. */
int listener_attach(struct gate *g, int fd);
/* Stops accepting (another gateway on the port takes new connections). */
void listener_close(void);
/* A connection's descriptor was given back: a listener waiting for one tries again. */
void listener_descriptor_freed(void);
int listener_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len);

/* protocol.c */
extern const struct lws_protocols gate_protocols[];

#endif
