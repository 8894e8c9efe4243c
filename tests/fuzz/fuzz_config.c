/* Configuration files: config_apply_file on the input written to a private temporary file (the
 * loader's only entry point is a path, and a file is what an operator gives it), on top of the
 * defaults. Success or a BAD_REQUEST naming the problem; either way every key reads back. */
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

static char path[64];

static void remove_file(void)
{
	if (path[0])
		unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_quiet();
	if (!path[0]) {
		snprintf(path, sizeof path, "/tmp/poseidon-fuzz-config-XXXXXX");
		int fd = mkstemp(path);
		FUZZ_CHECK(fd >= 0);
		close(fd);
		atexit(remove_file);
	}
	FILE *f = fopen(path, "wb");
	FUZZ_CHECK(f);
	FUZZ_CHECK(fwrite(data, 1, size, f) == size);
	FUZZ_CHECK(fclose(f) == 0);

	struct config c;
	struct perr e = {0};
	config_defaults(&c);
	if (config_apply_file(&c, path, &e) < 0)
		FUZZ_CHECK(e.kind == PERR_BAD_REQUEST && memchr(e.msg, '\0', sizeof e.msg));
	static const char *keys[] = {"server.port",        "server.token",
	                             "server.maxbodysize", "server.alert.prewarmingpoolthreshold",
	                             "logger.level",       "redis.prefix"};
	for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
		char out[CONFIG_PATH];
		FUZZ_CHECK(config_get(&c, keys[i], out, sizeof out) == 0);
	}
	FUZZ_CHECK(c.server.port >= 1 && c.server.port <= 65535);
	FUZZ_CHECK(c.server.maxbodysize >= 1024);
	return 0;
}
