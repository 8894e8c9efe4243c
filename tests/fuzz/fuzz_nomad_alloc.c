/* Nomad's allocation JSON (GET /v1/allocations, /v1/job/<id>/allocations, /v1/allocation/<id>):
 * any JSON value, parsed as lib/nomad parses a response body (fuzz_json.h), through nomad_alloc_from_json on
 * the value itself and on every element of a list, as alloc_list does. */
#include "fuzz_json.h"
#include "nomad.h"

static void one(json_object *o)
{
	struct nomad_alloc a;
	struct perr e;
	if (nomad_alloc_from_json(o, &a, &e) < 0) {
		FUZZ_CHECK(e.kind == PERR_NOMAD_INTERNAL);
		return;
	}
	FUZZ_CHECK(a.nports >= 0 && a.nports <= MODEL_MAX_PORTS);
	FUZZ_CHECK(memchr(a.id, '\0', sizeof a.id) && memchr(a.job_id, '\0', sizeof a.job_id));
	FUZZ_CHECK(memchr(a.client_status, '\0', sizeof a.client_status));
	for (int i = 0; i < a.nports; i++)
		FUZZ_CHECK(memchr(a.ports[i].host_address, '\0', sizeof a.ports[i].host_address));
	nomad_alloc_oom_killed(&a);
	nomad_alloc_terminal(&a);
	/* the ports go to Redis as JSON and come back on claims */
	char *json = model_mapped_ports_to_json(a.ports, (size_t)a.nports);
	FUZZ_CHECK(json);
	struct mapped_port back[MODEL_MAX_PORTS];
	int n;
	FUZZ_CHECK(model_mapped_ports_from_json(json, back, MODEL_MAX_PORTS, &n, &e) == 0);
	FUZZ_CHECK(n == a.nports);
	for (int i = 0; i < n; i++) {
		FUZZ_CHECK(back[i].exposed_port == a.ports[i].exposed_port);
		FUZZ_CHECK(strcmp(back[i].host_address, a.ports[i].host_address) == 0);
	}
	free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > (1 << 20))
		return 0;
	json_object *o = fuzz_parse_nomad_body(data, size);
	if (!o)
		return 0;
	one(o);
	if (o && json_object_is_type(o, json_type_array))
		for (size_t i = 0; i < json_object_array_length(o); i++)
			one(json_object_array_get_idx(o, i));
	json_object_put(o);
	return 0;
}
