/* jobspec: the Nomad job documents of environments and runners (docs/architecture.md,
 * docs/nomad-api.md section 3), built from a template in Nomad's JSON job format.
 *
 * The template is the file named by server.templatejobfile or, by default, deploy/template-job.json,
 * which is compiled into the library so a binary needs no data files. It must contain a group
 * "default-group" with a task "default-task"; a "config" group (count 0) carrying the Meta is added
 * when missing. Functions return new json-c objects (the Job object, without the {"Job": ...}
 * envelope) that the caller puts; the template itself is never modified.
 */
#ifndef POSEIDON_JOBSPEC_H
#define POSEIDON_JOBSPEC_H

#include <json-c/json.h>

#include "config.h"
#include "err.h"
#include "model.h"

struct jobspec_opts {
	char namespace[CONFIG_STR];
	char network_mode[CONFIG_STR]; /* group network mode when networkAccess is on */
	int disable_force_pull;
};

void jobspec_opts_from_config(struct jobspec_opts *o, const struct config *c);

/* Loads and checks a template: path NULL or "" means the built-in one. Accepts {"Job": {...}} or a
 * bare Job object. Returns the Job object (caller puts) or NULL with e set. */
json_object *jobspec_load(const char *path, struct perr *e);

/* template-<id> for env: image, CPU (MHz), memory (MemoryMaxMB = memoryLimit with MemoryMB =
 * min(template reservation, limit)), network, force_pull, pool size in the config group's Meta.
 * A limit above 2147483647 is PERR_UNKNOWN "limit too high" (ENV-19). */
json_object *jobspec_template_job(json_object *tmpl, const struct environment *env, const struct jobspec_opts *o,
				  struct perr *e);
/* <envId>-<uuid>: the same with ID/Name = runner_id and the config Meta reset to {"used":"false"}. */
json_object *jobspec_runner_job(json_object *tmpl, const struct environment *env, const char *runner_id,
				int force_pull, const struct jobspec_opts *o, struct perr *e);

/* Reads an environment back from a template job (GET /v1/job/template-<id>): id from the job id,
 * pool size from the config Meta, cpu, memory, image, network and ports from default-task. */
int jobspec_environment_from_job(json_object *job, struct environment *env, struct perr *e);

/* The config group's Meta of a runner job: used flag and timeout seconds. */
void jobspec_get_used(json_object *job, int *used, long long *timeout);
/* Sets Meta used/timeout; *changed tells whether anything differed. */
int jobspec_set_used(json_object *job, int used, long long timeout, int *changed, struct perr *e);

#endif
