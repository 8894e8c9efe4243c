/* poseidon-api runner routes (api-behaviour.md RUN-*). The claim makes no Nomad call: one
 * EVALSHA of the claim script hands out a ready runner with the ports its allocation mapped. */
#include <stdlib.h>

#include "api.h"
#include "log.h"
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
		api_fail(r, &e);
		return;
	}
	char *body = model_render_runner(run.id, run.ports, (size_t)run.nports);
	http_respond_json(r, 200, body);
	free(body);
	char env[24];
	log_debug("runner claimed", "runner", run.id, "env", log_int(env, req.environment_id));
}
