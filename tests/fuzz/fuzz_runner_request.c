/* POST /runners bodies: model_parse_runner_request on the exact bytes a client sent. */
#include <limits.h>

#include "fuzz_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct runner_request r;
	struct perr e = {0};
	int rc = model_parse_runner_request((const char *)data, size, &r, &e);
	FUZZ_CHECK(rc == 0 || rc == -1);
	if (rc < 0) {
		fuzz_check_error(&e);
		return 0;
	}
	/* json-c saturates overflowing integers; those values must have been refused */
	FUZZ_CHECK(r.environment_id != LLONG_MAX && r.environment_id != LLONG_MIN);
	FUZZ_CHECK(r.inactivity_timeout != LLONG_MAX && r.inactivity_timeout != LLONG_MIN);
	return 0;
}
