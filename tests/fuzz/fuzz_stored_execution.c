/* A prepared execution as poseidon-wsgate reads it from Redis (exec:<id>):
 * model_parse_stored_execution on any C string. Redis is ours, but whatever sits under the key
 * must not crash the reader: it is parsed or refused with an error. */
#include "fuzz_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_strdup(data, size);
	FUZZ_CHECK(s);
	char runner[MODEL_RUNNER_ID_MAX];
	struct execution_request x;
	struct perr e = {0};
	memset(&x, 0, sizeof x);
	if (model_parse_stored_execution(s, runner, sizeof runner, &x, &e) == 0) {
		FUZZ_CHECK(x.command != NULL);
		FUZZ_CHECK(memchr(runner, '\0', sizeof runner));
		model_execution_free(&x);
	} else {
		FUZZ_CHECK(e.kind == PERR_BAD_REQUEST || e.kind == PERR_UNKNOWN || e.kind == PERR_TOO_LARGE);
		FUZZ_CHECK(x.command == NULL && x.env == NULL);
	}
	free(s);
	return 0;
}
