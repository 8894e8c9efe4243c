/* poseidon-api environment routes (docs/api.md ENV-1..21).
 *
 * An environment lives in Redis (env:<id>) and in Nomad as the template job template-<id>.
 * PUT registers the template first and stores the environment only when Nomad accepted it, so a
 * failed PUT leaves nothing behind (the reference's DIS-9). A replace bumps the generation; the
 * refill daemon then replaces every runner of the old generation. DELETE removes the environment
 * and its runners from Redis at once (later runner requests get 410) and purges the jobs.
 * ?fetch=true re-reads the templates from Nomad and stores what changed, without touching the
 * pools of unchanged environments (the reference's DIS-4).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "jobspec.h"
#include "log.h"
#include "model.h"
#include "nomad.h"

#define PURGE_PARALLEL 16

static int same_environment(const struct environment *a, const struct environment *b)
{
	if (a->prewarming_pool_size != b->prewarming_pool_size || a->cpu_limit != b->cpu_limit ||
	    a->memory_limit != b->memory_limit || strcmp(a->image, b->image) != 0 ||
	    a->network_access != b->network_access || a->nports != b->nports)
		return 0;
	for (int i = 0; i < a->nports; i++)
		if (a->ports[i] != b->ports[i])
			return 0;
	return 1;
}

/* Parses the {id} path segment; GEN-4's message on overflow. */
static int env_id(const struct http_params *p, long long *id, struct perr *e)
{
	if (model_parse_env_id(http_get_param(p, "id"), id, e) < 0)
		return perr_wrap(e, "could not update environment");
	return 0;
}

/* ENV-14: ?fetch= as strconv.ParseBool. */
static int fetch_param(struct http_req *r, int *fetch, struct perr *e)
{
	char v[64];
	int has = http_query(r->query, "fetch", v, sizeof v);
	if (has < 0)
		return perr_set(e, PERR_BAD_REQUEST, "could not parse fetch parameter: invalid encoding");
	if (model_parse_bool(has ? v : "", 0, fetch, e) < 0)
		return perr_wrap(e, "could not parse fetch parameter");
	return 0;
}

/* Removes an environment and everything of it: Redis first (runner routes answer 410 at once),
 * then Nomad. With expected >= 0 only while the environment still has that generation (a fetch
 * must not remove what a PUT made meanwhile): returns 1 when it was left alone. Returns -1 when
 * Nomad could not purge everything (the refill daemon finishes the job later: the environment
 * is tombstoned). */
static int remove_environment(struct api *a, long long id, long long expected, struct perr *e)
{
	char **ids = NULL, prefix[32], tmpl[48];
	size_t n = 0;
	struct nomad_job_stub *stubs = NULL;
	size_t nstubs = 0;
	int deleted = store_env_delete_if_generation(a->store, id, expected, e);
	if (deleted < 0)
		return -1;
	if (!deleted && expected >= 0)
		return 1;
	if (store_env_destroy_runners(a->store, id, &ids, &n, e) < 0)
		return -1;
	snprintf(prefix, sizeof prefix, "%lld-", id);
	int rc = nomad_jobs_list(a->nomad, prefix, &stubs, &nstubs, e);
	if (rc == 0) {
		/* every runner job of the environment, whether Redis knew it or not */
		char **all = calloc(nstubs + n + 2, sizeof *all);
		size_t m = 0;
		for (size_t i = 0; all && i < nstubs; i++)
			all[m++] = stubs[i].id;
		for (size_t i = 0; all && i < n; i++) {
			int dup = 0;
			for (size_t j = 0; j < nstubs && !dup; j++)
				dup = strcmp(stubs[j].id, ids[i]) == 0;
			if (!dup)
				all[m++] = ids[i];
		}
		nomad_template_job_id(id, tmpl, sizeof tmpl);
		if (all)
			all[m++] = tmpl;
		if (!all || nomad_jobs_purge(a->nomad, all, m, PURGE_PARALLEL, e) > 0)
			rc = -1;
		free(all);
	}
	char envs[24], cnt[24];
	log_info("environment deleted", "env", log_int(envs, id), "runners", log_int(cnt, (long long)n),
		 "nomad", rc == 0 ? "purged" : e->msg);
	free(stubs);
	store_free_ids(ids, n);
	return rc;
}

/* Stores env as Nomad has it unless Redis already has the same definition, and only while the
 * environment's generation is still expected, the one seen before Nomad was read: a template
 * read before a concurrent PUT registered its new one must not be written over the PUT's
 * definition (env then holds what Redis has). */
static int adopt_from_nomad(struct api *a, json_object *job, long long expected, struct environment *env,
			    struct perr *e)
{
	struct environment local;
	if (jobspec_environment_from_job(job, env, e) < 0)
		return -1;
	int known = store_env_get(a->store, env->id, &local, NULL, e);
	if (known < 0)
		return -1;
	if (known && same_environment(&local, env)) {
		*env = local;
		return 0;
	}
	int created;
	if (store_env_put_if_generation(a->store, env, expected, &created, NULL, e) < 0)
		return -1;
	if (created < 0) {
		/* changed meanwhile: the newer definition stays */
		if (store_env_get(a->store, env->id, env, NULL, e) < 0)
			return -1;
		return 0;
	}
	char id[24];
	log_info(created ? "environment recovered from nomad" : "environment updated from nomad", "env",
		 log_int(id, env->id));
	return 0;
}

/* The generation of environment id in Redis, 0 when it does not exist, -1 on error. */
static long long generation_of(struct api *a, long long id, struct perr *e)
{
	struct environment env;
	long long gen = 0;
	int found = store_env_get(a->store, id, &env, &gen, e);
	return found < 0 ? -1 : found ? gen : 0;
}

/* Re-reads every template job; environments whose template vanished are removed. A read must
 * never undo a write that raced it: the generations are taken before Nomad is listed, a template
 * is stored only over the generation seen then, and an environment that the list lacks is
 * removed only when Nomad, asked for it by id, has no template either and its generation is
 * still the one seen before the list (a PUT registers its template before it stores, so an
 * environment created meanwhile is either found by id or has a new generation). */
static int sync_all_from_nomad(struct api *a, struct perr *e)
{
	struct environment *before = NULL;
	long long *gen_before = NULL;
	size_t nbefore = 0;
	if (store_env_list_generations(a->store, &before, &gen_before, &nbefore, e) < 0)
		return -1;
	struct nomad_job_stub *stubs = NULL;
	size_t n = 0;
	int rc = nomad_jobs_list(a->nomad, "template-", &stubs, &n, e);
	long long *seen = rc == 0 ? calloc(n + 1, sizeof *seen) : NULL;
	size_t nseen = 0;
	for (size_t i = 0; i < n && rc == 0 && seen; i++) {
		long long id, expected = 0;
		json_object *job = NULL;
		if (!nomad_is_template_job_id(stubs[i].id, &id) || strcmp(stubs[i].status, "dead") == 0)
			continue;
		for (size_t k = 0; k < nbefore; k++)
			if (before[k].id == id)
				expected = gen_before[k];
		int found = nomad_job_read(a->nomad, stubs[i].id, &job, e);
		if (found < 0) {
			rc = -1;
		} else if (found) {
			struct environment env;
			if (store_env_tombstoned(a->store, id, e) == 0 && adopt_from_nomad(a, job, expected, &env, e) == 0)
				seen[nseen++] = id;
		}
		json_object_put(job);
	}
	free(stubs);
	/* only what existed before the list can be missing from it */
	for (size_t i = 0; rc == 0 && seen && i < nbefore; i++) {
		int present = 0;
		for (size_t j = 0; j < nseen && !present; j++)
			present = seen[j] == before[i].id;
		if (present)
			continue;
		char tmpl[48];
		json_object *job = NULL;
		nomad_template_job_id(before[i].id, tmpl, sizeof tmpl);
		struct perr pe;
		int found = nomad_job_read(a->nomad, tmpl, &job, &pe);
		json_object_put(job);
		if (found == 0)
			remove_environment(a, before[i].id, gen_before[i], &pe);
	}
	free(seen);
	free(before);
	free(gen_before);
	return rc;
}

/* ENV-1..5, ENV-18/19/21. */
void h_env_put(struct api *a, struct http_req *r, const struct http_params *p)
{
	struct perr e;
	struct environment env = {0};
	long long gen;
	int created;
	char eval[48];
	if (api_read_body(a, r) < 0)
		return;
	/* GEN-4: the body is parsed before the id */
	if (model_parse_environment(r->body, r->body_len, &env, &e) < 0 || env_id(p, &env.id, &e) < 0) {
		api_fail(r, &e);
		return;
	}
	/* 201 when the environment did not exist before this PUT: a list with fetch may store it
	 * from the template registered below before this PUT stores it itself */
	long long before = generation_of(a, env.id, &e);
	if (before < 0) {
		api_fail(r, &e);
		return;
	}
	json_object *job = jobspec_template_job(a->tmpl, &env, &a->jobopts, &e);
	if (!job || nomad_job_register(a->nomad, job, eval, &e) < 0) {
		json_object_put(job);
		if (e.kind != PERR_NOMAD_UNREACHABLE)
			e.kind = PERR_UNKNOWN;
		perr_wrap(&e, "error registering template job in API");
		api_fail(r, &e);
		return;
	}
	json_object_put(job);
	if (store_env_put(a->store, &env, &created, &gen, &e) < 0) {
		api_fail(r, &e);
		return;
	}
	created = created || before == 0;
	store_wake(a->store, &e); /* the refill daemon starts on the pool at once */
	char id[24], g[24];
	log_int(id, env.id);
	/* As the reference: wait up to 10 s for the template's evaluation and fail the PUT when Nomad
	 * cannot place it (a datacenter, driver or resources it does not have). The environment
	 * stays, as the job does: its runners cannot be placed either, and say so in the refill's
	 * log. No answer in time, or Nomad not answering, counts as placed (the reference's timeout
	 * does too). */
	char why[PERR_MSG_MAX - 128];
	struct perr we;
	int placed = nomad_eval_wait(a->nomad, eval, NOMAD_EVAL_WAIT_MS, why, sizeof why, &we);
	if (placed == 1) {
		log_warn("nomad cannot place the environment's template job", "env", id, "error", why);
		perr_set(&e, PERR_UNKNOWN,
			 "error registering template job in API: error during the monitoring of the environment job: %s",
			 why);
		api_fail(r, &e);
		return;
	}
	if (placed != 0)
		log_warn("the template job's evaluation had no outcome; taken as placed", "env", id, "error",
			 placed < 0 ? we.msg : "no outcome within 10 s");
	log_info(created ? "environment created" : "environment replaced", "env", id, "generation",
		 log_int(g, gen), "image", env.image);
	http_respond_empty(r, created ? 201 : 204);
}

/* ENV-6..9: {"executionEnvironments": [...] | null}. */
void h_env_list(struct api *a, struct http_req *r, const struct http_params *p)
{
	(void)p;
	struct perr e;
	int fetch;
	struct environment *envs;
	size_t n;
	if (fetch_param(r, &fetch, &e) < 0 || (fetch && sync_all_from_nomad(a, &e) < 0) ||
	    store_env_list(a->store, &envs, &n, &e) < 0) {
		if (e.kind == PERR_NOMAD_INTERNAL || e.kind == PERR_NOMAD_OVERLOAD)
			e.kind = PERR_UNKNOWN;
		api_fail(r, &e);
		return;
	}
	char *body = model_render_environments(envs, n);
	free(envs);
	http_respond_json(r, 200, body);
	free(body);
}

/* ENV-10..14. */
void h_env_get(struct api *a, struct http_req *r, const struct http_params *p)
{
	struct perr e;
	struct environment env;
	long long id;
	int fetch, found;
	if (env_id(p, &id, &e) < 0 || fetch_param(r, &fetch, &e) < 0) {
		api_fail(r, &e);
		return;
	}
	if (fetch) {
		char tmpl[48];
		json_object *job = NULL;
		/* the generation before Nomad is read: what a concurrent PUT stores after it wins */
		long long gen = generation_of(a, id, &e);
		nomad_template_job_id(id, tmpl, sizeof tmpl);
		found = gen < 0 ? -1 : nomad_job_read(a->nomad, tmpl, &job, &e);
		if (found == 1 && adopt_from_nomad(a, job, gen, &env, &e) < 0)
			found = -1;
		json_object_put(job);
		if (found == 0 && gen > 0) {
			/* ENV-13: known here but not in Nomad: it is gone (unless it changed meanwhile) */
			int rc = remove_environment(a, id, gen, &e);
			if (rc < 0)
				found = -1;
			else if (rc == 1)
				found = store_env_get(a->store, id, &env, NULL, &e);
		}
	} else {
		found = store_env_get(a->store, id, &env, NULL, &e);
	}
	if (found < 0) {
		if (e.kind == PERR_NOMAD_INTERNAL || e.kind == PERR_NOMAD_OVERLOAD)
			e.kind = PERR_UNKNOWN;
		api_fail(r, &e);
		return;
	}
	if (!found) {
		http_respond_empty(r, 404);
		return;
	}
	char *body = model_render_environment(&env);
	http_respond_json(r, 200, body);
	free(body);
}

/* ENV-15..17. */
void h_env_delete(struct api *a, struct http_req *r, const struct http_params *p)
{
	struct perr e;
	struct environment env;
	long long id;
	if (env_id(p, &id, &e) < 0) {
		api_fail(r, &e);
		return;
	}
	int found = store_env_get(a->store, id, &env, NULL, &e);
	if (found < 0) {
		api_fail(r, &e);
		return;
	}
	if (!found) {
		http_respond_empty(r, 404);
		return;
	}
	if (remove_environment(a, id, -1, &e) < 0) {
		if (e.kind != PERR_NOMAD_UNREACHABLE)
			e.kind = PERR_UNKNOWN;
		api_fail(r, &e);
		return;
	}
	http_respond_empty(r, 204);
}
