/* nomad: everything that talks to the Nomad HTTP API, and the only module that knows its JSON.
 *
 * A struct nomad is one connection context (a libcurl easy handle with keep-alive) for one
 * thread: the REST calls below are synchronous and are used from FastCGI workers and from
 * poseidon-refill alike. Every call carries ?namespace=<ns> and X-Nomad-Token when configured,
 * never asks for gzip, and reports failures in three kinds the API can tell apart:
 *   PERR_NOMAD_UNREACHABLE  connection refused/reset, DNS, TLS or timeout;
 *   PERR_NOMAD_OVERLOAD     429 or 5xx from Nomad;
 *   PERR_NOMAD_INTERNAL     any other non-200 answer (4xx: a request Nomad refused), or a
 *                           200 whose body we cannot use.
 * The message carries Nomad's own text ("Unexpected response code: 404 (job not found)").
 * Parsed results are plain C structs; job documents stay json-c objects (lib/jobspec builds
 * them) and the caller owns what it receives (json_object_put / free as stated per function).
 * The event stream (nomad_events_*) and the exec WebSocket (nomad_exec.h) live beside.
 */
#ifndef POSEIDON_NOMAD_H
#define POSEIDON_NOMAD_H

#include <json-c/json.h>
#include <stddef.h>

#include "config.h"
#include "err.h"
#include "model.h"

/* Where Nomad is and how to talk to it; filled from config by nomad_endpoint_from_config. */
struct nomad_endpoint {
	char host[CONFIG_STR];
	int port;
	int tls;
	char cafile[CONFIG_PATH];
	char certfile[CONFIG_PATH];
	char keyfile[CONFIG_PATH];
	char token[CONFIG_STR];
	char namespace[CONFIG_STR];
	int timeout_ms; /* per REST call; 0 = 10 s */
};

void nomad_endpoint_from_config(struct nomad_endpoint *ep, const struct config *c);
/* "http://host:port" or "https://host:port" into out. */
void nomad_base_url(const struct nomad_endpoint *ep, char *out, size_t cap);
/* The CA file that checks Nomad's certificate: nomad.tls.cafile; without one the system's trust
 * store, for the REST calls, the event stream and exec alike: $SSL_CERT_FILE when set (OpenSSL's
 * override), else the bundle libcurl trusts by default. NULL: the TLS library's own default. */
const char *nomad_ca_file(const struct nomad_endpoint *ep);

struct nomad;
/* Never fails but for memory; connects lazily. Free with nomad_close. */
struct nomad *nomad_open(const struct nomad_endpoint *ep);
void nomad_close(struct nomad *n);
const struct nomad_endpoint *nomad_get_endpoint(const struct nomad *n);

/* ---- jobs ------------------------------------------------------------------------------ */

struct nomad_job_stub {
	char id[MODEL_RUNNER_ID_MAX];
	char status[16];       /* pending, running, dead */
	long long submit_time; /* unix ns of the job's last registration */
};

/* PUT /v1/jobs {"Job": job}. The job object is not consumed. eval_id (may be NULL, >= 40 bytes)
 * receives the EvalID. */
int nomad_job_register(struct nomad *n, json_object *job, char *eval_id, struct perr *e);
/* The same, with Nomad's EnforceIndex: only while the job's JobModifyIndex is still modify_index
 * (0: it does not exist), so that a job purged (or changed) since it was read is not registered
 * again. Returns 1 (e says why) when Nomad refused for that reason (its 500 "Enforcing job modify
 * index ..."; not counted as a Nomad error), 0 when registered, -1 on error. */
int nomad_job_register_over(struct nomad *n, json_object *job, unsigned long long modify_index, char *eval_id,
			    struct perr *e);

/* An evaluation's outcome, as the reference's MonitorEvaluation judges it: 0 complete with
 * everything placed; 1 with why set to the reference's error (canceled or failed; or
 * FailedTGAllocs: one line per group with its AllocMetric, and the blocked evaluation that
 * waits for capacity); -1 not finished yet (pending, blocked). */
int nomad_eval_outcome(json_object *eval, char *why, size_t cap);
/* Polls GET /v1/evaluation/<id> until it has an outcome or timeout_ms passed: 0 placed, 1 not
 * (why set), 2 no outcome in time, -1 Nomad could not be asked (e set). */
#define NOMAD_EVAL_WAIT_MS 10000 /* the reference's RegisterTimeout */
int nomad_eval_wait(struct nomad *n, const char *eval_id, int timeout_ms, char *why, size_t cap, struct perr *e);
/* GET /v1/job/<id>: 1 and *job (caller puts) when found, 0 when Nomad says 404, -1 on error. */
int nomad_job_read(struct nomad *n, const char *id, json_object **job, struct perr *e);
/* GET /v1/jobs?prefix=: stubs sorted by id, *out malloc'd (caller frees). */
int nomad_jobs_list(struct nomad *n, const char *prefix, struct nomad_job_stub **out, size_t *count,
		    struct perr *e);
/* DELETE /v1/job/<id>?purge=true. A job that does not exist is not an error (Nomad says 200). */
int nomad_job_purge(struct nomad *n, const char *id, struct perr *e);
/* Purges many jobs concurrently (at most `parallel` requests in flight). Returns the number
 * that failed; e describes the first failure. */
int nomad_jobs_purge(struct nomad *n, char *const *ids, size_t count, int parallel, struct perr *e);
/* Registers many jobs concurrently; results[i] (may be NULL) is 0 or -1 per job. Returns the
 * number that failed; e describes the first failure. */
int nomad_jobs_register(struct nomad *n, json_object *const *jobs, size_t count, int parallel, int *results,
			struct perr *e);

/* ---- allocations ----------------------------------------------------------------------- */

struct nomad_alloc {
	char id[64];
	char job_id[MODEL_RUNNER_ID_MAX];
	char task_group[64];
	char node_id[64];
	char node_name[128];
	char client_status[16];  /* pending, running, complete, failed, lost, unknown */
	char desired_status[16]; /* run, stop, evict */
	char previous_allocation[64];
	char next_allocation[64];
	long long create_time;   /* unix ns */
	long long modify_time;   /* unix ns */
	long long modify_index;
	int restarts;            /* TaskStates["default-task"].Restarts */
	int oom_events;          /* its Terminated events with Details.oom_killed true */
	int task_running;        /* TaskStates["default-task"].State == "running" */
	int nports;
	struct mapped_port ports[MODEL_MAX_PORTS]; /* AllocatedResources.Shared.Ports: To -> HostIP:Value */
};

/* Fills a from an Allocation or AllocListStub object (event payloads included). */
int nomad_alloc_from_json(json_object *o, struct nomad_alloc *a, struct perr *e);
/* Nomad's OOM test (docs/nomad-api.md 5.5), without the reference's Restarts==0 quirk: OOM when at
 * least one OOM event exists and they are not fewer than the restarts. */
int nomad_alloc_oom_killed(const struct nomad_alloc *a);
/* ClientStatus complete/failed/lost or DesiredStatus stop/evict. */
int nomad_alloc_terminal(const struct nomad_alloc *a);

/* GET /v1/job/<id>/allocations: newest first; *out malloc'd. Never with ports (Nomad sends no
 * AllocatedResources in this list). */
int nomad_job_allocations(struct nomad *n, const char *job_id, struct nomad_alloc **out, size_t *count,
			  struct perr *e);
/* GET /v1/allocations?resources=true: newest first, with ports; *out malloc'd. */
int nomad_allocations(struct nomad *n, struct nomad_alloc **out, size_t *count, struct perr *e);
/* GET /v1/allocation/<id>: 1 found, 0 on 404, -1 error. */
int nomad_allocation(struct nomad *n, const char *alloc_id, struct nomad_alloc *out, struct perr *e);

/* GET /v1/node/<id>: Status ("ready", "down", ...). 1 found, 0 on 404, -1 error. */
int nomad_node_status(struct nomad *n, const char *node_id, char *status, size_t cap, struct perr *e);

/* ---- naming (docs/nomad-api.md section 2) ---------------------------------------------------- */

/* "template-<env>" */
void nomad_template_job_id(long long env, char *out, size_t cap);
/* 1 and *env when id is "template-<int>". */
int nomad_is_template_job_id(const char *id, long long *env);
/* 1 and *env when id is "<int>-<something>" (a runner job). */
int nomad_runner_env(const char *id, long long *env);
/* "<env>-<uuid v1>" */
void nomad_new_runner_id(long long env, char *out, size_t cap);

#endif
