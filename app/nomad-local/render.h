/* render: Nomad's JSON shapes for nomad-local's state, as Nomad 1.10 writes them.
 *
 * Key names, casing, presence (Allocation, Evaluation, NetworkResource, Port and
 * AllocatedPortMapping drop empty fields; everything else writes every field), null zero
 * times, integer nanoseconds and declaration key order follow tests/fixtures/nomad. Every
 * function returns a new json_object the caller puts; render_string() serializes compactly.
 */
#ifndef NL_RENDER_H
#define NL_RENDER_H

#include <json-c/json.h>

#include "state.h"

struct render_node_info {
	const char *http_addr; /* ip:port */
	const char *hostname;
	int cpus;
	long long memory_mb;
	long long cpu_mhz_total;
};

json_object *render_eval(const struct nl_eval *e);
json_object *render_alloc(const struct nl_alloc *a, int with_job);
json_object *render_alloc_stub(const struct nl_alloc *a, int with_resources);
json_object *render_task_states(const struct nl_alloc *a);
json_object *render_job_stub(const struct nl_job *j, int with_meta);
json_object *render_job_summary(const struct nl_job *j);
json_object *render_node(const struct render_node_info *n);
json_object *render_node_stub(const struct render_node_info *n);
json_object *render_agent_self(const struct render_node_info *n, int acl_enabled);

/* A TaskEvent with every field; details: NULL-terminated key/value pairs (may be NULL). */
json_object *render_task_event(const char *type, int64_t time_ns, const char *message, const char *display,
			       const char *const *details);

/* Compact JSON (no slash escaping). The string belongs to o. */
const char *render_string(json_object *o);

#endif
