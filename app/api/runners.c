/* poseidon-api runner routes (docs/api.md RUN-*). The claim makes no Nomad call: one
 * EVALSHA of the claim script hands out a ready runner with the ports its allocation mapped. */
#include <stdlib.h>

#include "api.h"
#include "log.h"
#include "metrics.h"
#include "model.h"

/* RUN-1..4, RUN-12: 200 {"runnerId","mappedPorts"}, 404 unknown environment, 500
 * NOMAD_OVERLOAD when the pool is empty. */
void h_runner_claim(struct api *a, struct http_req *r, const struct http_params *p)
{
	(void)p;
	struct perr e;
	struct runner_request req;
	struct runner run;
	if (api_read_body(a, r) < 0)
		return;
	if (model_parse_runner_request(r->body, r->body_len, &req, &e) < 0 ||
	    store_claim(a->store, req.environment_id, req.inactivity_timeout, &run, &e) < 0) {
		if (e.kind == PERR_NOT_FOUND)
			perr_wrap(&e, "nomad wrapped");
		if (e.kind == PERR_NOMAD_OVERLOAD)
			metrics_claim(req.environment_id, 0); /* metrics: empty pool */
		api_fail(r, &e);
		return;
	}
	metrics_claim(req.environment_id, 1); /* metrics */
	char *body = model_render_runner(run.id, run.ports, (size_t)run.nports);
	http_respond_json(r, 200, body);
	free(body);
	char env[24];
	log_debug("runner claimed", "runner", run.id, "env", log_int(env, req.environment_id));
}

/* RUN-5..9: 204, 410 when unknown or already gone, 500 NOMAD_INTERNAL_SERVER_ERROR when Nomad
 * refuses the purge (the runner is forgotten here either way; the refill daemon purges the
 * orphaned job later). */
void h_runner_delete(struct api *a, struct http_req *r, const struct http_params *p)
{
	struct perr e;
	struct runner run;
	const char *id = http_get_param(p, "runnerId");
	if (api_read_body(a, r) < 0) /* RUN-10: the whole body is read before answering */
		return;
	int existed = store_destroy(a->store, id, 1, &run, &e);
	if (existed < 0) {
		api_fail(r, &e);
		return;
	}
	if (!existed) {
		perr_set(&e, PERR_GONE, "abstract manager wrapped: no runner found with this id");
		api_fail(r, &e);
		return;
	}
	if (nomad_job_purge(a->nomad, id, &e) < 0) {
		e.kind = PERR_NOMAD_INTERNAL;
		perr_wrap(&e, "runner deleted, but nomad refused to purge its job");
		api_fail(r, &e);
		return;
	}
	log_debug("runner destroyed", "runner", id);
	http_respond_empty(r, 204);
}
