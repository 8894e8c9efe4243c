/* poseidon-admin: operator commands over the same lib/ code the daemons use (docs/operations.md).
 *
 * Module design notes. A short-lived command-line program, not a daemon: it reads the
 * configuration like every other program (-config FILE, $POSEIDON_CONFIG, ./configuration.yaml,
 * POSEIDON_* variables), talks to Redis through lib/store and to Nomad through lib/nomad, prints
 * a result on stdout and exits: 0 done, 1 failed (the reason on stderr as a logfmt line), 2 bad
 * usage or configuration. It never holds state and can run on any machine that reaches Redis
 * and Nomad.
 *   pools            every environment's pool (size, idle, starting, used) and the refill leader
 *   runners ENV      the runners of ENV with state, allocation and inactivity deadline
 *   destroy RUNNER   removes the runner from Redis (its user receives 410) and purges its Nomad job
 *   drain ENV        pool size 0 in Redis and in the template job's Meta, without a new
 *                    generation; idle and starting runners are destroyed, used ones stay with
 *                    their users until released or timed out. poseidon-refill keeps a pool at its
 *                    size, so with size 0 it creates nothing (and trims what raced in). A later
 *                    PUT of the environment (CodeOcean) or `resize` sets a size again.
 *   resize ENV SIZE  the pool size without replacing any runner: the refill daemon fills or trims
 *   reconcile        the refill leader compares Redis with Nomad now (a request token in Redis
 *                    that its main loop takes, answered under the same token); when no leader
 *                    holds the lease this program takes the lease itself and runs lib/pool's
 *                    reconcile, so no daemon can start one at the same time
 *   config           the effective configuration, secrets redacted
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "help.h"
#include "jobspec.h"
#include "log.h"
#include "nomad.h"
#include "pool.h"
#include "store.h"
#include "version.h"

#define REFILL_LEASE    "refill" /* app/refill/main.c LEASE_NAME */
#define ADMIN_LEASE_MS  60000    /* held while this program reconciles in place of a leader */
#define REQUEST_TTL_MS  60000    /* a reconcile request nobody takes expires */
#define DEFAULT_WAIT_S  60       /* how long `reconcile` waits for the leader's answer */
#define PURGE_PARALLEL  8
#define CONFIG_KEYS_MAX 128

static struct config cfg;
static struct store *store;
static struct nomad *nomad;

#define ADMIN_COMMANDS                                                                           \
	"  pools              pool size, idle, starting and used runners of every environment,\n" \
	"                     and the refill leader\n"                                             \
	"  runners ENV        the runners of environment ENV: id, state, allocation, deadline\n"  \
	"  destroy RUNNER     remove a runner from Redis (its user receives 410) and purge its\n"  \
	"                     Nomad job\n"                                                          \
	"  drain ENV          pool size 0 (no refill); idle and starting runners are destroyed,\n" \
	"                     used ones stay with their users\n"                                   \
	"  resize ENV SIZE    set the pool size without replacing runners; poseidon-refill fills\n" \
	"                     or trims the pool\n"                                                 \
	"  reconcile          compare Redis with Nomad now, through the refill leader (or here,\n" \
	"                     holding its lease, when none leads)\n"                               \
	"  config             print the effective configuration as YAML, secrets redacted\n"

static const char help_text[] =
    "Usage: poseidon-admin [-config FILE] [-wait SECONDS] COMMAND [ARGS]\n"
    "operator commands for Poseidon's pools and runners\n"
    "\n"
    "A short-lived program, not a daemon: it reads the configuration as the daemons do, talks\n"
    "to Redis and Nomad, prints its result on standard output and exits. It keeps no state\n"
    "and can run on any machine that reaches Redis and Nomad.\n"
    "\n"
    "Commands:\n" ADMIN_COMMANDS
    "\n"
    "Options:\n" HELP_OPT_CONFIG
    "  -wait SECONDS      how long reconcile waits for the refill leader's answer (default\n"
    "                     60)\n" HELP_OPT_STANDARD
    "\n"
    "Environment:\n" HELP_ENV_CONFIG
    "  SSL_CERT_FILE      CA bundle for Nomad over HTTPS when nomad.tls.cafile is empty\n"
    "\n"
    "Files:\n" HELP_FILES_CONFIG
    "\n"
    "Signals:\n"
    "  SIGTERM, SIGINT    not handled: the program ends at once; a reconcile it was running\n"
    "                     in place of a leader leaves the refill lease to expire (60 seconds)\n"
    "\n"
    "Exit status:\n"
    "  0                  done; -help and -version done\n"
    "  1                  failed (the reason on standard error as a logfmt line), e.g. Redis or\n"
    "                     Nomad unreachable, no such environment, no answer from the leader\n"
    "  2                  bad usage or a configuration error\n"
    "\n" HELP_SEE_ALSO;

static int usage(void)
{
	fprintf(stderr, "usage: poseidon-admin [-config FILE] COMMAND [ARGS]   (-help: the whole help)\n" ADMIN_COMMANDS);
	return 2;
}

static int fail(const char *what, const struct perr *e)
{
	log_error(what, "error", e->msg);
	return 1;
}

static int parse_env_id(const char *s, long long *id)
{
	char *end;
	long long v = strtoll(s, &end, 10);
	if (!*s || *end || v < 0) {
		fprintf(stderr, "poseidon-admin: \"%s\" is not an environment id\n", s);
		return -1;
	}
	*id = v;
	return 0;
}

/* ---- pools ---------------------------------------------------------------------------------- */

static int cmd_pools(void)
{
	struct perr e;
	struct env_stats *st;
	size_t n;
	char leader[256], nomad_status[PERR_MSG_MAX + 32];
	if (store_statistics(store, &st, &n, &e) < 0)
		return fail("cannot read the pools", &e);
	printf("%-12s %8s %8s %8s %8s\n", "ENV", "SIZE", "IDLE", "STARTING", "USED");
	for (size_t i = 0; i < n; i++)
		printf("%-12lld %8llu %8llu %8llu %8llu\n", st[i].id, st[i].prewarming_pool_size, st[i].idle,
		       st[i].starting, st[i].used);
	free(st);
	int held = store_lease_holder(store, REFILL_LEASE, leader, sizeof leader, &e);
	if (held < 0)
		return fail("cannot read the refill lease", &e);
	printf("refill leader: %s\n",
	       held ? leader : "none (no poseidon-refill holds the lease: pools are not kept)");
	if (store_status_get(store, "nomad", nomad_status, sizeof nomad_status, &e) == 1)
		printf("nomad: %s\n", nomad_status);
	return 0;
}

/* ---- runners -------------------------------------------------------------------------------- */

/* "2026-11-27T18:00:00Z (in 42s)" for a deadline, "-" for none. */
static void format_deadline(long long deadline_ms, long long now_ms, char *out, size_t cap)
{
	if (!deadline_ms) {
		snprintf(out, cap, "-");
		return;
	}
	time_t t = (time_t)(deadline_ms / 1000);
	struct tm tm;
	char when[32];
	gmtime_r(&t, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	long long d = (deadline_ms - now_ms) / 1000;
	if (deadline_ms >= now_ms)
		snprintf(out, cap, "%s (in %llds)", when, d);
	else
		snprintf(out, cap, "%s (passed %llds ago)", when, -d);
}

static int cmd_runners(const char *env_arg)
{
	struct perr e;
	struct environment env;
	struct runner *rs;
	size_t n;
	long long id, now;
	if (parse_env_id(env_arg, &id) < 0)
		return 2;
	int found = store_env_get(store, id, &env, NULL, &e);
	if (found < 0)
		return fail("cannot read the environment", &e);
	if (!found) {
		fprintf(stderr, "poseidon-admin: no execution environment %lld\n", id);
		return 1;
	}
	if (store_time_ms(store, &now, &e) < 0 || store_env_runners(store, id, &rs, &n, &e) < 0)
		return fail("cannot read the runners", &e);
	printf("%-48s %-9s %-38s %s\n", "RUNNER", "STATE", "ALLOCATION", "DEADLINE");
	for (size_t i = 0; i < n; i++) {
		char dl[96];
		format_deadline(rs[i].deadline_ms, now, dl, sizeof dl);
		printf("%-48s %-9s %-38s %s\n", rs[i].id, rs[i].state,
		       rs[i].alloc_id[0] ? rs[i].alloc_id : "-", dl);
	}
	free(rs);
	return 0;
}

/* ---- destroy -------------------------------------------------------------------------------- */

static int cmd_destroy(const char *runner_id)
{
	struct perr e;
	struct runner r;
	long long env;
	if (!nomad_runner_env(runner_id, &env) || nomad_is_template_job_id(runner_id, &env)) {
		fprintf(stderr,
		        "poseidon-admin: \"%s\" is not a runner id (<env>-<uuid>); environments go with "
		        "DELETE /execution-environments/<id> or drain\n",
		        runner_id);
		return 2;
	}
	int existed = store_destroy(store, runner_id, 0, &r, &e);
	if (existed < 0)
		return fail("cannot remove the runner from redis", &e);
	/* the job goes whether Redis knew the runner or not: an orphan job is what one destroys by hand */
	if (nomad_job_purge(nomad, runner_id, &e) < 0) {
		if (existed)
			printf("runner %s (environment %lld, %s) removed from Redis\n", runner_id, r.env,
			       r.state);
		return fail(
		    "removed from redis, but purging the nomad job failed; the next reconcile purges it", &e);
	}
	if (existed)
		printf("runner %s (environment %lld, %s) removed from Redis; Nomad job purged\n", runner_id,
		       r.env, r.state);
	else
		printf("runner %s was not in Redis; Nomad job purged (if it existed)\n", runner_id);
	return 0;
}

/* ---- drain and resize ----------------------------------------------------------------------- */

/* The pool size in Nomad's template Meta first (as PUT does: Nomad before Redis), so that a
 * recovery from Nomad or GET ?fetch=true reads the same size; then Redis, without a new
 * generation. */
static int set_pool_size(long long id, unsigned long long size, long long *old)
{
	struct perr e;
	struct environment env;
	struct jobspec_opts o;
	int found = store_env_get(store, id, &env, NULL, &e);
	if (found < 0)
		return fail("cannot read the environment", &e);
	if (!found) {
		fprintf(stderr, "poseidon-admin: no execution environment %lld\n", id);
		return 1;
	}
	json_object *tmpl = jobspec_load(cfg.server.templatejobfile, &e);
	if (!tmpl)
		return fail("cannot load the job template (server.templatejobfile)", &e);
	env.prewarming_pool_size = size;
	jobspec_opts_from_config(&o, &cfg);
	json_object *job = jobspec_template_job(tmpl, &env, &o, &e);
	int rc = job && nomad_job_register(nomad, job, NULL, &e) == 0 ? 0 : -1;
	json_object_put(job);
	json_object_put(tmpl);
	if (rc < 0)
		return fail("cannot update the template job in nomad; nothing changed", &e);
	if ((*old = store_env_set_pool_size(store, id, size, &e)) < 0)
		return fail("template job updated, but redis failed; run the command again", &e);
	return 0;
}

static int cmd_resize(const char *env_arg, const char *size_arg)
{
	long long id, old;
	char *end;
	unsigned long long size = strtoull(size_arg, &end, 10);
	if (parse_env_id(env_arg, &id) < 0 || !*size_arg || *end || size_arg[0] == '-') {
		if (*size_arg && (*end || size_arg[0] == '-'))
			fprintf(stderr, "poseidon-admin: \"%s\" is not a pool size\n", size_arg);
		return 2;
	}
	int rc = set_pool_size(id, size, &old);
	if (rc)
		return rc;
	printf("environment %lld: pool size %lld -> %llu; poseidon-refill fills or trims the pool\n", id, old,
	       size);
	return 0;
}

static int cmd_drain(const char *env_arg)
{
	struct perr e;
	struct runner *rs;
	size_t n;
	long long id, old;
	if (parse_env_id(env_arg, &id) < 0)
		return 2;
	int rc = set_pool_size(id, 0, &old);
	if (rc)
		return rc;
	if (store_env_runners(store, id, &rs, &n, &e) < 0)
		return fail("pool size is 0, but listing the runners failed; poseidon-refill trims them", &e);
	char **purge = calloc(n + 1, sizeof *purge);
	size_t npurge = 0, idle = 0, starting = 0, used = 0;
	for (size_t i = 0; purge && i < n; i++) {
		if (strcmp(rs[i].state, "used") == 0) {
			used++;
			continue;
		}
		/* only while still idle or starting: one claimed since the listing stays with its user */
		int gone = store_destroy_in_state(store, rs[i].id, rs[i].state, NULL, &e);
		struct runner now;
		if (gone < 0) {
			log_warn("could not remove runner from redis", "runner", rs[i].id, "error", e.msg);
			continue;
		}
		if (gone)
			purge[npurge++] = rs[i].id;
		else if (store_runner_get(store, rs[i].id, &now, &e) == 1 && strcmp(now.state, "used") == 0) {
			used++; /* claimed since the listing */
			continue;
		}
		/* destroyed here, or by poseidon-refill's trim at the same moment (it purges its job) */
		*(strcmp(rs[i].state, "idle") == 0 ? &idle : &starting) += 1;
	}
	int failed = purge ? nomad_jobs_purge(nomad, purge, npurge, PURGE_PARALLEL, &e) : 0;
	printf("environment %lld drained: pool size %lld -> 0; destroyed %zu idle and %zu starting runners; "
	       "%zu used runners stay with their users\n",
	       id, old, idle, starting, used);
	free(purge);
	free(rs);
	if (failed)
		return fail("purging some runner jobs failed; poseidon-refill's next reconcile purges them",
		            &e);
	return 0;
}

/* ---- reconcile ------------------------------------------------------------------------------ */

/* No leader: hold the lease ourselves (so no poseidon-refill starts a reconcile alongside) and run
 * lib/pool's reconcile here. 1 done, 0 a daemon took the lease first, -1 failed. */
static int reconcile_here(const char *owner)
{
	struct perr e;
	int held = store_lease(store, REFILL_LEASE, owner, ADMIN_LEASE_MS, &e);
	if (held < 0) {
		fail("cannot take the refill lease", &e);
		return -1;
	}
	if (!held)
		return 0;
	struct pool *p = pool_new(&cfg, &e);
	int rc = p ? pool_reconcile(p, &e) : -1;
	store_lease_release(store, REFILL_LEASE, owner);
	if (rc == 0) {
		struct pool_counters c;
		pool_get_counters(p, &c);
		printf("reconciled here (no poseidon-refill leads): %lld orphan jobs purged, %lld runners "
		       "adopted, "
		       "%lld destroyed, %lld became ready\n",
		       c.orphans, c.adopted, c.destroyed, c.ready);
	}
	pool_free(p);
	if (rc < 0) {
		fail("reconcile failed", &e);
		return -1;
	}
	return 1;
}

static int cmd_reconcile(int wait_s)
{
	struct perr e;
	char owner[256], token[128], host[64] = "", answer[PERR_MSG_MAX + 64];
	gethostname(host, sizeof host - 1);
	snprintf(token, sizeof token, "admin:%s:%d:%lld", host, (int)getpid(), (long long)time(NULL));
	int held = store_lease_holder(store, REFILL_LEASE, owner, sizeof owner, &e);
	if (held < 0)
		return fail("cannot read the refill lease", &e);
	if (!held) {
		int rc = reconcile_here(token);
		if (rc != 0)
			return rc < 0 ? 1 : 0;
		store_lease_holder(store, REFILL_LEASE, owner, sizeof owner, &e); /* a daemon won the race */
	}
	if (store_reconcile_request(store, token, REQUEST_TTL_MS, &e) < 0)
		return fail("cannot leave the reconcile request in redis", &e);
	for (long long end = clock_mono_ms() + (long long)wait_s * 1000; clock_mono_ms() < end;) {
		int got = store_reconcile_result(store, token, answer, sizeof answer, &e);
		if (got < 0)
			return fail("cannot read the answer", &e);
		if (got) {
			printf("reconciled by the refill leader %s: %s\n", owner, answer);
			return strncmp(answer, "ok", 2) == 0 ? 0 : 1;
		}
		usleep(100 * 1000);
	}
	fprintf(stderr,
	        "poseidon-admin: the refill leader (%s) did not answer within %d s; the request expires "
	        "by itself\n",
	        owner, wait_s);
	return 1;
}

/* ---- config --------------------------------------------------------------------------------- */

/* Key names, read from lib/config's own reference table (one row per key: "| `key` | ..."). */
static size_t config_keys(char keys[][CONFIG_STR], size_t max)
{
	char *text = NULL, *line, *save = NULL;
	size_t len = 0, n = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return 0;
	config_write_reference(f);
	fclose(f);
	for (line = strtok_r(text, "\n", &save); line && n < max; line = strtok_r(NULL, "\n", &save)) {
		const char *a = strstr(line, "| `"), *b = a ? strchr(a + 3, '`') : NULL;
		if (a == line && b && (size_t)(b - a - 3) < CONFIG_STR) {
			snprintf(keys[n], CONFIG_STR, "%.*s", (int)(b - a - 3), a + 3);
			n++;
		}
	}
	free(text);
	return n;
}

static int is_secret(const char *key)
{
	size_t n = strlen(key);
	return (n >= 5 && strcmp(key + n - 5, "token") == 0) ||
	       (n >= 8 && strcmp(key + n - 8, "password") == 0);
}

/* "https://user:pass@host/..." -> "https://[redacted]@host/..." (influxdb.url may carry them). */
static void redact_userinfo(char *v)
{
	char *scheme = strstr(v, "://"), *at, *slash, rest[CONFIG_PATH];
	if (!scheme)
		return;
	scheme += 3;
	at = strchr(scheme, '@');
	slash = strchr(scheme, '/');
	if (!at || (slash && slash < at))
		return;
	snprintf(rest, sizeof rest, "%s", at);
	snprintf(scheme, CONFIG_PATH - (size_t)(scheme - v), "[redacted]%s", rest);
}

/* Prints every key as "key: value" in YAML's double-quoted style: the output is itself a valid
 * configuration file (the loader joins nested keys with '.', so flat dotted keys read the same). */
static int cmd_config(int argc, char **argv)
{
	static char keys[CONFIG_KEYS_MAX][CONFIG_STR];
	const char *file = config_path_from_args(argc, argv);
	if (!file || !*file)
		file = getenv("POSEIDON_CONFIG");
	if ((!file || !*file) && access("configuration.yaml", F_OK) == 0)
		file = "configuration.yaml";
	printf("# effective configuration: defaults < %s < POSEIDON_* environment; secrets redacted\n",
	       file && *file ? file : "(no file)");
	size_t n = config_keys(keys, CONFIG_KEYS_MAX);
	for (size_t i = 0; i < n; i++) {
		char v[CONFIG_PATH];
		if (config_get(&cfg, keys[i], v, sizeof v) < 0)
			continue;
		if (is_secret(keys[i]) && v[0])
			snprintf(v, sizeof v, "[redacted]");
		redact_userinfo(v);
		printf("%s: \"", keys[i]);
		for (const char *p = v; *p; p++)
			printf(*p == '"' || *p == '\\' ? "\\%c" : "%c", *p);
		printf("\"\n");
	}
	return n ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct perr e;
	struct nomad_endpoint ep;
	char *args[8];
	int nargs = 0, wait_s = DEFAULT_WAIT_S;
	log_set_program("poseidon-admin");
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-config") == 0 || strcmp(argv[i], "--config") == 0) {
			i++;
		} else if (strncmp(argv[i], "-config=", 8) == 0 || strncmp(argv[i], "--config=", 9) == 0) {
			continue;
		} else if (strcmp(argv[i], "-wait") == 0 && i + 1 < argc) {
			wait_s = atoi(argv[++i]);
			if (wait_s < 1)
				return usage();
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "-help") == 0 ||
		           strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "help") == 0) {
			fputs(help_text, stdout);
			return 0;
		} else if (strcmp(argv[i], "-version") == 0 || strcmp(argv[i], "--version") == 0) {
			poseidon_print_version("poseidon-admin");
			return 0;
		} else if (nargs < 8) {
			args[nargs++] = argv[i];
		} else {
			return usage();
		}
	}
	if (nargs == 0)
		return usage();
	if (config_load(&cfg, argc, argv, &e) < 0 || config_apply_logging(&cfg, &e) < 0) {
		log_error("configuration error", "error", e.msg);
		return 2;
	}
	const char *c = args[0];
	if (strcmp(c, "config") == 0 && nargs == 1)
		return cmd_config(argc, argv);
	nomad_endpoint_from_config(&ep, &cfg);
	store = store_open(&cfg);
	nomad = nomad_open(&ep);
	if (!store || !nomad) {
		log_error("start-up failed", "error", "out of memory");
		return 1;
	}
	int rc;
	if (strcmp(c, "pools") == 0 && nargs == 1)
		rc = cmd_pools();
	else if (strcmp(c, "runners") == 0 && nargs == 2)
		rc = cmd_runners(args[1]);
	else if (strcmp(c, "destroy") == 0 && nargs == 2)
		rc = cmd_destroy(args[1]);
	else if (strcmp(c, "drain") == 0 && nargs == 2)
		rc = cmd_drain(args[1]);
	else if (strcmp(c, "resize") == 0 && nargs == 3)
		rc = cmd_resize(args[1], args[2]);
	else if (strcmp(c, "reconcile") == 0 && nargs == 1)
		rc = cmd_reconcile(wait_s);
	else
		rc = usage();
	store_close(store);
	nomad_close(nomad);
	return rc;
}
