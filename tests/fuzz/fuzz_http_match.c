/* Request paths: http_match against every route pattern of app/api/routes.c (copied here; keep
 * in step), as api_dispatch walks them, on the raw path of REQUEST_URI (at most HTTP_PATH_MAX-1
 * bytes, no '?'). A match must capture one parameter per {name}, decoded, NUL-free, all digits
 * for {name:int}, and a matched environment id goes on to model_parse_env_id. */
#include <ctype.h>

#include "fuzz.h"
#include "http.h"
#include "model.h"

static const char *const patterns[] = {
    "/api/v1/health",
    "/api/v1/version",
    "/api/v1/statistics/execution-environments",
    "/api/v1/execution-environments",
    "/api/v1/execution-environments/{id:int}",
    "/api/v1/runners",
    "/api/v1/runners/{runnerId}",
    "/api/v1/runners/{runnerId}/files",
    "/api/v1/runners/{runnerId}/files/raw",
    "/api/v1/runners/{runnerId}/execute",
};

static int count_params(const char *pattern)
{
	int n = 0;
	for (; *pattern; pattern++)
		n += *pattern == '{';
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size >= HTTP_PATH_MAX)
		return 0; /* http_req_init refuses longer paths before routing */
	char *path = fuzz_strdup(data, size);
	FUZZ_CHECK(path);
	int matched = 0;
	for (size_t i = 0; i < sizeof patterns / sizeof *patterns; i++) {
		struct http_params p;
		if (!http_match(patterns[i], path, &p))
			continue;
		matched++;
		FUZZ_CHECK(p.n == count_params(patterns[i]));
		for (int k = 0; k < p.n; k++) {
			FUZZ_CHECK(memchr(p.value[k], '\0', sizeof p.value[k]) != NULL);
			FUZZ_CHECK(p.value[k][0] != '\0');
			FUZZ_CHECK(http_get_param(&p, p.name[k]) == p.value[k]);
		}
		const char *id = http_get_param(&p, "id");
		if (id) {
			for (const char *c = id; *c; c++)
				FUZZ_CHECK(isdigit((unsigned char)*c));
			long long v;
			struct perr e;
			if (model_parse_env_id(id, &v, &e) == 0)
				FUZZ_CHECK(v >= 0);
			else
				FUZZ_CHECK(e.kind == PERR_BAD_REQUEST);
		}
		if (strchr(patterns[i], '{') == NULL)
			FUZZ_CHECK(strcmp(patterns[i], path) == 0); /* literal routes match literally */
	}
	/* the patterns are disjoint: a path is at most one route (405 is decided by the method) */
	FUZZ_CHECK(matched <= 1);
	free(path);
	return 0;
}
