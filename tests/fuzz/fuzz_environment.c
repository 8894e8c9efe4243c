/* PUT /execution-environments/{id} bodies: model_parse_environment, then what the API does with
 * an accepted one: render it (GET) and store its ports as JSON in Redis and read them back. */
#include "fuzz_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct environment env = {.id = 7}, back;
	struct perr e = {0};
	int rc = model_parse_environment((const char *)data, size, &env, &e);
	FUZZ_CHECK(rc == 0 || rc == -1);
	FUZZ_CHECK(env.id == 7); /* the id comes from the URL, never from the body */
	if (rc < 0) {
		fuzz_check_error(&e);
		return 0;
	}
	FUZZ_CHECK(env.nports >= 0 && env.nports <= MODEL_MAX_PORTS);
	FUZZ_CHECK(memchr(env.image, '\0', sizeof env.image) != NULL);
	char *json = model_render_environment(&env);
	FUZZ_CHECK(json != NULL);
	/* the rendered environment is itself a valid request that means the same */
	back.id = 7;
	FUZZ_CHECK(model_parse_environment(json, strlen(json), &back, &e) == 0);
	FUZZ_CHECK(back.prewarming_pool_size == env.prewarming_pool_size && back.cpu_limit == env.cpu_limit &&
	           back.memory_limit == env.memory_limit && back.network_access == env.network_access);
	FUZZ_CHECK(strcmp(back.image, env.image) == 0);
	FUZZ_CHECK(back.ports_null == env.ports_null && back.nports == env.nports);
	FUZZ_CHECK(memcmp(back.ports, env.ports, sizeof env.ports[0] * (size_t)env.nports) == 0);
	free(json);
	/* exposedPorts as stored in Redis */
	char *ports = model_ports_to_json(&env);
	FUZZ_CHECK(ports != NULL);
	memset(&back, 0, sizeof back);
	FUZZ_CHECK(model_ports_from_json(ports, &back, &e) == 0);
	FUZZ_CHECK(back.ports_null == env.ports_null && back.nports == env.nports);
	FUZZ_CHECK(memcmp(back.ports, env.ports, sizeof env.ports[0] * (size_t)env.nports) == 0);
	free(ports);
	return 0;
}
