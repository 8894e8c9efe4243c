/* An environment's exposedPorts as stored in Redis (env:<id> exposedPorts): model_ports_from_json
 * on any C string; what it accepts renders back to what it read. */
#include "fuzz_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_strdup(data, size);
	FUZZ_CHECK(s);
	struct environment env, back;
	struct perr e = {0};
	memset(&env, 0, sizeof env);
	if (model_ports_from_json(s, &env, &e) == 0) {
		FUZZ_CHECK(env.nports >= 0 && env.nports <= MODEL_MAX_PORTS);
		FUZZ_CHECK(!env.ports_null || env.nports == 0);
		char *json = model_ports_to_json(&env);
		FUZZ_CHECK(json);
		memset(&back, 0, sizeof back);
		FUZZ_CHECK(model_ports_from_json(json, &back, &e) == 0);
		FUZZ_CHECK(back.ports_null == env.ports_null && back.nports == env.nports);
		FUZZ_CHECK(memcmp(back.ports, env.ports, sizeof env.ports[0] * (size_t)env.nports) == 0);
		free(json);
	} else {
		FUZZ_CHECK(e.kind == PERR_BAD_REQUEST || e.kind == PERR_UNKNOWN || e.kind == PERR_TOO_LARGE);
		FUZZ_CHECK(env.nports >= 0 && env.nports <= MODEL_MAX_PORTS);
	}
	free(s);
	return 0;
}
