/* metrics: see metrics.h. Module notes:
 * - The family table below is the single list of what is exported; a field in Redis whose family
 *   is not in it (or whose shape does not match) is skipped, so versions can be mixed.
 * - The pending batch is an open-addressing hash table keyed by field name, behind one mutex.
 *   Recording builds the field names with snprintf and adds under the lock: about a microsecond
 *   per request, no system call.
 * - Rendering parses the fields back into series (family, label text, value or buckets + sum),
 *   sorts them by family order and label text (natural order, so environment 10 follows 9), and
 *   writes them out; histograms are cumulated here.
 */
#include "metrics.h"

#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"

#define FIELD_MAX       512
#define MAX_BOUNDS      16
#define PUSH_TIMEOUT_MS 5000

/* ---- the families ---------------------------------------------------------------------------- */

enum ftype { T_COUNTER, T_GAUGE, T_HISTOGRAM };

struct family {
	const char *name;
	enum ftype type;
	const char *help;
	const double *bounds; /* histograms: upper bounds, ascending; +Inf is implied */
	int nbounds;
	const char *const *zero; /* label sets shown as 0 while nothing was counted; NULL-ended */
};

static const double request_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,    0.25,  0.5,    1,     2.5,  5,     10};
static const double startup_bounds[] = {0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300};
static const char *const outcomes[] = {"outcome=\"client_close\"", "outcome=\"error\"", "outcome=\"exit\"",
                                       "outcome=\"timeout\"", NULL};
static const char *const directions[] = {"direction=\"download\"", "direction=\"upload\"", NULL};
static const char *const kinds[] = {"kind=\"internal\"", "kind=\"overload\"", "kind=\"unreachable\"", NULL};
static const char *const nolabels[] = {"", NULL};
static const char *const refill_events[] = {"event=\"adopted\"",   "event=\"created\"",
                                            "event=\"destroyed\"", "event=\"orphan_purged\"",
                                            "event=\"purged\"",    "event=\"ready\"",
                                            "event=\"reaped\"",    "event=\"register_failed\"",
                                            NULL};
static const char *const results[] = {"result=\"failed\"", "result=\"ok\"", NULL};

enum {
	F_ENVS,
	F_POOL_SIZE,
	F_RUNNERS,
	F_CLAIMS,
	F_EMPTY,
	F_STARTUP,
	F_REQUESTS,
	F_DURATION,
	F_FILE_BYTES,
	F_EXECUTIONS,
	F_NOMAD_ERRORS,
	F_RECONNECTS,
	F_PLACEMENT,
	F_REDIS_ERRORS,
	F_REFILL_PASSES,
	F_REFILL_RUNNERS,
	F_RECONCILES,
	F_COUNT
};

#define NB(a) (int)(sizeof a / sizeof a[0])

static const struct family families[F_COUNT] = {
    [F_ENVS] = {"poseidon_environments", T_GAUGE, "Execution environments that exist.", NULL, 0, NULL},
    [F_POOL_SIZE] = {"poseidon_prewarming_pool_size", T_GAUGE,
                     "Configured prewarmingPoolSize of each execution environment.", NULL, 0, NULL},
    [F_RUNNERS] =
        {"poseidon_runners", T_GAUGE,
         "Runners of each environment by state: idle (ready in the pool), used (claimed), starting.", NULL, 0,
         NULL},
    [F_CLAIMS] = {"poseidon_runner_claims_total", T_COUNTER, "Runners handed out by POST /runners.", NULL, 0,
                  NULL},
    [F_EMPTY] = {"poseidon_empty_pool_total", T_COUNTER,
                 "Claims that found the pool empty (answered 500 NOMAD_OVERLOAD).", NULL, 0, NULL},
    [F_STARTUP] = {"poseidon_runner_startup_seconds", T_HISTOGRAM,
                   "Time from registering a runner's job to its allocation running (ready in the pool).",
                   startup_bounds, NB(startup_bounds), NULL},
    [F_REQUESTS] = {"poseidon_http_requests_total", T_COUNTER,
                    "REST requests by method, route pattern and status.", NULL, 0, NULL},
    [F_DURATION] = {"poseidon_http_request_duration_seconds", T_HISTOGRAM,
                    "Time a worker spent on a REST request, by method and route pattern.", request_bounds,
                    NB(request_bounds), NULL},
    [F_FILE_BYTES] = {"poseidon_file_bytes_total", T_COUNTER,
                      "File content bytes copied into runners (upload) and downloaded from them.", NULL, 0,
                      directions},
    [F_EXECUTIONS] = {"poseidon_executions_total", T_COUNTER, "Executions that ended, by outcome.", NULL, 0,
                      outcomes},
    [F_NOMAD_ERRORS] = {"poseidon_nomad_errors_total", T_COUNTER,
                        "Failed Nomad API calls by kind: unreachable, overload (429/5xx), internal (other).",
                        NULL, 0, kinds},
    [F_RECONNECTS] = {"poseidon_nomad_event_stream_reconnects_total", T_COUNTER,
                      "Times poseidon-refill reconnected to Nomad's event stream.", NULL, 0, nolabels},
    [F_PLACEMENT] = {"poseidon_nomad_placement_failures_total", T_COUNTER,
                     "Evaluations of an environment's jobs that Nomad could not place (FailedTGAllocs).", NULL,
                     0, NULL},
    [F_REDIS_ERRORS] = {"poseidon_redis_errors_total", T_COUNTER,
                        "Redis commands that failed: no connection, connection lost, or an error reply.", NULL, 0,
                        nolabels},
    [F_REFILL_PASSES] = {"poseidon_refill_passes_total", T_COUNTER,
                         "Refill passes of the leading poseidon-refill (flat: no daemon leads).", NULL, 0, nolabels},
    [F_REFILL_RUNNERS] = {"poseidon_refill_runner_events_total", T_COUNTER,
                          "What poseidon-refill did to runners: created, ready, destroyed, reaped, purged, adopted, "
                          "orphan_purged, register_failed.",
                          NULL, 0, refill_events},
    [F_RECONCILES] = {"poseidon_refill_reconciles_total", T_COUNTER,
                      "Reconcile passes of poseidon-refill against Nomad, by result.", NULL, 0, results},
};

/* ---- a growing string ---------------------------------------------------------------------- */

struct sb {
	char *p;
	size_t len, cap;
	int oom;
};

static void sb_printf(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sb *b, const char *fmt, ...)
{
	for (int pass = 0; pass < 2 && !b->oom; pass++) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if (b->p && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap : 4096;
		while (cap <= b->len + (size_t)n)
			cap *= 2;
		char *q = realloc(b->p, cap);
		if (!q) {
			b->oom = 1;
			return;
		}
		b->p = q;
		b->cap = cap;
	}
}

static char *sb_take(struct sb *b)
{
	if (b->oom || !b->p) {
		free(b->p);
		return b->oom ? NULL : calloc(1, 1);
	}
	return b->p;
}

/* ---- the pending batch --------------------------------------------------------------------- */

struct slot {
	char *field; /* NULL: empty */
	int is_float;
	long long n;
	double d;
};

static pthread_mutex_t batch_mu = PTHREAD_MUTEX_INITIALIZER;
static struct slot *tab;
static size_t tab_cap, tab_count;

static size_t hash(const char *s)
{
	size_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct slot *find_slot(struct slot *t, size_t cap, const char *field)
{
	for (size_t i = hash(field) & (cap - 1);; i = (i + 1) & (cap - 1))
		if (!t[i].field || strcmp(t[i].field, field) == 0)
			return &t[i];
}

/* Adds to field; batch_mu held. Drops the figure when the table is full or memory is out. */
static void add_locked(const char *field, int is_float, long long n, double d)
{
	if (tab_count + 1 > tab_cap / 2) {
		if (tab_count >= METRICS_PENDING_MAX)
			goto existing_only;
		size_t cap = tab_cap ? tab_cap * 2 : 64;
		struct slot *t = calloc(cap, sizeof *t);
		if (!t)
			goto existing_only;
		for (size_t i = 0; i < tab_cap; i++)
			if (tab[i].field)
				*find_slot(t, cap, tab[i].field) = tab[i];
		free(tab);
		tab = t;
		tab_cap = cap;
	}
	struct slot *s = find_slot(tab, tab_cap, field);
	if (!s->field) {
		if (!(s->field = strdup(field)))
			return;
		s->is_float = is_float;
		tab_count++;
	}
	s->n += n;
	s->d += d;
	return;
existing_only:
	if (tab_cap) {
		struct slot *e = find_slot(tab, tab_cap, field);
		if (e->field) {
			e->n += n;
			e->d += d;
		}
	}
}

void metrics_take_pending(char ***fields, char ***values, size_t *n)
{
	pthread_mutex_lock(&batch_mu);
	struct slot *t = tab;
	size_t cap = tab_cap, count = tab_count;
	tab = NULL;
	tab_cap = tab_count = 0;
	pthread_mutex_unlock(&batch_mu);
	*fields = calloc(count + 1, sizeof **fields);
	*values = calloc(count + 1, sizeof **values);
	*n = 0;
	for (size_t i = 0; i < cap; i++) {
		if (!t[i].field)
			continue;
		char v[64];
		if (t[i].is_float) {
			/* always with a '.' or an exponent: that is what makes it a HINCRBYFLOAT */
			snprintf(v, sizeof v, "%.17g", t[i].d);
			size_t l = strlen(v);
			if (!strpbrk(v, ".eEn") && l + 2 < sizeof v)
				memcpy(v + l, ".0", 3);
		} else {
			snprintf(v, sizeof v, "%lld", t[i].n);
		}
		if (*fields && *values && ((*values)[*n] = strdup(v))) {
			(*fields)[(*n)++] = t[i].field;
			continue;
		}
		free(t[i].field);
	}
	free(t);
}

/* Puts a batch that could not be sent back into the table (added to what came meanwhile). */
static void give_back(char **fields, char **values, size_t n)
{
	pthread_mutex_lock(&batch_mu);
	for (size_t i = 0; i < n; i++) {
		int is_float = strpbrk(values[i], ".eE") != NULL;
		add_locked(fields[i], is_float, is_float ? 0 : strtoll(values[i], NULL, 10),
		           is_float ? strtod(values[i], NULL) : 0);
	}
	pthread_mutex_unlock(&batch_mu);
}

/* ---- recording ----------------------------------------------------------------------------- */

/* Writes `key="value"` with the value escaped as the exposition format wants. */
static size_t label(char *out, size_t cap, const char *key, const char *value)
{
	size_t o = (size_t)snprintf(out, cap, "%s=\"", key);
	for (const char *p = value; *p && o + 3 < cap; p++) {
		if (*p == '\\' || *p == '"' || *p == '\n') {
			out[o++] = '\\';
			out[o++] = *p == '\n' ? 'n' : *p;
		} else {
			out[o++] = *p;
		}
	}
	if (o + 1 < cap)
		out[o++] = '"';
	out[o < cap ? o : cap - 1] = '\0';
	return o;
}

static void count_locked(int fam, const char *labels, long long n)
{
	char field[FIELD_MAX];
	snprintf(field, sizeof field, "%s{%s}", families[fam].name, labels);
	add_locked(field, 0, n, 0);
}

static void observe_locked(int fam, const char *labels, double v)
{
	const struct family *f = &families[fam];
	char field[FIELD_MAX];
	int b = 0;
	if (!isfinite(v))
		return;
	while (b < f->nbounds && v > f->bounds[b])
		b++;
	snprintf(field, sizeof field, "%s{%s}#%d", f->name, labels, b);
	add_locked(field, 0, 1, 0);
	snprintf(field, sizeof field, "%s{%s}#sum", f->name, labels);
	add_locked(field, 1, 0, v);
}

static const char *known_method(const char *m)
{
	static const char *const verbs[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
	for (size_t i = 0; m && i < sizeof verbs / sizeof *verbs; i++)
		if (strcmp(m, verbs[i]) == 0)
			return verbs[i];
	return "other";
}

void metrics_request(const char *method, const char *route, int status, double seconds)
{
	char labels[FIELD_MAX / 2], all[FIELD_MAX / 2 + 32], st[8];
	size_t o = label(labels, sizeof labels, "method", known_method(method));
	o += (size_t)snprintf(labels + o, sizeof labels - o, ",");
	label(labels + o, sizeof labels - o, "route", route ? route : "unmatched");
	snprintf(st, sizeof st, "%d", status >= 100 && status <= 599 ? status : 0);
	o = (size_t)snprintf(all, sizeof all, "%s,", labels);
	label(all + o, sizeof all - o, "status", st);
	pthread_mutex_lock(&batch_mu);
	count_locked(F_REQUESTS, all, 1);
	observe_locked(F_DURATION, labels, seconds);
	pthread_mutex_unlock(&batch_mu);
}

static void env_label(char *out, size_t cap, long long env)
{
	char id[24];
	snprintf(id, sizeof id, "%lld", env);
	label(out, cap, "environment_id", id);
}

void metrics_claim(long long env, int claimed)
{
	char labels[64];
	env_label(labels, sizeof labels, env);
	pthread_mutex_lock(&batch_mu);
	count_locked(claimed ? F_CLAIMS : F_EMPTY, labels, 1);
	pthread_mutex_unlock(&batch_mu);
}

void metrics_runner_startup(long long env, double seconds)
{
	char labels[64];
	env_label(labels, sizeof labels, env);
	pthread_mutex_lock(&batch_mu);
	observe_locked(F_STARTUP, labels, seconds < 0 ? 0 : seconds);
	pthread_mutex_unlock(&batch_mu);
}

void metrics_file_bytes(int upload, unsigned long long bytes)
{
	if (!bytes)
		return;
	pthread_mutex_lock(&batch_mu);
	count_locked(F_FILE_BYTES, upload ? directions[1] : directions[0], (long long)bytes);
	pthread_mutex_unlock(&batch_mu);
}

void metrics_nomad_error(enum perr_kind kind)
{
	const char *k = kind == PERR_NOMAD_UNREACHABLE ? kinds[2]
	                : kind == PERR_NOMAD_OVERLOAD  ? kinds[1]
	                : kind == PERR_NOMAD_INTERNAL  ? kinds[0]
	                                               : "kind=\"other\"";
	pthread_mutex_lock(&batch_mu);
	count_locked(F_NOMAD_ERRORS, k, 1);
	pthread_mutex_unlock(&batch_mu);
}

void metrics_placement_failure(long long env)
{
	char labels[64];
	env_label(labels, sizeof labels, env);
	pthread_mutex_lock(&batch_mu);
	count_locked(F_PLACEMENT, labels, 1);
	pthread_mutex_unlock(&batch_mu);
}

void metrics_redis_error(void)
{
	pthread_mutex_lock(&batch_mu);
	count_locked(F_REDIS_ERRORS, "", 1);
	pthread_mutex_unlock(&batch_mu);
}

void metrics_refill_pass(void)
{
	pthread_mutex_lock(&batch_mu);
	count_locked(F_REFILL_PASSES, "", 1);
	pthread_mutex_unlock(&batch_mu);
}

void metrics_refill_runners(const char *event, long long n)
{
	char labels[64];
	if (n <= 0)
		return;
	for (const char *const *k = refill_events; *k; k++) {
		snprintf(labels, sizeof labels, "event=\"%s\"", event);
		if (strcmp(labels, *k) == 0) {
			pthread_mutex_lock(&batch_mu);
			count_locked(F_REFILL_RUNNERS, *k, n);
			pthread_mutex_unlock(&batch_mu);
			return;
		}
	}
}

void metrics_reconcile(int ok)
{
	pthread_mutex_lock(&batch_mu);
	count_locked(F_RECONCILES, ok ? results[1] : results[0], 1);
	pthread_mutex_unlock(&batch_mu);
}

void metrics_event_stream_reconnect(void)
{
	pthread_mutex_lock(&batch_mu);
	count_locked(F_RECONNECTS, "", 1);
	pthread_mutex_unlock(&batch_mu);
}

int metrics_execution_outcome(struct store *s, const char *outcome)
{
	static const char *const known[] = {"exit", "timeout", "error", "client_close"};
	const char *o = "other";
	char labels[64], field[FIELD_MAX];
	for (size_t i = 0; outcome && i < sizeof known / sizeof *known; i++)
		if (strcmp(outcome, known[i]) == 0)
			o = known[i];
	label(labels, sizeof labels, "outcome", o);
	snprintf(field, sizeof field, "%s{%s}", families[F_EXECUTIONS].name, labels);
	if (s) {
		struct perr e;
		const char *f[] = {field}, *v[] = {"1"};
		if (store_metrics_incr(s, f, v, 1, &e) == 0)
			return 0;
		log_debug("execution outcome not sent to redis; queued", "error", e.msg);
	}
	pthread_mutex_lock(&batch_mu);
	add_locked(field, 0, 1, 0);
	pthread_mutex_unlock(&batch_mu);
	return s ? -1 : 0;
}

/* ---- sending ------------------------------------------------------------------------------- */

int metrics_flush(struct store *s, struct perr *e)
{
	char **fields, **values;
	size_t n;
	metrics_take_pending(&fields, &values, &n);
	int rc =
	    n ? store_metrics_incr(s, (const char *const *)fields, (const char *const *)values, n, e) : 0;
	if (rc < 0)
		give_back(fields, values, n);
	store_metrics_free(fields, values, n);
	return rc;
}

static struct {
	pthread_t thread;
	int running, stop;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct config cfg;
	int (*leader)(void);
} fl = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void *flusher(void *arg)
{
	(void)arg;
	struct store *s = store_open(&fl.cfg);
	struct perr e;
	int failing = 0, push_failing = 0;
	int push = fl.leader && fl.cfg.influxdb.url[0];
	long long next_push = clock_mono_ms() + (long long)fl.cfg.influxdb.interval * 1000;
	pthread_mutex_lock(&fl.mu);
	while (s) {
		int stopping = fl.stop;
		if (!stopping) {
			struct timespec until;
			clock_gettime(CLOCK_MONOTONIC, &until);
			long long ns = until.tv_nsec + (long long)fl.cfg.metrics.flushms * 1000000;
			until.tv_sec += (time_t)(ns / 1000000000);
			until.tv_nsec = (long)(ns % 1000000000);
			pthread_cond_timedwait(&fl.cv, &fl.mu, &until);
			stopping = fl.stop;
		}
		pthread_mutex_unlock(&fl.mu);
		int rc = metrics_flush(s, &e);
		if (rc < 0 && !failing)
			log_warn("metrics not sent to redis; kept for the next try", "error", e.msg);
		else if (rc == 0 && failing)
			log_info("metrics sent to redis again");
		failing = rc < 0;
		if (push && !stopping && clock_mono_ms() >= next_push) {
			next_push = clock_mono_ms() + (long long)fl.cfg.influxdb.interval * 1000;
			if (fl.leader()) {
				rc = metrics_influx_push(s, &fl.cfg, &e);
				if (rc < 0 && !push_failing)
					log_warn("metrics push to influxdb failed; retrying", "error", e.msg);
				else if (rc == 0 && push_failing)
					log_info("metrics push to influxdb works again");
				push_failing = rc < 0;
			}
		}
		pthread_mutex_lock(&fl.mu);
		if (stopping)
			break;
	}
	pthread_mutex_unlock(&fl.mu);
	store_close(s);
	return NULL;
}

int metrics_flusher_start(const struct config *c, int (*influx_leader)(void))
{
	sigset_t all, old;
	if (fl.running)
		return 0;
	fl.cfg = *c;
	fl.leader = influx_leader;
	fl.stop = 0;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&fl.cv, &ca);
	pthread_condattr_destroy(&ca);
	/* the thread inherits this mask: signals keep going to the program's own threads */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int rc = pthread_create(&fl.thread, NULL, flusher, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		pthread_cond_destroy(&fl.cv);
		return -1;
	}
	fl.running = 1;
	if (influx_leader && c->influxdb.url[0] && !c->influxdb.bucket[0] && !c->influxdb.database[0])
		log_warn("influxdb.url is set but neither influxdb.bucket nor influxdb.database: pushes will "
		         "fail");
	return 0;
}

void metrics_flusher_stop(void)
{
	if (!fl.running)
		return;
	pthread_mutex_lock(&fl.mu);
	fl.stop = 1;
	pthread_cond_signal(&fl.cv);
	pthread_mutex_unlock(&fl.mu);
	pthread_join(fl.thread, NULL);
	pthread_cond_destroy(&fl.cv);
	fl.running = 0;
}

/* ---- parsing fields back into series --------------------------------------------------------- */

struct series {
	int fam;
	char labels[FIELD_MAX]; /* the text between the braces, "" for none */
	long long value;        /* counters and gauges */
	long long buckets[MAX_BOUNDS + 1];
	double sum;
};

struct set {
	struct series *v;
	size_t n, cap;
	int oom;
};

static struct series *series_get(struct set *s, int fam, const char *labels, size_t llen)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].fam == fam && strlen(s->v[i].labels) == llen &&
		    strncmp(s->v[i].labels, labels, llen) == 0)
			return &s->v[i];
	if (llen >= FIELD_MAX)
		return NULL;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		struct series *v = realloc(s->v, cap * sizeof *v);
		if (!v) {
			s->oom = 1;
			return NULL;
		}
		s->v = v;
		s->cap = cap;
	}
	struct series *x = &s->v[s->n++];
	memset(x, 0, sizeof *x);
	x->fam = fam;
	memcpy(x->labels, labels, llen);
	x->labels[llen] = '\0';
	return x;
}

/* The end of a label text starting after '{': the '}' outside quotes, or NULL. */
static const char *labels_end(const char *p)
{
	int quoted = 0;
	for (; *p; p++) {
		if (quoted && *p == '\\' && p[1])
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (!quoted && *p == '}')
			return p;
	}
	return NULL;
}

static void add_field(struct set *s, const char *field, const char *value)
{
	size_t nl = strcspn(field, "{#");
	int fam = -1;
	for (int i = 0; i < F_COUNT; i++)
		if (families[i].type != T_GAUGE && strlen(families[i].name) == nl &&
		    strncmp(families[i].name, field, nl) == 0)
			fam = i;
	if (fam < 0 || field[nl] != '{')
		return;
	const char *lb = field + nl + 1, *le = labels_end(lb);
	if (!le)
		return;
	const char *suffix = le + 1;
	const struct family *f = &families[fam];
	if (f->type == T_COUNTER) {
		struct series *x = *suffix ? NULL : series_get(s, fam, lb, (size_t)(le - lb));
		if (x)
			x->value += strtoll(value, NULL, 10);
		return;
	}
	if (suffix[0] != '#')
		return;
	if (strcmp(suffix, "#sum") == 0) {
		struct series *x = series_get(s, fam, lb, (size_t)(le - lb));
		if (x)
			x->sum += strtod(value, NULL);
		return;
	}
	char *end;
	long b = strtol(suffix + 1, &end, 10);
	if (end == suffix + 1 || *end || b < 0 || b > f->nbounds)
		return;
	struct series *x = series_get(s, fam, lb, (size_t)(le - lb));
	if (x)
		x->buckets[b] += strtoll(value, NULL, 10);
}

static int cmp_series(const void *a, const void *b)
{
	const struct series *x = a, *y = b;
	if (x->fam != y->fam)
		return x->fam < y->fam ? -1 : 1;
	return strverscmp(x->labels, y->labels);
}

/* Every series to show: the stored ones, the zeros of known label sets, and the gauges. */
static int collect(struct set *s, char *const *fields, char *const *values, size_t n,
                   const struct env_stats *st, size_t nst)
{
	for (size_t i = 0; i < n; i++)
		add_field(s, fields[i], values[i]);
	for (int fam = 0; fam < F_COUNT; fam++)
		for (const char *const *z = families[fam].zero; z && *z; z++)
			series_get(s, fam, *z, strlen(*z));
	struct series *x = series_get(s, F_ENVS, "", 0);
	if (x)
		x->value = (long long)nst;
	for (size_t i = 0; i < nst; i++) {
		static const char *const states[] = {"idle", "used", "starting"};
		char env[64], l[128];
		unsigned long long counts[] = {st[i].idle, st[i].used, st[i].starting};
		env_label(env, sizeof env, st[i].id);
		if ((x = series_get(s, F_POOL_SIZE, env, strlen(env))))
			x->value = (long long)st[i].prewarming_pool_size;
		for (int k = 0; k < 3; k++) {
			size_t o = (size_t)snprintf(l, sizeof l, "%s,", env);
			label(l + o, sizeof l - o, "state", states[k]);
			if ((x = series_get(s, F_RUNNERS, l, strlen(l))))
				x->value = (long long)counts[k];
		}
	}
	if (s->n)
		qsort(s->v, s->n, sizeof *s->v, cmp_series);
	return s->oom ? -1 : 0;
}

/* ---- Prometheus text ----------------------------------------------------------------------- */

static const char *type_name(enum ftype t)
{
	return t == T_COUNTER ? "counter" : t == T_GAUGE ? "gauge" : "histogram";
}

char *metrics_render_prometheus(char *const *fields, char *const *values, size_t n,
                                const struct env_stats *st, size_t nst)
{
	struct set s = {0};
	struct sb b = {0};
	if (collect(&s, fields, values, n, st, nst) < 0) {
		free(s.v);
		return NULL;
	}
	size_t i = 0;
	for (int fam = 0; fam < F_COUNT; fam++) {
		const struct family *f = &families[fam];
		sb_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, type_name(f->type));
		for (; i < s.n && s.v[i].fam == fam; i++) {
			const struct series *x = &s.v[i];
			const char *open = x->labels[0] ? "{" : "", *close = x->labels[0] ? "}" : "";
			if (f->type != T_HISTOGRAM) {
				sb_printf(&b, "%s%s%s%s %lld\n", f->name, open, x->labels, close, x->value);
				continue;
			}
			long long cum = 0;
			const char *sep = x->labels[0] ? "," : "";
			for (int k = 0; k <= f->nbounds; k++) {
				char le[32];
				cum += x->buckets[k];
				if (k < f->nbounds)
					snprintf(le, sizeof le, "%g", f->bounds[k]);
				else
					snprintf(le, sizeof le, "+Inf");
				sb_printf(&b, "%s_bucket{%s%sle=\"%s\"} %lld\n", f->name, x->labels, sep, le,
				          cum);
			}
			sb_printf(&b, "%s_sum%s%s%s %.15g\n", f->name, open, x->labels, close, x->sum);
			sb_printf(&b, "%s_count%s%s%s %lld\n", f->name, open, x->labels, close, cum);
		}
	}
	free(s.v);
	return sb_take(&b);
}

/* ---- InfluxDB line protocol ------------------------------------------------------------------ */

/* Writes s with the characters line protocol wants escaped in tags (',', '=', ' ') escaped. */
static void influx_escaped(struct sb *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == ',' || s[i] == '=' || s[i] == ' ')
			sb_printf(b, "\\");
		sb_printf(b, "%c", s[i] == '\n' ? ' ' : s[i]);
	}
}

/* ",k=v" per label of a Prometheus label text, values unescaped and re-escaped for Influx. */
static void influx_tags(struct sb *b, const char *labels)
{
	const char *p = labels;
	while (*p) {
		const char *eq = strchr(p, '=');
		if (!eq || eq[1] != '"')
			return;
		char v[FIELD_MAX];
		size_t vl = 0;
		const char *q = eq + 2;
		for (; *q && *q != '"' && vl + 1 < sizeof v; q++) {
			if (*q == '\\' && q[1]) {
				q++;
				v[vl++] = *q == 'n' ? '\n' : *q;
			} else {
				v[vl++] = *q;
			}
		}
		if (vl) { /* an empty tag value is not allowed in line protocol */
			sb_printf(b, ",");
			influx_escaped(b, p, (size_t)(eq - p));
			sb_printf(b, "=");
			influx_escaped(b, v, vl);
		}
		p = *q ? q + 1 : q;
		if (*p == ',')
			p++;
	}
}

char *metrics_render_influx(char *const *fields, char *const *values, size_t n, const struct env_stats *st,
                            size_t nst, const char *stage, long long ts_ns)
{
	struct set s = {0};
	struct sb b = {0};
	if (collect(&s, fields, values, n, st, nst) < 0) {
		free(s.v);
		return NULL;
	}
	for (size_t i = 0; i < s.n; i++) {
		const struct series *x = &s.v[i];
		const struct family *f = &families[x->fam];
		sb_printf(&b, "%s", f->name);
		influx_tags(&b, x->labels);
		if (stage && *stage) {
			sb_printf(&b, ",stage=");
			influx_escaped(&b, stage, strlen(stage));
		}
		if (f->type != T_HISTOGRAM) {
			sb_printf(&b, " value=%lldi %lld\n", x->value, ts_ns);
			continue;
		}
		long long cum = 0;
		sb_printf(&b, " ");
		for (int k = 0; k <= f->nbounds; k++) {
			cum += x->buckets[k];
			if (k < f->nbounds)
				sb_printf(&b, "le_%g=%lldi,", f->bounds[k], cum);
			else
				sb_printf(&b, "le_inf=%lldi,", cum);
		}
		sb_printf(&b, "sum=%.15g,count=%lldi %lld\n", x->sum, cum, ts_ns);
	}
	free(s.v);
	return sb_take(&b);
}

/* ---- reading Redis ------------------------------------------------------------------------- */

static int read_all(struct store *s, char ***fields, char ***values, size_t *n, struct env_stats **st,
                    size_t *nst, struct perr *e)
{
	if (store_metrics_read(s, fields, values, n, e) < 0)
		return -1;
	if (store_statistics(s, st, nst, e) < 0) {
		store_metrics_free(*fields, *values, *n);
		return -1;
	}
	return 0;
}

char *metrics_prometheus(struct store *s, struct perr *e)
{
	char **fields, **values;
	size_t n, nst;
	struct env_stats *st;
	if (read_all(s, &fields, &values, &n, &st, &nst, e) < 0)
		return NULL;
	char *text = metrics_render_prometheus(fields, values, n, st, nst);
	store_metrics_free(fields, values, n);
	free(st);
	if (!text)
		perr_set(e, PERR_UNKNOWN, "out of memory");
	return text;
}

struct reply {
	char text[256];
	size_t len;
};

static size_t keep_reply(char *p, size_t size, size_t nmemb, void *ud)
{
	struct reply *r = ud;
	size_t n = size * nmemb, room = sizeof r->text - 1 - r->len;
	memcpy(r->text + r->len, p, n < room ? n : room);
	r->len += n < room ? n : room;
	r->text[r->len] = '\0';
	return n;
}

int metrics_influx_push(struct store *s, const struct config *c, struct perr *e)
{
	char **fields, **values;
	size_t n, nst;
	struct env_stats *st;
	const struct {
		const char *url, *token, *org, *bucket, *db;
	} in = {c->influxdb.url, c->influxdb.token, c->influxdb.organization, c->influxdb.bucket,
	        c->influxdb.database};
	if (!in.url[0])
		return perr_set(e, PERR_BAD_REQUEST, "influxdb.url is not set");
	if (!in.bucket[0] && !in.db[0])
		return perr_set(e, PERR_BAD_REQUEST,
		                "set influxdb.bucket (InfluxDB 2) or influxdb.database (InfluxDB 1)");
	if (read_all(s, &fields, &values, &n, &st, &nst, e) < 0)
		return -1;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	char *body = metrics_render_influx(fields, values, n, st, nst, c->influxdb.stage,
	                                   (long long)now.tv_sec * 1000000000LL + now.tv_nsec);
	store_metrics_free(fields, values, n);
	free(st);
	CURL *curl = curl_easy_init();
	if (!body || !curl) {
		free(body);
		curl_easy_cleanup(curl);
		return perr_set(e, PERR_UNKNOWN, "out of memory");
	}
	char url[CONFIG_STR * 4 + 64], auth[CONFIG_STR + 32];
	size_t ul = strlen(in.url);
	while (ul > 0 && in.url[ul - 1] == '/')
		ul--;
	char *a = curl_easy_escape(curl, in.bucket[0] ? in.org : in.db, 0);
	char *bk = curl_easy_escape(curl, in.bucket, 0);
	if (in.bucket[0])
		snprintf(url, sizeof url, "%.*s/api/v2/write?org=%s&bucket=%s&precision=ns", (int)ul, in.url,
		         a ? a : "", bk ? bk : "");
	else
		snprintf(url, sizeof url, "%.*s/write?db=%s&precision=ns", (int)ul, in.url, a ? a : "");
	curl_free(a);
	curl_free(bk);
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: text/plain; charset=utf-8");
	if (in.token[0]) {
		snprintf(auth, sizeof auth, "Authorization: Token %s", in.token);
		h = curl_slist_append(h, auth);
	}
	h = curl_slist_append(h, "Expect:");
	struct reply r = {.len = 0};
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_POST, 1L);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, keep_reply);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)PUSH_TIMEOUT_MS);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	CURLcode rc = curl_easy_perform(curl);
	long status = 0;
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	curl_easy_cleanup(curl);
	free(body);
	if (rc != CURLE_OK)
		return perr_set(e, PERR_UNKNOWN, "influxdb %.*s: %s", (int)ul, in.url,
		                curl_easy_strerror(rc));
	if (status < 200 || status > 299)
		return perr_set(e, PERR_UNKNOWN, "influxdb %.*s answered %ld: %s", (int)ul, in.url, status,
		                r.text);
	return 0;
}
