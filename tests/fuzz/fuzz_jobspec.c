/* Nomad's job JSON (GET /v1/job/<id>): what poseidon-refill reads back from a template job
 * (jobspec_environment_from_job, when Redis lost an environment) and from a runner job
 * (jobspec_get_used / jobspec_set_used, the Meta of claimed runners). A recovered environment
 * must be one the API accepts; setting the Meta and reading it back must agree. */
#include "fuzz_json.h"
#include "jobspec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > (1 << 20))
		return 0;
	json_object *job = fuzz_parse_nomad_body(data, size);
	if (!job)
		return 0;
	struct environment env;
	struct perr e;
	if (jobspec_environment_from_job(job, &env, &e) == 0) {
		FUZZ_CHECK(env.nports >= 0 && env.nports <= MODEL_MAX_PORTS);
		FUZZ_CHECK(memchr(env.image, '\0', sizeof env.image));
		char *json = model_render_environment(&env);
		FUZZ_CHECK(json);
		free(json);
		char *ports = model_ports_to_json(&env);
		FUZZ_CHECK(ports);
		free(ports);
	} else {
		FUZZ_CHECK(e.kind == PERR_UNKNOWN);
	}
	int used, changed;
	long long timeout;
	jobspec_get_used(job, &used, &timeout);
	FUZZ_CHECK(used == 0 || used == 1);
	long long want = (long long)(size * 7919 % 100000);
	if (jobspec_set_used(job, 1, want, &changed, &e) == 0) {
		jobspec_get_used(job, &used, &timeout);
		FUZZ_CHECK(used == 1 && timeout == want);
	}
	json_object_put(job);
	return 0;
}
