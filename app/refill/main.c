/* poseidon-refill: keeps every runner pool full, follows Nomad, reconciles and reaps.
 *
 * Module design notes. Any number of instances may run (for availability); one leads. The
 * leader holds the Redis lease "refill" (SET NX PX, renewed every pass); the others retry every
 * pass and take over within LEASE_MS when the leader dies or stalls. The leader runs two threads,
 * each with its own Redis and Nomad connections (struct pool):
 *   - main: refill passes every refill.tickms (lib/pool pool_tick) and a full reconcile every
 *     reconcile.interval seconds, and at once after the event stream (re)connects, since events
 *     may have been missed meanwhile;
 *   - events: follows Nomad's event stream (lib/nomad_events) from the last index seen,
 *     reconnecting with backoff, and applies every event (pool_on_event).
 * Every instance also runs lib/metrics' flusher thread: it adds this daemon's figures to Redis
 * and, while this instance leads and influxdb.url is set, pushes all figures to InfluxDB.
 * Nomad trouble is logged once per change of state and published in Redis (status "nomad") so
 * that /health can report it; everything resumes by itself when Nomad is back.
 * Signals: SIGTERM/SIGINT stop both threads after the current step and release the lease, so a
 * standby takes over at once. Restarting loses nothing: all state is in Redis and Nomad.
 * Under systemd (Type=notify, deploy/systemd) it sends READY=1 after start-up, WATCHDOG=1 from
 * the main loop and STOPPING=1 on SIGTERM (lib/sdnotify; marked "sdnotify" below). The leader
 * also answers `poseidon-admin reconcile` (marked "admin").
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "help.h"
#include "log.h"
#include "metrics.h"
#include "nomad_events.h"
#include "pool.h"
#include "sdnotify.h" /* sdnotify: systemd readiness and watchdog (docs/operations.md) */
#include "store.h"
#include "version.h"

#define LEASE_NAME "refill"
#define LEASE_MS 5000
#define STATUS_TTL_MS 15000
#define EVENT_BACKOFF_MAX_MS 10000
#define ADMIN_ANSWER_TTL_MS 60000 /* admin: how long the answer to a reconcile request stays */

static atomic_int stopping;
static atomic_int leading;
static atomic_int reconcile_now;
static struct config cfg;

static void on_term(int sig)
{
	(void)sig;
	stopping = 1;
}

static void sleep_ms(int ms)
{
	/* in small steps so that a signal ends the wait quickly */
	for (long long end = clock_mono_ms() + ms; !stopping && clock_mono_ms() < end;) {
		struct timespec ts = {0, 20 * 1000000L};
		nanosleep(&ts, NULL);
	}
}

/* Logs Nomad's state when it changes and publishes it for /health. */
struct health {
	int nomad_down;
	struct store *store;
};

static void note_nomad(struct health *h, const struct perr *e)
{
	int down = e && (e->kind == PERR_NOMAD_UNREACHABLE || e->kind == PERR_NOMAD_OVERLOAD);
	struct perr se;
	if (!down && e)
		return; /* a failure that says nothing about Nomad's reachability */
	if (down) {
		char status[PERR_MSG_MAX + 32];
		snprintf(status, sizeof status, "nomad unreachable: %s", e->msg);
		store_status_set(h->store, "nomad", status, STATUS_TTL_MS, &se);
		if (!h->nomad_down)
			log_error("nomad unreachable; retrying", "error", e->msg);
	} else if (h->nomad_down) {
		store_status_set(h->store, "nomad", "", 0, &se);
		log_info("nomad reachable again");
	}
	h->nomad_down = down;
}

/* metrics: only the leader pushes to InfluxDB */
static int is_leading(void) { return leading && !stopping; }

static int events_should_stop(void *ud)
{
	(void)ud;
	return stopping || !leading;
}

static void events_connected(void *ud)
{
	(void)ud;
	reconcile_now = 1; /* whatever happened while we were not listening */
	log_info("following nomad's event stream");
}

static void *event_thread(void *arg)
{
	(void)arg;
	struct perr e;
	struct pool *p = pool_new(&cfg, &e);
	struct nomad_endpoint ep;
	static const char *const topics[] = {"Job:*", "Allocation:*", "Evaluation:*", NULL};
	long long last = 0;
	int backoff = 250, failing = 0;
	if (!p) {
		log_error("event thread cannot start", "error", e.msg);
		return NULL;
	}
	nomad_endpoint_from_config(&ep, &cfg);
	while (!stopping && leading) {
		struct nomad_stream_opts o = {.topics = topics, .index = last, .should_stop = events_should_stop,
					      .on_connected = events_connected};
		long long started = clock_mono_ms();
		int rc = nomad_events_follow(&ep, &o, pool_on_event, p, &last, &e);
		if (rc == 0 || stopping || !leading)
			break;
		metrics_event_stream_reconnect(); /* metrics */
		if (clock_mono_ms() - started > 10000)
			backoff = 250, failing = 0; /* it ran for a while: a fresh failure */
		if (!failing++)
			log_warn("nomad event stream ended; reconnecting", "error", e.msg);
		sleep_ms(backoff);
		backoff = backoff * 2 > EVENT_BACKOFF_MAX_MS ? EVENT_BACKOFF_MAX_MS : backoff * 2;
	}
	pool_free(p);
	return NULL;
}

static const char help_text[] =
    "Usage: poseidon-refill [-config FILE]\n"
    "keeps Poseidon's runner pools full, follows Nomad, reconciles and reaps\n"
    "\n"
    "Keeps every execution environment's pool of idle runners at its prewarmingPoolSize by\n"
    "registering and purging Nomad runner jobs, follows Nomad's event stream, compares Redis\n"
    "with Nomad every reconcile.interval seconds, and destroys runners whose inactivity\n"
    "deadline passed. Any number of instances may run against the same Redis: one leads (it\n"
    "holds a lease in Redis, renewed every pass), the others stand by and take over within 5\n"
    "seconds when it stops or stalls. The leader also answers `poseidon-admin reconcile` and\n"
    "pushes the metrics to InfluxDB when influxdb.url is set. Redis or Nomad being down is\n"
    "logged once and retried; everything resumes by itself.\n"
    "\n"
    "Options:\n" HELP_OPT_CONFIG HELP_OPT_STANDARD
    "\n"
    "Environment:\n" HELP_ENV_CONFIG
    "  NOTIFY_SOCKET      systemd's notification socket (Type=notify): READY=1 once set up,\n"
    "                     STATUS= on leading or standing by, STOPPING=1 on SIGTERM\n"
    "  WATCHDOG_USEC, WATCHDOG_PID\n"
    "                     systemd's watchdog (WatchdogSec=): WATCHDOG=1 from the main loop at\n"
    "                     least every half interval\n"
    "  SSL_CERT_FILE      CA bundle for Nomad over HTTPS when nomad.tls.cafile is empty\n"
    "\n"
    "Files:\n" HELP_FILES_CONFIG
    "\n"
    "Signals:\n"
    "  SIGTERM, SIGINT    stop after the current step, release the lease (a standby takes\n"
    "                     over at once), send the remaining metrics and exit 0\n"
    "  SIGPIPE            ignored\n"
    "  other signals      their default action; nothing is lost, all state is in Redis and\n"
    "                     Nomad, and the lease expires after 5 seconds\n"
    "\n"
    "Exit status:\n"
    "  0                  stopped by SIGTERM or SIGINT; -help and -version done\n"
    "  2                  bad usage, a configuration error (the log line names the key) or a\n"
    "                     failed start-up\n"
    "\n" HELP_SEE_ALSO;

int main(int argc, char **argv)
{
	struct perr e;
	char owner[128], host[64] = "";
	log_set_program("poseidon-refill");
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-help") == 0 || strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			fputs(help_text, stdout);
			return 0;
		}
		if (strcmp(argv[i], "-version") == 0 || strcmp(argv[i], "--version") == 0) {
			poseidon_print_version("poseidon-refill");
			return 0;
		}
		if (strcmp(argv[i], "-config") == 0 || strcmp(argv[i], "--config") == 0)
			i++;
		else if (strncmp(argv[i], "-config=", 8) != 0 && strncmp(argv[i], "--config=", 9) != 0) {
			fprintf(stderr, "usage: poseidon-refill [-config FILE] | -help | -version\n");
			return 2;
		}
	}
	if (config_load(&cfg, argc, argv, &e) < 0 || config_apply_logging(&cfg, &e) < 0) {
		log_error("configuration error", "error", e.msg);
		return 2;
	}
	struct pool *p = pool_new(&cfg, &e);
	struct store *lease_store = store_open(&cfg);
	if (!p || !lease_store) {
		log_error("start-up failed", "error", p ? "out of memory" : e.msg);
		return 2;
	}
	gethostname(host, sizeof host - 1);
	snprintf(owner, sizeof owner, "%s:%d:%lld", host, (int)getpid(), clock_mono_ms());

	struct sigaction sa = {0};
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* metrics: the figures counted here (Nomad errors, startup times, reconnects) reach Redis
	 * from a thread; it also pushes to InfluxDB (influxdb.url) while this instance leads */
	if (metrics_flusher_start(&cfg, is_leading) < 0)
		log_warn("metrics flusher did not start; this daemon's figures stay local");
	struct health h = {.store = lease_store};
	pthread_t events;
	int events_running = 0, redis_down = 0;
	long long next_reconcile = 0;
	log_info("started", "owner", owner);
	sdnotify_ready("started; waiting for the lease"); /* sdnotify: READY=1 once set up */
	while (!stopping) {
		sdnotify_watchdog_tick(); /* sdnotify: WATCHDOG=1 every half WatchdogSec while the loop turns */
		int held = store_lease(lease_store, LEASE_NAME, owner, LEASE_MS, &e);
		if (held < 0) {
			if (!redis_down)
				log_error("redis unreachable; retrying", "error", e.msg);
			redis_down = 1;
			held = 0;
		} else if (redis_down) {
			log_info("redis reachable again");
			redis_down = 0;
		}
		if (held && !leading) {
			log_info("leading: this instance keeps the pools");
			sdnotify_status("leading: this instance keeps the pools"); /* sdnotify */
			leading = 1;
			reconcile_now = 1;
			events_running = pthread_create(&events, NULL, event_thread, NULL) == 0;
		} else if (!held && leading) {
			log_warn("lost the lease; standing by");
			sdnotify_status("standing by"); /* sdnotify */
			leading = 0;
		}
		if (!leading && events_running) {
			pthread_join(events, NULL);
			events_running = 0;
		}
		if (leading) {
			/* admin: `poseidon-admin reconcile` leaves a request token; take it, reconcile now and
			 * answer under the same token (lib/store store_reconcile_*) */
			char admin_token[128] = "";
			if (store_reconcile_take(lease_store, admin_token, sizeof admin_token, &e) == 1)
				reconcile_now = 1;
			/* the reconcile, which always asks Nomad, decides whether Nomad is up; while it is
			 * down it runs every second, so recovery is noticed at once */
			if (reconcile_now || clock_mono_ms() >= next_reconcile) {
				reconcile_now = 0;
				int rc = pool_reconcile(p, &e);
				note_nomad(&h, rc < 0 ? &e : NULL);
				if (rc < 0 && e.kind != PERR_NOMAD_UNREACHABLE)
					log_warn("reconcile incomplete", "error", e.msg);
				if (admin_token[0]) { /* admin: the answer */
					struct perr ae;
					log_info("reconcile requested by an operator done", "token", admin_token);
					store_reconcile_done(lease_store, admin_token, rc < 0 ? e.msg : NULL, ADMIN_ANSWER_TTL_MS, &ae);
				}
				next_reconcile = clock_mono_ms() + (h.nomad_down ? 1000 : (long long)cfg.reconcile.interval * 1000);
			}
			int rc = pool_tick(p, &e);
			if (rc < 0 && (e.kind == PERR_NOMAD_UNREACHABLE || e.kind == PERR_NOMAD_OVERLOAD) && !h.nomad_down)
				reconcile_now = 1; /* confirm, and publish, at once */
			else if (rc < 0 && e.msg[0])
				log_debug("refill pass incomplete", "error", e.msg);
			/* when Nomad is down, try less often; otherwise wait for a claim or an environment
			 * change to wake us, or the next tick */
			if (h.nomad_down || store_wait_wake(lease_store, cfg.refill.tickms, &e) < 0)
				sleep_ms(h.nomad_down ? 1000 : cfg.refill.tickms);
		} else {
			sleep_ms(1000);
		}
	}
	sdnotify_stopping("stopping"); /* sdnotify: STOPPING=1 after SIGTERM/SIGINT ended the loop */
	leading = 0;
	if (events_running)
		pthread_join(events, NULL);
	store_lease_release(lease_store, LEASE_NAME, owner);
	metrics_flusher_stop();
	struct pool_counters c;
	pool_get_counters(p, &c);
	char created[24], destroyed[24];
	log_info("stopped", "created", log_int(created, c.created), "destroyed", log_int(destroyed, c.destroyed));
	pool_free(p);
	store_close(lease_store);
	return 0;
}
