/* poseidon-wsgate: the WebSocket gateway that streams executions (docs/wsgate.md).
 *
 * Module design notes. The web server (lighttpd, nginx or Apache) proxies
 * GET /api/v1/runners/{id}/websocket with its upgrade to this process on wsgate.address:
 * wsgate.port (docs/architecture.md). poseidon-api has stored the prepared execution in Redis
 * (exec:<id>, POST /execute); the gateway checks the handshake, takes the execution (single
 * use), opens Nomad's exec WebSocket(s) to the runner's allocation and relays: the client's
 * frames become the program's stdin, its output becomes stdout/stderr messages, and exactly one
 * exit, timeout or error ends the stream. One thread runs one libwebsockets context for both
 * sides (the server vhost here, lib/nomad_exec's client vhost for Nomad) and asks Redis with
 * blocking round trips; a second thread destroys runners (destroyer.c).
 *
 * State: none that matters outside a live connection. Runners, deadlines and prepared
 * executions live in Redis, so any number of gateways may run behind the proxy (they may even
 * share the port: SO_REUSEPORT), and a restart loses no runner and no execution that was not
 * yet connected. What a restart does lose are the open streams: on SIGTERM or SIGINT every open
 * execution receives the terminal message {"type":"error","data":"Error executing the request"} and
 * close 1000 rather than a silent cut, its program receives SIGQUIT (0x1C on its tty), new requests
 * are answered 503, and the process exits once the messages are out (at most GATE_SHUTDOWN_MS).
 * SIGPIPE is ignored. Under systemd (Type=notify) it sends READY=1 once it listens, WATCHDOG=1 from
 * a loop timer and STOPPING=1 on SIGTERM (lib/sdnotify; nothing happens outside systemd).
 *
 * Flags: -config FILE (as every program), -ping-ms N (client ping interval, default 30000;
 * tests shorten it). Configuration keys: wsgate.address, wsgate.port, server.token,
 * server.interactivestderr, nomad.*, redis.*, logger.*.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "gate.h"
#include "help.h"
#include "log.h"
#include "nomad_exec.h"
#include "sdnotify.h"
#include "version.h"

#define HEADER_DATA_MAX 8192 /* request headers: CodeOcean adds tracing headers */
#define HEADER_POOL     256  /* handshakes in progress at once */
#define HTTP_TIMEOUT_S  15   /* a request must arrive within this (like the reference's ReadHeaderTimeout) */

static volatile sig_atomic_t got_signal;
static struct lws_context *signal_ctx;

static void on_signal(int sig)
{
	got_signal = sig;
	if (signal_ctx)
		lws_cancel_service(signal_ctx); /* wakes lws_service: a write to its event pipe */
}

static const char help_text[] =
    "Usage: poseidon-wsgate [-config FILE] [-ping-ms N]\n"
    "the WebSocket gateway that streams Poseidon's executions\n"
    "\n"
    "The web server proxies GET /api/v1/runners/{id}/websocket with its upgrade to this\n"
    "process on wsgate.address:wsgate.port. The gateway checks the handshake, takes the\n"
    "execution poseidon-api prepared in Redis (POST /execute; single use), opens Nomad's exec\n"
    "stream to the runner and relays: the client's frames become the program's stdin, its\n"
    "output becomes stdout and stderr messages, and one exit, timeout or error message ends\n"
    "the stream. Any number of gateways may serve the same Redis, even on one port\n"
    "(SO_REUSEPORT). Configuration keys: wsgate.*, server.token, server.interactivestderr,\n"
    "nomad.*, redis.*, logger.*.\n"
    "\n"
    "Options:\n" HELP_OPT_CONFIG
    "  -ping-ms N         ping each client every N milliseconds (at least 100; default\n"
    "                     30000)\n" HELP_OPT_STANDARD
    "\n"
    "Environment:\n" HELP_ENV_CONFIG
    "  NOTIFY_SOCKET      systemd's notification socket (Type=notify): READY=1 once it\n"
    "                     listens, STOPPING=1 on SIGTERM\n"
    "  WATCHDOG_USEC, WATCHDOG_PID\n"
    "                     systemd's watchdog (WatchdogSec=): WATCHDOG=1 from a timer of the\n"
    "                     service loop\n"
    "  SSL_CERT_FILE      CA bundle for Nomad over HTTPS when nomad.tls.cafile is empty\n"
    "\n"
    "Files:\n" HELP_FILES_CONFIG
    "\n"
    "Signals:\n"
    "  SIGTERM, SIGINT    stop accepting, answer new requests 503, send every open execution\n"
    "                     its terminal error message and close 1000, send its program SIGQUIT\n"
    "                     (0x1C on its terminal), and exit 0 once the messages are out (at\n"
    "                     most 3 seconds)\n"
    "  SIGPIPE            ignored\n"
    "  other signals      their default action; open streams are cut, runners and\n"
    "                     executions not yet connected stay in Redis\n"
    "\n"
    "Exit status:\n"
    "  0                  stopped by SIGTERM or SIGINT; -help and -version done\n"
    "  1                  a configuration error (the log line names the key), cannot listen,\n"
    "                     or another start-up failure\n"
    "  2                  bad usage\n"
    "\n" HELP_SEE_ALSO;

static int usage(void)
{
	fprintf(stderr, "usage: poseidon-wsgate [-config FILE] [-ping-ms N] | -help | -version\n");
	return 2;
}

static int parse_args(int argc, char **argv, int *ping_ms)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-help") == 0 || strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			fputs(help_text, stdout);
			exit(0);
		} else if (strcmp(argv[i], "-version") == 0 || strcmp(argv[i], "--version") == 0) {
			poseidon_print_version("poseidon-wsgate");
			exit(0);
		} else if (strcmp(argv[i], "-config") == 0 || strcmp(argv[i], "--config") == 0) {
			i++;
		} else if (strcmp(argv[i], "-ping-ms") == 0 && i + 1 < argc) {
			*ping_ms = atoi(argv[++i]);
			if (*ping_ms < 100)
				return -1;
		} else if (strncmp(argv[i], "-config=", 8) != 0 && strncmp(argv[i], "--config=", 9) != 0) {
			return -1;
		}
	}
	return 0;
}

/* systemd's watchdog (deploy/systemd/poseidon-wsgate.service): pinged from a loop timer, so a
 * stuck loop stops the pings. */
#define WATCHDOG_CHECK_MS 1000
static lws_sorted_usec_list_t watchdog;
static void on_watchdog(lws_sorted_usec_list_t *sul)
{
	if (sdnotify_watchdog_tick() < 0)
		log_warn("watchdog notification failed");
	lws_sul_schedule(signal_ctx, 0, sul, on_watchdog, WATCHDOG_CHECK_MS * 1000);
}

/* While stopping, the loop must turn even when nothing happens. */
static lws_sorted_usec_list_t tick;
static void on_tick(lws_sorted_usec_list_t *sul)
{
	(void)sul;
	lws_sul_schedule(signal_ctx, 0, &tick, on_tick, 50 * 1000);
}

int main(int argc, char **argv)
{
	static struct gate g;
	struct perr e;
	g.ping_ms = GATE_PING_MS;
	log_set_program("poseidon-wsgate");
	if (parse_args(argc, argv, &g.ping_ms) < 0)
		return usage();
	if (config_load(&g.cfg, argc, argv, &e) < 0 || config_apply_logging(&g.cfg, &e) < 0) {
		log_error("configuration", "error", e.msg);
		return 1;
	}
	nomad_endpoint_from_config(&g.ep, &g.cfg);
	g.store = store_open(&g.cfg);
	g.destroyer = destroyer_start(&g.cfg);
	if (!g.store || !g.destroyer) {
		log_error("out of memory at start");
		return 1;
	}
	if (store_ping(g.store, &e) < 0)
		log_warn("redis does not answer yet; requests will retry it", "error", e.msg);

	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	int lfd = listener_open(g.cfg.wsgate.address, g.cfg.wsgate.port, &e);
	if (lfd < 0) {
		log_error("cannot listen", "error", e.msg);
		return 1;
	}
	lws_set_log_level(LLL_ERR | LLL_WARN, nomad_exec_lws_log);
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof info);
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER; /* listener.c owns the socket */
	info.vhost_name = GATE_VHOST;
	info.protocols = gate_protocols;
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.max_http_header_data = HEADER_DATA_MAX;
	info.max_http_header_pool = HEADER_POOL;
	info.timeout_secs = HTTP_TIMEOUT_S;
	info.user = &g;
	g.ctx = lws_create_context(&info);
	if (!g.ctx || listener_attach(&g, lfd) < 0) {
		log_error("cannot set up libwebsockets");
		return 1;
	}
	signal_ctx = g.ctx;
	char port[24];
	log_info("listening", "address", g.cfg.wsgate.address, "port", log_int(port, g.cfg.wsgate.port));
	if (sdnotify_ready("accepting executions") < 0)
		log_warn("readiness notification failed");
	on_watchdog(&watchdog);

	long long stop_at = 0, stop_begun = 0;
	while (lws_service(g.ctx, 0) >= 0) {
		if (got_signal && !g.stopping) {
			g.stopping = 1;
			stop_begun = clock_mono_ms();
			stop_at = stop_begun + GATE_SHUTDOWN_MS;
			char n[24];
			log_info("stopping: ending open executions", "open", log_int(n, g.nsessions));
			sdnotify_stopping("ending open executions");
			listener_close(); /* new connections go to another gateway on the port, if any */
			session_shutdown_all(&g);
			on_tick(&tick);
		}
		/* the terminal messages are out once no session has a client left; the 0x1C to the
		 * programs goes out within a few loop turns, given 200 ms */
		if (g.stopping &&
		    ((session_clients(&g) == 0 && clock_mono_ms() - stop_begun >= 200) || clock_mono_ms() >= stop_at))
			break;
	}
	lws_sul_cancel(&tick);
	lws_sul_cancel(&watchdog);
	signal_ctx = NULL;
	lws_context_destroy(g.ctx);
	destroyer_stop(g.destroyer, 5000);
	store_close(g.store);
	log_info("stopped");
	return 0;
}
