/* sched: the server half of nomad-local: job registration and deregistration, evaluations,
 * placement (one allocation per task group with Count > 0), in-place versus destructive
 * updates, job status, the event batches of docs/nomad-api.md 5.7, and garbage collection.
 *
 * Order on register (each step one index): Job JobRegistered + Evaluation JobRegistered (same
 * index, two lines), then Evaluation/Allocation/Job PlanResult, and SCHED_EVAL_DELAY_MS after
 * the HTTP answer the Evaluation's EvaluationUpdated "complete"; only then does the client side
 * (task.c) report the allocation received, pending and running. A change limited to a group's
 * count-0 siblings (the config group's Meta) is an in-place update: the allocation keeps
 * running and only receives a new EvalID and AllocModifyIndex.
 */
#ifndef NL_SCHED_H
#define NL_SCHED_H

#include <json-c/json.h>

#include "jobspec.h"
#include "state.h"

#define SCHED_EVAL_DELAY_MS 50
/* Terminal allocations and finished evaluations are kept an hour as in Nomad, but at most these
 * many of each: a runner pool churns a few per second and each allocation carries its job. */
#define SCHED_GC_INTERVAL_MS 10000
#define SCHED_GC_AGE_NS (3600LL * 1000000000LL)
#define SCHED_GC_MAX_TERMINAL 200
#define SCHED_GC_MAX_DONE_EVALS 500

/* Placement fails as Nomad's does (FailedTGAllocs, and a blocked evaluation that is tried
 * again when an allocation ends and every GC tick) when the job's datacenters do not match
 * NL_DATACENTER, when the MemoryMB its allocations reserve exceeds memory_mb, or beyond
 * max_allocs sandboxes. */
void sched_init(int max_allocs, long long memory_mb);
/* Registers req->job (ownership taken). Returns the response body (caller puts). */
/* Nomad's EnforceIndex check of a registration: 0, or -1 with its error text (the answer is a
 * 500): the job must exist with exactly JobModifyIndex, or not exist when that is 0. */
int sched_enforce_index(const struct jobspec_request *req, char *err, size_t cap);
json_object *sched_register(struct jobspec_request *req);
/* Deregisters; returns the response body (unknown job: the all-zero answer). */
json_object *sched_deregister(const char *ns, const char *id, int purge);

/* Called by the client side whenever an allocation's client state changed: bumps the index and
 * ModifyTime, persists, recomputes the job status and publishes the Allocation event (plus a
 * Job event when the job's status changed). */
void sched_alloc_update(struct nl_alloc *a, const char *event_type);

/* After state_open: finishes evaluations left pending and re-attaches allocations. */
void sched_restore(void);
void sched_shutdown(void);

#endif
