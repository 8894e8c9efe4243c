/* Query strings: http_query as the file and environment routes call it (path with room for
 * COMMANDS_PATH_MAX, recursive/privilegedExecution in 16 bytes, fetch in 64), and
 * http_unescape on the raw bytes. The first input byte picks the name and the buffer. */
#include "commands.h"
#include "fuzz.h"
#include "http.h"
#include "model.h"

static void check_decoded(int rc, const char *out, size_t cap)
{
	FUZZ_CHECK(rc >= -1 && rc <= 1);
	if (rc == 1)
		FUZZ_CHECK(strlen(out) < cap);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *names[] = {"path", "recursive", "privilegedExecution", "fetch", "", "a"};
	static const size_t caps[] = {COMMANDS_PATH_MAX + 1, 16, 16, 64, 2, 1};
	unsigned pick = fuzz_take(&data, &size) % (sizeof names / sizeof *names);
	char *q = fuzz_strdup(data, size);
	char *out = malloc(caps[pick]);
	FUZZ_CHECK(q && out);
	int rc = http_query(q, names[pick], out, caps[pick]);
	check_decoded(rc, out, caps[pick]);
	if (rc == 1) {
		int b;
		struct perr e;
		if (model_parse_bool(out, 0, &b, &e) == 0)
			FUZZ_CHECK(b == 0 || b == 1);
	}
	free(out);
	/* the raw bytes as one escaped value (NUL bytes included: they must be refused) */
	size_t cap = size + 1;
	out = malloc(cap);
	FUZZ_CHECK(out);
	int u = http_unescape((const char *)data, size, out, cap);
	FUZZ_CHECK(u == 0 || u == -1);
	if (u == 0)
		FUZZ_CHECK(strlen(out) <= size);
	/* and with a buffer too small by one: refused, never overrun */
	if (size > 0 && u == 0 && strlen(out) > 0) {
		size_t need = strlen(out) + 1;
		char *small = malloc(need - 1);
		FUZZ_CHECK(small);
		FUZZ_CHECK(http_unescape((const char *)data, size, small, need - 1) == -1);
		free(small);
	}
	free(out);
	free(q);
	return 0;
}
