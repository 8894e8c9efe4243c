/* pool: see pool.h. Module notes:
 * - Redis is the truth for what we handed out; Nomad is the truth for what runs. Every decision
 *   reads the current Redis state of the runner (one script call) before acting, so replayed or
 *   duplicated events are harmless: an allocation event only counts for the runner's current
 *   allocation.
 * - A runner is written to Redis (starting) before its job is registered, so a job in Nomad that
 *   Redis does not know is an orphan; the one exception is an environment Redis lost entirely
 *   (FLUSHALL, a new Redis): then its template job brings it back and its runner jobs are adopted,
 *   used ones recognised by the Meta the daemon writes after each claim (docs/nomad-api.md 3.5).
 * - Purges are collected during a pass and sent together, concurrently.
 */
#include "pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobspec.h"
#include "log.h"
#include "metrics.h"
#include "nomad.h"
#include "store.h"

#define MAX_CREATE_PER_PASS 256  /* runner jobs registered per environment and pass */
#define MAX_REAP_PER_PASS 256
#define MAX_CLAIMED_PER_PASS 64
#define YOUNG_STARTING_MS 30000  /* a starting runner this young may not be in Nomad's list yet */
#define YOUNG_TEMPLATE_MS 3000   /* a template this young may belong to a PUT still storing it */
#define BACKOFF_MAX_MS 30000

struct env_state {
	long long env;
	long long generation; /* last generation swept */
	long long backoff_until_ms;
	int failures;
};

struct pool {
	struct config cfg;
	struct store *store;
	struct nomad *nomad;
	json_object *tmpl;
	struct jobspec_opts jobopts;
	struct env_state *envs;
	size_t nenvs;
	char **purge;
	size_t npurge, cap;
	struct pool_counters c;
	struct pool_counters reported; /* what the metrics have of c */
	long long started_ns;          /* wall clock, as Nomad's ModifyTime */
};

/* Adds what the counters gained since the last call to the metrics. */
static void report(struct pool *p)
{
	struct pool_counters *c = &p->c, *r = &p->reported;
	metrics_refill_runners("created", c->created - r->created);
	metrics_refill_runners("ready", c->ready - r->ready);
	metrics_refill_runners("destroyed", c->destroyed - r->destroyed);
	metrics_refill_runners("reaped", c->reaped - r->reaped);
	metrics_refill_runners("purged", c->purged - r->purged);
	metrics_refill_runners("adopted", c->adopted - r->adopted);
	metrics_refill_runners("orphan_purged", c->orphans - r->orphans);
	metrics_refill_runners("register_failed", c->register_failures - r->register_failures);
	*r = *c;
}

struct pool *pool_new(const struct config *c, struct perr *e)
{
	struct pool *p = calloc(1, sizeof *p);
	struct nomad_endpoint ep;
	if (!p)
		return perr_set(e, PERR_UNKNOWN, "out of memory"), NULL;
	p->cfg = *c;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	p->started_ns = (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
	nomad_endpoint_from_config(&ep, c);
	p->store = store_open(c);
	p->nomad = nomad_open(&ep);
	jobspec_opts_from_config(&p->jobopts, c);
	p->tmpl = jobspec_load(c->server.templatejobfile, e);
	if (!p->store || !p->nomad || !p->tmpl) {
		pool_free(p);
		return NULL;
	}
	return p;
}

void pool_free(struct pool *p)
{
	if (!p)
		return;
	store_close(p->store);
	nomad_close(p->nomad);
	json_object_put(p->tmpl);
	store_free_ids(p->purge, p->npurge);
	free(p->envs);
	free(p);
}

void pool_get_counters(const struct pool *p, struct pool_counters *out) { *out = p->c; }

static struct env_state *env_state(struct pool *p, long long env)
{
	for (size_t i = 0; i < p->nenvs; i++)
		if (p->envs[i].env == env)
			return &p->envs[i];
	struct env_state *n = realloc(p->envs, (p->nenvs + 1) * sizeof *n);
	if (!n)
		return NULL;
	p->envs = n;
	memset(&n[p->nenvs], 0, sizeof n[0]);
	n[p->nenvs].env = env;
	n[p->nenvs].generation = -1; /* never swept */
	return &n[p->nenvs++];
}

static void queue_purge(struct pool *p, const char *job)
{
	if (p->npurge == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		char **n = realloc(p->purge, cap * sizeof *n);
		if (!n)
			return;
		p->purge = n;
		p->cap = cap;
	}
	if ((p->purge[p->npurge] = strdup(job)))
		p->npurge++;
}

static int flush_purges(struct pool *p, struct perr *e)
{
	if (!p->npurge)
		return 0;
	int failed = nomad_jobs_purge(p->nomad, p->purge, p->npurge, p->cfg.refill.parallelism, e);
	p->c.purged += (long long)p->npurge - failed;
	if (failed) {
		char n[24];
		log_warn("purging runner jobs failed; the next reconcile retries", "failed", log_int(n, failed),
			 "error", e->msg);
	}
	for (size_t i = 0; i < p->npurge; i++)
		free(p->purge[i]);
	p->npurge = 0;
	return failed ? -1 : 0;
}

/* Forgets a runner in Redis and purges its job. */
static void destroy_runner(struct pool *p, const char *id, const char *why)
{
	struct perr e;
	int existed = store_destroy(p->store, id, 0, NULL, &e);
	if (existed < 0) {
		log_warn("could not remove runner from redis", "runner", id, "error", e.msg);
		return;
	}
	if (existed) {
		p->c.destroyed++;
		log_info("runner destroyed", "runner", id, "reason", why);
	}
	queue_purge(p, id);
}

/* destroy_runner, but only while the runner is still in state: an idle runner listed a moment
 * ago may have been claimed since, and then it belongs to its user (trim, poseidon-admin drain). */
static void destroy_runner_in_state(struct pool *p, const char *id, const char *state, const char *why)
{
	struct perr e;
	int existed = store_destroy_in_state(p->store, id, state, NULL, &e);
	if (existed < 0)
		log_warn("could not remove runner from redis", "runner", id, "error", e.msg);
	if (existed <= 0)
		return;
	p->c.destroyed++;
	log_info("runner destroyed", "runner", id, "reason", why);
	queue_purge(p, id);
}

/* ---- refill ----------------------------------------------------------------------------- */

static void backoff(struct pool *p, struct env_state *es, long long now)
{
	long long ms = 1000LL << (es->failures < 5 ? es->failures : 5);
	es->failures++;
	es->backoff_until_ms = now + (ms > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ms);
	(void)p;
}

static int create_runners(struct pool *p, const struct env_stats *st, struct env_state *es, int count,
			  long long now, struct perr *e)
{
	struct environment env;
	long long gen;
	int found = store_env_get(p->store, st->id, &env, &gen, e);
	if (found <= 0 || gen != st->generation)
		return found < 0 ? -1 : 0; /* deleted or changed meanwhile: the next pass sees it */
	if (count > MAX_CREATE_PER_PASS)
		count = MAX_CREATE_PER_PASS;
	json_object **jobs = calloc((size_t)count, sizeof *jobs);
	char (*ids)[MODEL_RUNNER_ID_MAX] = calloc((size_t)count, sizeof *ids);
	int *results = calloc((size_t)count, sizeof *results);
	int n = 0, rc = 0;
	/* the first runners of an environment pull the image afresh, refills do not (as the reference) */
	int force_pull = st->idle + st->used + st->starting == 0;
	for (int i = 0; jobs && ids && results && i < count; i++) {
		nomad_new_runner_id(st->id, ids[n], sizeof ids[n]);
		jobs[n] = jobspec_runner_job(p->tmpl, &env, ids[n], force_pull, &p->jobopts, e);
		if (!jobs[n]) {
			rc = -1;
			break;
		}
		/* Redis first: a job Nomad has and Redis does not is an orphan, never a lost runner */
		int added = store_runner_add_starting(p->store, st->id, gen, ids[n], e);
		if (added <= 0) {
			/* 0: the environment was deleted or replaced since the pass read it */
			json_object_put(jobs[n]);
			rc = added < 0 ? -1 : rc;
			break;
		}
		n++;
	}
	if (n > 0) {
		struct perr re;
		int failed = nomad_jobs_register(p->nomad, jobs, (size_t)n, p->cfg.refill.parallelism, results, &re);
		for (int i = 0; i < n; i++) {
			if (results[i] == 0) {
				p->c.created++;
				/* an environment DELETE or PUT that swept this runner while its job was
				 * being registered found no job to stop: stop it now */
				struct runner r;
				struct perr ge;
				if (store_runner_get(p->store, ids[i], &r, &ge) == 0)
					queue_purge(p, ids[i]);
				continue;
			}
			struct perr de;
			store_destroy(p->store, ids[i], 0, NULL, &de);
			p->c.register_failures++;
		}
		if (failed) {
			char envs[24], f[24];
			log_warn("registering runner jobs failed", "env", log_int(envs, st->id), "failed", log_int(f, failed),
				 "error", re.msg);
			backoff(p, es, now);
			*e = re;
			rc = -1;
		} else {
			es->failures = 0;
		}
	}
	for (int i = 0; i < n; i++)
		json_object_put(jobs[i]);
	free(jobs);
	free(ids);
	free(results);
	if (!jobs || !ids || !results)
		return perr_set(e, PERR_UNKNOWN, "out of memory");
	return rc;
}

/* Destroys runners of older generations (idle and used, as the reference does on an update) and
 * starting runners that never came up. */
static int sweep(struct pool *p, const struct env_stats *st, long long now, struct perr *e)
{
	struct runner *rs;
	size_t n;
	if (store_env_runners(p->store, st->id, &rs, &n, e) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (rs[i].generation < st->generation)
			destroy_runner(p, rs[i].id, "environment was replaced");
		else if (strcmp(rs[i].state, "starting") == 0 && rs[i].created_ms &&
			 now - rs[i].created_ms > (long long)p->cfg.refill.starttimeout * 1000)
			destroy_runner(p, rs[i].id, "allocation did not start in time");
	}
	free(rs);
	return 0;
}

/* More idle + starting runners than the pool size (it was lowered): the newest go first. The
 * excess is counted in the list read here, not in the pass's statistics: runners claimed since
 * those were read would be trimmed twice over, once by their user and once here. A runner claimed
 * after this read is skipped by destroy_runner_in_state, and counts as gone, which it is. */
static int trim(struct pool *p, const struct env_stats *st, struct perr *e)
{
	struct runner *rs;
	size_t n;
	if (store_env_runners(p->store, st->id, &rs, &n, e) < 0)
		return -1;
	long long excess = -(long long)st->prewarming_pool_size;
	for (size_t i = 0; i < n; i++)
		excess += strcmp(rs[i].state, "starting") == 0 || strcmp(rs[i].state, "idle") == 0;
	for (int pass = 0; pass < 2; pass++) /* starting ones first, then idle */
		for (size_t i = n; i-- > 0 && excess > 0;)
			if (strcmp(rs[i].state, pass == 0 ? "starting" : "idle") == 0) {
				destroy_runner_in_state(p, rs[i].id, rs[i].state, "pool is larger than its size");
				excess--;
			}
	free(rs);
	return 0;
}

static int reap(struct pool *p, struct perr *e)
{
	char **ids;
	size_t n;
	if (store_expired_runners(p->store, MAX_REAP_PER_PASS, &ids, &n, e) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		p->c.reaped++;
		destroy_runner(p, ids[i], "inactivity timeout");
	}
	store_free_ids(ids, n);
	return 0;
}

/* Writes Meta used=true/timeout into the jobs of runners claimed since the last pass, so that a
 * Redis that lost everything can tell used from idle runners again. */
static int mark_claimed(struct pool *p, struct perr *e)
{
	char **ids;
	size_t n;
	if (store_pop_claimed(p->store, MAX_CLAIMED_PER_PASS, &ids, &n, e) < 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		struct runner r;
		json_object *job = NULL;
		int changed = 0;
		if (store_runner_get(p->store, ids[i], &r, e) <= 0 || strcmp(r.state, "used") != 0)
			continue;
		if (nomad_job_read(p->nomad, ids[i], &job, e) == 1 &&
		    jobspec_set_used(job, 1, r.inactivity_timeout, &changed, e) == 0 && changed) {
			/* The API may destroy and purge the runner while we hold its job: look again, and
			 * register only over the job as read (EnforceIndex), so that a purged job is never
			 * created again (it once came back until reconcile purged it) */
			json_object *v;
			unsigned long long idx = json_object_object_get_ex(job, "JobModifyIndex", &v)
							 ? (unsigned long long)json_object_get_int64(v)
							 : 0;
			struct runner again;
			int reg = store_runner_get(p->store, ids[i], &again, e) > 0 && strcmp(again.state, "used") == 0
					  ? nomad_job_register_over(p->nomad, job, idx, NULL, e)
					  : 0;
			if (reg == 1) {
				log_debug("runner changed in nomad while it was marked used", "runner", ids[i], "error",
					  e->msg);
			} else if (reg < 0) {
				log_warn("could not mark runner used in nomad", "runner", ids[i], "error", e->msg);
				rc = -1;
			}
		}
		json_object_put(job);
	}
	store_free_ids(ids, n);
	return rc;
}

int pool_tick(struct pool *p, struct perr *e)
{
	struct env_stats *st;
	size_t n;
	long long now;
	int rc = 0;
	struct perr one;
	if (store_time_ms(p->store, &now, e) < 0 || store_statistics(p->store, &st, &n, e) < 0)
		return -1;
	perr_clear(e);
	for (size_t i = 0; i < n; i++) {
		struct env_state *es = env_state(p, st[i].id);
		if (!es)
			continue;
		if (es->generation != st[i].generation) {
			/* new or replaced environment: sweep the old generation first (what it destroys
			 * is refilled in the next pass; a new environment has nothing to sweep) */
			if (sweep(p, &st[i], now, &one) == 0)
				es->generation = st[i].generation;
			else {
				rc = -1, *e = one;
				continue;
			}
		}
		if (now < es->backoff_until_ms)
			continue;
		long long missing = (long long)st[i].prewarming_pool_size - (long long)(st[i].idle + st[i].starting);
		if (missing > 0 && create_runners(p, &st[i], es, (int)missing, now, &one) < 0)
			rc = -1, *e = one;
		else if (missing < 0 && trim(p, &st[i], &one) < 0)
			rc = -1, *e = one;
	}
	free(st);
	if (reap(p, &one) < 0)
		rc = -1, *e = one;
	if (mark_claimed(p, &one) < 0)
		rc = -1, *e = one;
	if (flush_purges(p, &one) < 0)
		rc = -1, *e = one;
	metrics_refill_pass();
	report(p);
	return rc;
}

/* ---- events ----------------------------------------------------------------------------- */

/* metrics: a runner registered at created_ms (Redis time) just became ready */
static void note_ready(struct pool *p, long long env, long long created_ms)
{
	struct perr e;
	long long now;
	if (created_ms > 0 && store_time_ms(p->store, &now, &e) == 0)
		metrics_runner_startup(env, (double)(now - created_ms) / 1000.0);
}

static int is_running(const struct nomad_alloc *a)
{
	return strcmp(a->client_status, "running") == 0 && strcmp(a->desired_status, "run") == 0;
}

static void on_alloc(struct pool *p, const struct nomad_alloc *a)
{
	struct perr e;
	struct runner r;
	long long env;
	if (!nomad_runner_env(a->job_id, &env) || strcmp(a->task_group, "default-group") != 0)
		return;
	int known = store_runner_get(p->store, a->job_id, &r, &e);
	if (known <= 0)
		return; /* gone, or an orphan: the reconcile purges orphans */
	int current = r.alloc_id[0] == '\0' || strcmp(r.alloc_id, a->id) == 0;
	int used = strcmp(r.state, "used") == 0, starting = strcmp(r.state, "starting") == 0;

	if (is_running(a)) {
		if (starting) {
			if (store_runner_ready(p->store, a->job_id, a->id, a->node_id, a->ports, a->nports, &e) > 0) {
				p->c.ready++;
				note_ready(p, r.env, r.created_ms);
				log_debug("runner ready", "runner", a->job_id, "alloc", a->id);
			}
		} else if (!current) {
			/* a replacement allocation: a used runner lost its files with the old one */
			if (used)
				destroy_runner(p, a->job_id, "allocation was replaced");
			else
				store_runner_set(p->store, a->job_id, &e, "allocId", a->id, "node", a->node_id, (char *)0);
		}
		return;
	}
	if (!current)
		return; /* news about an allocation the runner no longer uses */
	if (strcmp(a->client_status, "pending") == 0 && strcmp(a->desired_status, "run") == 0) {
		if (starting || a->restarts == 0)
			return;
		/* the task restarted: an idle runner is replaced; a used one stays with its user only
		 * after an OOM kill (its execution reports it), never going back to the pool */
		if (used && nomad_alloc_oom_killed(a)) {
			char now[24];
			long long t = 0;
			store_time_ms(p->store, &t, &e);
			store_runner_set(p->store, a->job_id, &e, "oomAt", log_int(now, t), (char *)0);
			log_warn("used runner was OOM-killed; it restarts and stays with its user", "runner", a->job_id);
		} else {
			destroy_runner(p, a->job_id, nomad_alloc_oom_killed(a) ? "idle runner was OOM-killed" : "task restarted");
		}
		return;
	}
	if (strcmp(a->client_status, "failed") == 0 || strcmp(a->client_status, "lost") == 0)
		destroy_runner(p, a->job_id, a->client_status[0] == 'f' ? "allocation failed" : "allocation lost");
	else if (strcmp(a->client_status, "complete") == 0 || strcmp(a->desired_status, "stop") == 0 ||
		 strcmp(a->desired_status, "evict") == 0)
		destroy_runner(p, a->job_id, "allocation stopped");
}

/* An evaluation of one of our jobs that Nomad could not place: said in the log with the cause
 * (the reference's words and the AllocMetric) and counted; else a runner would just be
 * destroyed at the start timeout with no reason given. Events from before this daemon started
 * (the stream replays Nomad's buffer) were reported by whoever ran then. */
static void on_eval(struct pool *p, json_object *eval)
{
	json_object *v;
	long long env;
	char why[PERR_MSG_MAX], envs[24];
	if (!json_object_object_get_ex(eval, "FailedTGAllocs", &v) || !json_object_is_type(v, json_type_object) ||
	    json_object_object_length(v) == 0 || nomad_eval_outcome(eval, why, sizeof why) != 1)
		return;
	const char *job = json_object_object_get_ex(eval, "JobID", &v) ? json_object_get_string(v) : "";
	if (!nomad_runner_env(job, &env) && !nomad_is_template_job_id(job, &env))
		return;
	if (json_object_object_get_ex(eval, "ModifyTime", &v) && json_object_get_int64(v) < p->started_ns)
		return;
	p->c.unplaced++;
	metrics_placement_failure(env);
	log_warn("nomad cannot place a job of the environment", "env", log_int(envs, env), "job", job, "error", why);
}

int pool_on_event(void *ud, const struct nomad_event *ev)
{
	struct pool *p = ud;
	struct perr e;
	if (strcmp(ev->topic, "Job") == 0 && strcmp(ev->type, "JobDeregistered") == 0) {
		long long env;
		if (nomad_runner_env(ev->key, &env) && store_destroy(p->store, ev->key, 0, NULL, &e) > 0) {
			p->c.destroyed++;
			log_info("runner destroyed", "runner", ev->key, "reason", "job deregistered in nomad");
		}
	} else if (strcmp(ev->topic, "Allocation") == 0 && ev->payload) {
		struct nomad_alloc a;
		if (nomad_alloc_from_json(ev->payload, &a, &e) == 0)
			on_alloc(p, &a);
	} else if (strcmp(ev->topic, "Evaluation") == 0 && strcmp(ev->type, "EvaluationUpdated") == 0 && ev->payload) {
		on_eval(p, ev->payload);
	}
	if (p->npurge && flush_purges(p, &e) < 0)
		log_debug("purge after event failed", "error", e.msg);
	report(p);
	return 0;
}

/* ---- reconcile ---------------------------------------------------------------------------- */

struct snapshot {
	struct nomad_job_stub *jobs;
	size_t njobs;
	struct nomad_alloc *allocs; /* newest first */
	size_t nallocs;
};

static const struct nomad_job_stub *find_job(const struct snapshot *s, const char *id)
{
	size_t lo = 0, hi = s->njobs; /* jobs are sorted by id */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(s->jobs[mid].id, id);
		if (c == 0)
			return strcmp(s->jobs[mid].status, "dead") == 0 ? NULL : &s->jobs[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static const struct nomad_alloc *newest_alloc(const struct snapshot *s, const char *job)
{
	for (size_t i = 0; i < s->nallocs; i++)
		if (strcmp(s->allocs[i].job_id, job) == 0 && strcmp(s->allocs[i].task_group, "default-group") == 0)
			return &s->allocs[i];
	return NULL;
}

static int env_known(const struct environment *envs, size_t n, long long id)
{
	for (size_t i = 0; i < n; i++)
		if (envs[i].id == id)
			return 1;
	return 0;
}

/* Redis lost environment env (its template is in Nomad): take it and its runners back. */
static int recover_environment(struct pool *p, const struct snapshot *s, const char *tmpl_id, long long env_id,
			       struct perr *e)
{
	json_object *job = NULL;
	struct environment env;
	long long gen;
	int created;
	if (nomad_job_read(p->nomad, tmpl_id, &job, e) <= 0)
		return -1;
	int rc = jobspec_environment_from_job(job, &env, e);
	json_object_put(job);
	/* only if still absent: a PUT that stored it meanwhile wins */
	if (rc < 0 || store_env_put_if_absent(p->store, &env, &created, &gen, e) < 0)
		return -1;
	if (!created)
		return 0;
	char envs[24], prefix[32];
	log_warn("environment recovered from its nomad template", "env", log_int(envs, env_id));
	snprintf(prefix, sizeof prefix, "%lld-", env_id);
	for (size_t i = 0; i < s->njobs; i++) {
		const struct nomad_job_stub *j = &s->jobs[i];
		if (strncmp(j->id, prefix, strlen(prefix)) != 0 || strcmp(j->status, "dead") == 0)
			continue;
		const struct nomad_alloc *a = newest_alloc(s, j->id);
		json_object *rj = NULL;
		int used = 0;
		long long timeout = 0;
		if (!a || nomad_alloc_terminal(a) || nomad_job_read(p->nomad, j->id, &rj, e) <= 0) {
			queue_purge(p, j->id);
			continue;
		}
		jobspec_get_used(rj, &used, &timeout);
		json_object_put(rj);
		const char *state = !is_running(a) ? "starting" : used ? "used" : "idle";
		if (store_runner_adopt(p->store, env_id, gen, j->id, state, a->id, a->node_id, a->ports, a->nports,
				       used ? (timeout ? timeout : 60) : 0, e) > 0) {
			p->c.adopted++;
			log_info("runner adopted from nomad", "runner", j->id, "state", state);
		}
	}
	/* the generation was just created: mark it swept so the adopted runners stay */
	struct env_state *es = env_state(p, env_id);
	if (es)
		es->generation = gen;
	return 0;
}

static void check_runners(struct pool *p, const struct snapshot *s, long long env, long long now)
{
	struct perr e;
	struct runner *rs;
	size_t n;
	if (store_env_runners(p->store, env, &rs, &n, &e) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		struct runner *r = &rs[i];
		int starting = strcmp(r->state, "starting") == 0;
		if (!find_job(s, r->id)) {
			if (starting && now - r->created_ms < YOUNG_STARTING_MS)
				continue; /* registered after the listing was taken */
			destroy_runner(p, r->id, "job vanished from nomad");
			continue;
		}
		const struct nomad_alloc *a = newest_alloc(s, r->id);
		if (starting) {
			if (a && is_running(a)) {
				if (store_runner_ready(p->store, r->id, a->id, a->node_id, a->ports, a->nports, &e) > 0) {
					p->c.ready++;
					note_ready(p, r->env, r->created_ms);
					log_info("runner ready (missed event)", "runner", r->id);
				}
			} else if (now - r->created_ms > (long long)p->cfg.refill.starttimeout * 1000) {
				destroy_runner(p, r->id, "allocation did not start in time");
			}
		} else if (strcmp(r->state, "idle") == 0) {
			if (!a || !is_running(a))
				destroy_runner(p, r->id, "idle runner's allocation is not running");
		} else if (a && nomad_alloc_terminal(a) && !a->next_allocation[0]) {
			destroy_runner(p, r->id, "used runner's allocation ended");
		}
	}
	free(rs);
}

int pool_reconcile(struct pool *p, struct perr *e)
{
	struct snapshot s = {0};
	struct environment *envs = NULL;
	size_t nenvs = 0;
	long long now;
	int rc = -1;
	long long *recovered = NULL;
	size_t nrecovered = 0;
	if (store_time_ms(p->store, &now, e) < 0 || nomad_jobs_list(p->nomad, "", &s.jobs, &s.njobs, e) < 0 ||
	    nomad_allocations(p->nomad, &s.allocs, &s.nallocs, e) < 0 || store_env_list(p->store, &envs, &nenvs, e) < 0)
		goto out;
	recovered = calloc(s.njobs + 1, sizeof *recovered);
	if (!recovered)
		goto out;

	/* templates: recover environments Redis lost, purge those of deleted ones. A template
	 * registered moments ago is left alone: its PUT stores the environment after Nomad took it */
	for (size_t i = 0; i < s.njobs; i++) {
		long long id;
		if (!nomad_is_template_job_id(s.jobs[i].id, &id) || strcmp(s.jobs[i].status, "dead") == 0 ||
		    env_known(envs, nenvs, id) || now - s.jobs[i].submit_time / 1000000 < YOUNG_TEMPLATE_MS)
			continue;
		int tomb = store_env_tombstoned(p->store, id, e);
		if (tomb < 0)
			goto out;
		if (tomb) {
			queue_purge(p, s.jobs[i].id);
			continue;
		}
		if (recover_environment(p, &s, s.jobs[i].id, id, e) == 0)
			recovered[nrecovered++] = id;
		else
			log_warn("could not recover environment", "job", s.jobs[i].id, "error", e->msg);
	}
	/* environments whose template job is missing get it back */
	for (size_t i = 0; i < nenvs; i++) {
		char tmpl[48];
		nomad_template_job_id(envs[i].id, tmpl, sizeof tmpl);
		if (find_job(&s, tmpl))
			continue;
		json_object *job = jobspec_template_job(p->tmpl, &envs[i], &p->jobopts, e);
		if (job && nomad_job_register(p->nomad, job, NULL, e) == 0)
			log_warn("template job was missing in nomad; registered again", "job", tmpl);
		json_object_put(job);
	}
	/* runner jobs nobody knows are orphans */
	for (size_t i = 0; i < s.njobs; i++) {
		long long env;
		struct runner r;
		if (strcmp(s.jobs[i].status, "dead") == 0 || nomad_is_template_job_id(s.jobs[i].id, &env) ||
		    !nomad_runner_env(s.jobs[i].id, &env))
			continue;
		int adopted_env = 0;
		for (size_t k = 0; k < nrecovered; k++)
			adopted_env |= recovered[k] == env;
		if (adopted_env)
			continue;
		int known;
		if (env_known(envs, nenvs, env)) {
			known = store_runner_get(p->store, s.jobs[i].id, &r, e);
		} else {
			/* an environment Redis does not know: its runners are orphans unless its template
			 * lives (it will be recovered, with them, once the template is old enough) */
			char tmpl[48];
			nomad_template_job_id(env, tmpl, sizeof tmpl);
			known = find_job(&s, tmpl) && store_env_tombstoned(p->store, env, e) == 0;
		}
		if (known < 0)
			goto out;
		if (!known) {
			p->c.orphans++;
			log_info("purging orphan runner job", "job", s.jobs[i].id);
			queue_purge(p, s.jobs[i].id);
		}
	}
	/* runners Redis knows: vanished, stuck, not running */
	for (size_t i = 0; i < nenvs; i++)
		check_runners(p, &s, envs[i].id, now);
	rc = 0;
out:
	if (flush_purges(p, rc == 0 ? e : &(struct perr){0}) < 0)
		rc = -1;
	free(recovered);
	free(s.jobs);
	free(s.allocs);
	free(envs);
	metrics_reconcile(rc == 0);
	report(p);
	return rc;
}
