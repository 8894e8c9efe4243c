/* state: nomad-local's state store: jobs, evaluations and allocations, the raft-like index,
 * and their persistence.
 *
 * Invariants: the index only goes up and every object's CreateIndex/ModifyIndex comes from it;
 * a job is keyed by (namespace, ID); an allocation belongs to at most one job and keeps a
 * reference to the job version it runs (alloc->job) even after the job is purged. Every
 * change is written through state_save_*() before the HTTP answer or event that reports it:
 * one small JSON file per object under <state>/{jobs,evals,allocs}/ (write + rename), plus
 * agent.json with the index, node ID and signing key. state_load() reads them back after a
 * restart. Nothing here knows HTTP or processes; the client-side runtime of an allocation is
 * an opaque JSON blob (alloc->runtime) that task.c maintains.
 */
#ifndef NL_STATE_H
#define NL_STATE_H

#include <json-c/json.h>
#include <stdint.h>

#include "loop.h"

#define NL_ID_LEN 37
#define NL_NS_MAX 128
#define NL_JOBID_MAX 256
#define NL_MAX_PORTS 16
#define NL_MAX_TASK_EVENTS 10 /* Nomad's client keeps the last 10 task events */

struct nl_job {
	char ns[NL_NS_MAX];
	char id[NL_JOBID_MAX];
	json_object *spec; /* canonical server job; Status/Version/indexes kept current in it */
	char *fingerprint; /* spec without server-maintained fields */
	uint64_t create_index, modify_index, job_modify_index, summary_index;
	uint64_t version;
	int64_t submit_time;
	int stop;
	char status[16];
};

#define NL_DATACENTER "dc1" /* the one node's datacenter */

struct nl_eval {
	char id[NL_ID_LEN];
	char ns[NL_NS_MAX];
	char job_id[NL_JOBID_MAX];
	int priority;
	char type[16];
	char triggered_by[32];
	char status[16];
	uint64_t job_modify_index, create_index, modify_index, snapshot_index;
	int64_t create_time, modify_time;
	json_object *queued; /* QueuedAllocations, NULL until complete */
	json_object *failed; /* FailedTGAllocs: group -> AllocationMetric of what could not be placed */
	char blocked_eval[NL_ID_LEN];   /* the blocked evaluation made for what this one could not place */
	char previous_eval[NL_ID_LEN];  /* for a blocked evaluation: the one it was made for */
	char status_description[64];
	struct loop_timer timer;
};

struct nl_port {
	char label[64];
	int value; /* host port on 127.0.0.1 */
	int to;    /* port inside the sandbox */
};

struct nl_task_state {
	char state[16]; /* pending, running, dead */
	int failed;
	int restarts;
	int64_t last_restart, started_at, finished_at; /* unix ns, 0 = null */
	json_object *events;                           /* array of TaskEvent objects */
};

struct nl_alloc {
	char id[NL_ID_LEN];
	char ns[NL_NS_MAX];
	char eval_id[NL_ID_LEN];
	char name[NL_JOBID_MAX + 160];
	char job_id[NL_JOBID_MAX];
	char job_type[16];
	char task_group[128];
	char task_name[128];
	uint64_t job_version;
	uint64_t job_create_index; /* tells apart jobs re-created with the same ID */
	json_object *job; /* job snapshot this allocation runs (reference) */
	char desired_status[16];
	char desired_description[128];
	char client_status[16];
	char client_description[64];
	struct nl_task_state task;
	char previous_allocation[NL_ID_LEN];
	char next_allocation[NL_ID_LEN];
	uint64_t create_index, modify_index, alloc_modify_index;
	int64_t create_time, modify_time;
	int has_network;
	char net_mode[32];
	struct nl_port ports[NL_MAX_PORTS];
	int nports;
	int cpu, memory_mb, memory_max_mb, disk_mb;
	json_object *runtime; /* client-side data owned by task.c (pids, cgroup, dirs...) */
	void *rt;             /* task.c's in-memory runtime (not persisted) */
};

struct nl_state {
	char dir[1024];
	char node_id[NL_ID_LEN];
	char node_name[256];
	char signing_key[NL_ID_LEN];
	uint64_t index;
	struct nl_job **jobs;
	int njobs, jobs_cap;
	struct nl_eval **evals;
	int nevals, evals_cap;
	struct nl_alloc **allocs;
	int nallocs, allocs_cap;
};

extern struct nl_state st;

/* Opens (creating when needed) the state directory and loads everything in it. 0 or -1. */
int state_open(const char *dir);
void state_close(void);

uint64_t state_next_index(void);

struct nl_job *state_job(const char *ns, const char *id);
struct nl_eval *state_eval(const char *id);
struct nl_alloc *state_alloc(const char *id);

/* Insert takes ownership; remove frees (allocation memory is freed after the loop batch). */
void state_add_job(struct nl_job *j);
void state_remove_job(struct nl_job *j);
void state_add_eval(struct nl_eval *e);
void state_remove_eval(struct nl_eval *e);
void state_add_alloc(struct nl_alloc *a);
void state_remove_alloc(struct nl_alloc *a);

void state_save_job(struct nl_job *j);
void state_save_eval(struct nl_eval *e);
void state_save_alloc(struct nl_alloc *a);
void state_save_agent(void);

/* Allocation helpers. */
int alloc_terminal(const struct nl_alloc *a); /* desired stop/evict or client complete/failed/lost */
int alloc_client_terminal(const struct nl_alloc *a);
/* Appends a task event (keeps the last NL_MAX_TASK_EVENTS). ev is owned by the alloc. */
void alloc_add_event(struct nl_alloc *a, json_object *ev);

/* Recomputes a job's Status as Nomad's state store does; returns 1 when it changed. */
int job_update_status(struct nl_job *j);
/* Writes Status, Version, indexes etc. into j->spec. */
void job_sync_spec(struct nl_job *j);

#endif
