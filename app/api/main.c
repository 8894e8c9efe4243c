/* poseidon-api: the REST API as a FastCGI worker.
 *
 * Module design notes. The web server (lighttpd spawns N of these; nginx/Apache use
 * spawn-fcgi) hands each worker a listening socket on fd 0, or `-listen PATH|:PORT` opens one.
 * A worker serves one request at a time with FCGX_Accept_r and keeps nothing between requests:
 * environments, runners and deadlines live in Redis (lib/store), jobs in Nomad. So any number
 * of workers, on any number of machines, may serve the same Redis, and killing one at any
 * moment loses nothing but its in-flight request. The one exception is its metrics: a helper
 * thread (lib/metrics, all signals blocked) adds them to Redis every metrics.flushms, so a
 * SIGKILL loses at most that much of them; SIGTERM sends the rest before exiting.
 * Signals: SIGTERM/SIGINT finish the request in progress, then exit 0. SIGPIPE is ignored (a
 * client that went away is the web server's business).
 * Start-up: configuration errors are fatal (exit 2) with a log line naming the key; Redis being
 * down is not (requests answer 500/503 until it is back).
 */
#include <errno.h>
#include <fcgiapp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "help.h"
#include "log.h"
#include "metrics.h"
#include "version.h"

static volatile sig_atomic_t stopping;

static void on_term(int sig)
{
	(void)sig;
	stopping = 1;
	FCGX_ShutdownPending(); /* makes libfcgi's accept() loop give up on EINTR */
}

static const char help_text[] =
    "Usage: poseidon-api [-config FILE] [-listen PATH|HOST:PORT]\n"
    "  or:  poseidon-api [-config FILE] -config-get KEY\n"
    "  or:  poseidon-api -config-reference\n"
    "the Poseidon REST API as a FastCGI worker\n"
    "\n"
    "One process serves one request at a time and keeps nothing between requests: execution\n"
    "environments, runners and their deadlines live in Redis, runner jobs in Nomad, so any\n"
    "number of workers on any number of machines may serve the same Redis. The web server\n"
    "hands the worker its listening socket as file descriptor 0, the FastCGI convention\n"
    "(lighttpd's bin-path, spawn-fcgi, multiwatch, systemd's StandardInput=socket); -listen\n"
    "opens one instead. Configuration errors end the start; Redis being down does not\n"
    "(requests answer 500 or 503 until it is back).\n"
    "\n"
    "Options:\n" HELP_OPT_CONFIG
    "  -listen PATH|HOST:PORT\n"
    "                     accept FastCGI connections on this unix socket, or TCP address\n"
    "                     (\":PORT\" is every address), instead of on file descriptor 0\n"
    "  -config-get KEY    print the effective value of one configuration key (file and\n"
    "                     environment applied) and exit\n"
    "  -config-reference  print every configuration key with its environment variable,\n"
    "                     default and meaning as a Markdown table and exit\n" HELP_OPT_STANDARD
    "\n"
    "Environment:\n" HELP_ENV_CONFIG
    "  SSL_CERT_FILE      CA bundle for Nomad over HTTPS when nomad.tls.cafile is empty\n"
    "\n"
    "Files:\n" HELP_FILES_CONFIG
    "  /run/poseidon/api.sock\n"
    "                     the socket poseidon-api.socket and poseidon-api-spawnfcgi.service\n"
    "                     hand to the workers\n"
    "\n"
    "Signals:\n"
    "  SIGTERM, SIGINT    finish the request in progress, send this worker's metrics to\n"
    "                     Redis and exit 0\n"
    "  SIGPIPE            ignored (a client that went away is the web server's business)\n"
    "  other signals      their default action; SIGKILL loses at most the request in\n"
    "                     progress and metrics.flushms of metrics\n"
    "\n"
    "Exit status:\n"
    "  0                  stopped by SIGTERM or SIGINT; -config-get, -config-reference,\n"
    "                     -help and -version done\n"
    "  1                  start-up failed: cannot listen, out of memory\n"
    "  2                  bad usage, a configuration error (the log line names the key), an\n"
    "                     unknown key for -config-get, or an unreadable job template\n"
    "\n" HELP_SEE_ALSO;

static void usage(void)
{
	fprintf(stderr, "usage: poseidon-api [-config FILE] [-listen PATH|:PORT]\n"
			"       poseidon-api [-config FILE] -config-get KEY   (print a key's effective value)\n"
			"       poseidon-api -config-reference   (print the configuration keys as Markdown)\n"
			"       poseidon-api -help | -version\n");
}

int main(int argc, char **argv)
{
	static struct api a;
	struct perr e;
	const char *listen_on = NULL, *get_key = NULL;

	log_set_program("poseidon-api");
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-help") == 0 || strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			fputs(help_text, stdout);
			return 0;
		}
		if (strcmp(argv[i], "-version") == 0 || strcmp(argv[i], "--version") == 0) {
			poseidon_print_version("poseidon-api");
			return 0;
		}
		if (strcmp(argv[i], "-config-reference") == 0) {
			config_write_reference(stdout);
			return 0;
		}
		if (strcmp(argv[i], "-listen") == 0 && i + 1 < argc)
			listen_on = argv[++i];
		else if (strcmp(argv[i], "-config-get") == 0 && i + 1 < argc)
			get_key = argv[++i];
		else if (strcmp(argv[i], "-config") == 0 || strcmp(argv[i], "--config") == 0)
			i++;
		else if (strncmp(argv[i], "-config=", 8) != 0 && strncmp(argv[i], "--config=", 9) != 0) {
			usage();
			return 2;
		}
	}
	if (config_load(&a.cfg, argc, argv, &e) < 0 || config_apply_logging(&a.cfg, &e) < 0) {
		log_error("configuration error", "error", e.msg);
		return 2;
	}
	if (get_key) {
		char v[CONFIG_PATH];
		if (config_get(&a.cfg, get_key, v, sizeof v) < 0) {
			log_error("unknown configuration key", "key", get_key);
			return 2;
		}
		printf("%s\n", v);
		return 0;
	}
	struct nomad_endpoint ep;
	nomad_endpoint_from_config(&ep, &a.cfg);
	a.store = store_open(&a.cfg);
	a.nomad = nomad_open(&ep);
	jobspec_opts_from_config(&a.jobopts, &a.cfg);
	if (!(a.tmpl = jobspec_load(a.cfg.server.templatejobfile, &e))) {
		log_error("configuration error", "key", "server.templatejobfile", "error", e.msg);
		return 2;
	}
	if (!a.store || !a.nomad || FCGX_Init() != 0) {
		log_error("start-up failed", "error", "out of memory");
		return 1;
	}
	int sock = 0;
	if (listen_on && (sock = FCGX_OpenSocket(listen_on, 128)) < 0) {
		log_error("cannot listen", "address", listen_on, "error", strerror(errno));
		return 1;
	}

	struct sigaction sa = {0};
	sa.sa_handler = on_term; /* no SA_RESTART: accept() returns and the loop ends */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* metrics: this worker's figures reach Redis from a thread, never from a request */
	if (metrics_flusher_start(&a.cfg, NULL) < 0)
		log_warn("metrics flusher did not start; this worker's figures stay local");
	FCGX_Request fcgi;
	FCGX_InitRequest(&fcgi, sock, 0);
	log_debug("worker ready");
	/* SIGTERM/SIGINT wait while a request is served, so no system call of the request sees EINTR;
	 * on unblocking the handler runs and the loop ends before the next accept */
	sigset_t term;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigaddset(&term, SIGINT);
	while (!stopping && FCGX_Accept_r(&fcgi) >= 0) {
		pthread_sigmask(SIG_BLOCK, &term, NULL);
		struct http_req r;
		if (http_req_init(&r, &fcgi, &e) < 0)
			api_fail(&r, &e);
		else
			api_dispatch(&a, &r);
		http_req_free(&r);
		FCGX_Finish_r(&fcgi);
		pthread_sigmask(SIG_UNBLOCK, &term, NULL);
	}
	FCGX_Free(&fcgi, 1);
	metrics_flusher_stop(); /* sends what is left */
	store_close(a.store);
	nomad_close(a.nomad);
	json_object_put(a.tmpl);
	log_debug("worker stopped");
	return 0;
}
