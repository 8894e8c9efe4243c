/* POST /runners/{id}/execute bodies: model_parse_execution_request, then the round trip the
 * request makes through Redis to poseidon-wsgate (model_stored_execution and
 * model_parse_stored_execution) must give back the same command, flags and environment. */
#include "fuzz_error.h"

static const struct env_var *find_env(const struct execution_request *x, const char *name)
{
	for (size_t i = 0; i < x->nenv; i++)
		if (strcmp(x->env[i].name, name) == 0)
			return &x->env[i];
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct execution_request x, y;
	struct perr e = {0};
	int rc = model_parse_execution_request((const char *)data, size, &x, &e);
	FUZZ_CHECK(rc == 0 || rc == -1);
	if (rc < 0) {
		fuzz_check_error(&e);
		FUZZ_CHECK(x.command == NULL && x.env == NULL && x.nenv == 0); /* freed and zeroed */
		return 0;
	}
	FUZZ_CHECK(x.command != NULL);
	char *stored = model_stored_execution("0-runner", &x);
	FUZZ_CHECK(stored != NULL);
	char runner[MODEL_RUNNER_ID_MAX];
	FUZZ_CHECK(model_parse_stored_execution(stored, runner, sizeof runner, &y, &e) == 0);
	FUZZ_CHECK(strcmp(runner, "0-runner") == 0);
	FUZZ_CHECK(y.command_len == x.command_len && memcmp(y.command, x.command, x.command_len) == 0);
	FUZZ_CHECK(y.privileged == x.privileged && y.time_limit == x.time_limit);
	FUZZ_CHECK(y.nenv == x.nenv);
	for (size_t i = 0; i < x.nenv; i++) {
		const struct env_var *v = find_env(&y, x.env[i].name);
		FUZZ_CHECK(v != NULL && strcmp(v->value, x.env[i].value) == 0);
	}
	model_execution_free(&y);
	model_execution_free(&x);
	free(stored);
	return 0;
}
