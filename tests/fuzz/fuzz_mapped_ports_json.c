/* A runner's mapped ports as stored in Redis (runner:<id> mappedPorts) and sent with every claim:
 * model_mapped_ports_from_json on any C string, into a table smaller than the input may ask for
 * (the input's first byte picks the room, 0..MODEL_MAX_PORTS). */
#include "fuzz_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int max = (int)(fuzz_take(&data, &size) % (MODEL_MAX_PORTS + 1));
	char *s = fuzz_strdup(data, size);
	struct mapped_port *ports = malloc(sizeof *ports * (size_t)(max ? max : 1));
	FUZZ_CHECK(s && ports);
	struct perr e = {0};
	int n = -1;
	if (model_mapped_ports_from_json(s, ports, max, &n, &e) == 0) {
		FUZZ_CHECK(n >= 0 && n <= max);
		for (int i = 0; i < n; i++)
			FUZZ_CHECK(memchr(ports[i].host_address, '\0', sizeof ports[i].host_address));
		char *json = model_render_runner("0-runner", ports, (size_t)n);
		FUZZ_CHECK(json);
		free(json);
	} else {
		FUZZ_CHECK(e.kind == PERR_BAD_REQUEST || e.kind == PERR_UNKNOWN || e.kind == PERR_TOO_LARGE);
	}
	free(ports);
	free(s);
	return 0;
}
