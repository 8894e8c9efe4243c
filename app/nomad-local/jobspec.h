/* jobspec: turns a job register request body into the job Nomad's server would store.
 *
 * Three steps, each with Nomad's own error texts and status codes:
 *   1. decode: Go encoding/json rules (gojson) plus the api field table (apischema): keys
 *      match case-insensitively, unknown keys are dropped, type mismatches give
 *      "json: cannot unmarshal ..." (400);
 *   2. canonicalize: api defaults and server mutators (Region, Priority 50, NodePool, restart
 *      and reschedule policies by job type, KillTimeout 5s, default Identity, implied
 *      constraints, HostNetwork "default", empty network lists dropped), producing the server
 *      JSON shape with keys in Nomad's declaration order;
 *   3. validate: Job/TaskGroup/Task/Resources/RestartPolicy checks rendered as go-multierror
 *      lists (500).
 * The caller owns every returned json_object (json_object_put).
 */
#ifndef NL_JOBSPEC_H
#define NL_JOBSPEC_H

#include <json-c/json.h>

#define JOBSPEC_ERR_MAX 4096

struct jobspec_request {
	json_object *job;        /* canonical server-shape job (owned) */
	char ns[256];            /* resolved namespace */
	char id[512];
	int eval_priority;       /* 0: job priority */
	int enforce_index;       /* EnforceIndex: register only over JobModifyIndex */
	unsigned long long job_modify_index;
};

/* Decodes and canonicalizes a PUT /v1/jobs body. query_ns/query_region: the URL parameters
 * ("" when absent); path_id: the id of /v1/job/<id> registrations or NULL. Returns 0, or the
 * HTTP status (400/500) with Nomad's text in err. */
int jobspec_register(const char *body, size_t len, int has_body, const char *query_ns, const char *query_region,
		     const char *path_id, struct jobspec_request *out, char err[JOBSPEC_ERR_MAX]);

/* JSON of the job spec without the fields the server maintains (Status, Version, indexes,
 * SubmitTime, Stable...), for "did the job change" comparisons. Caller frees. */
char *jobspec_fingerprint(json_object *job);
/* Same for one task group object. */
char *jobspec_group_fingerprint(json_object *group);

/* Small accessors on server-shape JSON. */
const char *js_str(json_object *o, const char *key, const char *dflt);
long long js_int(json_object *o, const char *key, long long dflt);
int js_bool(json_object *o, const char *key);
json_object *js_obj(json_object *o, const char *key);

#endif
