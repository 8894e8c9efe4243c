/* sched: see sched.h. Everything runs on the loop thread; a register or deregister is
 * complete (state saved, first event batches published) before its HTTP answer is written. */
#include "sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "log.h"
#include "portfwd.h"
#include "render.h"
#include "task.h"
#include "util.h"

static struct loop_timer gc_timer, retry_timer;
static int max_allocs;
static long long node_mb;

/* ---- events ---- */

static void ev_job(struct ev_batch *b, const char *type, struct nl_job *j)
{
	events_add(b, "Job", type, j->id, j->ns, NULL, "Job", json_object_get(j->spec));
}

static void ev_eval(struct ev_batch *b, const char *type, struct nl_eval *e)
{
	events_add(b, "Evaluation", type, e->id, e->ns, e->job_id, "Evaluation", render_eval(e));
}

static void ev_alloc(struct ev_batch *b, const char *type, struct nl_alloc *a)
{
	events_add(b, "Allocation", type, a->id, a->ns, a->job_id, "Allocation", render_alloc(a, 0));
}

/* ---- helpers ---- */

static struct nl_job *job_of_alloc(struct nl_alloc *a)
{
	struct nl_job *j = state_job(a->ns, a->job_id);
	return j && j->create_index == a->job_create_index ? j : NULL;
}

static json_object *find_group(json_object *spec, const char *name)
{
	json_object *groups = js_obj(spec, "TaskGroups");
	for (size_t i = 0; groups && i < json_object_array_length(groups); i++) {
		json_object *g = json_object_array_get_idx(groups, i);
		if (strcmp(js_str(g, "Name", ""), name) == 0)
			return g;
	}
	return NULL;
}

static struct nl_eval *new_eval(struct nl_job *j, const char *type, const char *triggered_by, int priority,
				uint64_t idx)
{
	struct nl_eval *e = calloc(1, sizeof *e);
	if (!e)
		abort();
	uuid_v4(e->id);
	snprintf(e->ns, sizeof e->ns, "%s", j->ns);
	snprintf(e->job_id, sizeof e->job_id, "%s", j->id);
	snprintf(e->type, sizeof e->type, "%s", type);
	snprintf(e->triggered_by, sizeof e->triggered_by, "%s", triggered_by);
	snprintf(e->status, sizeof e->status, "pending");
	e->priority = priority;
	e->create_index = e->modify_index = idx;
	e->create_time = e->modify_time = now_ns();
	loop_timer_init(&e->timer, NULL, e);
	state_add_eval(e);
	return e;
}

static void stop_alloc(struct nl_alloc *a, const char *why, uint64_t pidx)
{
	snprintf(a->desired_status, sizeof a->desired_status, "stop");
	snprintf(a->desired_description, sizeof a->desired_description, "%s", why);
	a->alloc_modify_index = a->modify_index = pidx;
	a->modify_time = now_ns();
}

static struct nl_alloc *new_alloc(struct nl_job *j, struct nl_eval *e, json_object *g, uint64_t pidx)
{
	struct nl_alloc *a = calloc(1, sizeof *a);
	if (!a)
		abort();
	uuid_v4(a->id);
	snprintf(a->ns, sizeof a->ns, "%s", j->ns);
	snprintf(a->eval_id, sizeof a->eval_id, "%s", e->id);
	snprintf(a->job_id, sizeof a->job_id, "%s", j->id);
	snprintf(a->job_type, sizeof a->job_type, "%s", js_str(j->spec, "Type", "service"));
	snprintf(a->task_group, sizeof a->task_group, "%s", js_str(g, "Name", ""));
	snprintf(a->name, sizeof a->name, "%s.%s[0]", j->id, a->task_group);
	json_object *tasks = js_obj(g, "Tasks"), *t = tasks ? json_object_array_get_idx(tasks, 0) : NULL;
	snprintf(a->task_name, sizeof a->task_name, "%s", js_str(t, "Name", ""));
	a->job_version = j->version;
	a->job_create_index = j->create_index;
	a->job = json_object_get(j->spec);
	snprintf(a->desired_status, sizeof a->desired_status, "run");
	snprintf(a->client_status, sizeof a->client_status, "pending");
	a->create_index = a->modify_index = a->alloc_modify_index = pidx;
	a->create_time = a->modify_time = now_ns();
	json_object *res = js_obj(t, "Resources");
	a->cpu = (int)js_int(res, "CPU", 100);
	a->memory_mb = (int)js_int(res, "MemoryMB", 300);
	a->memory_max_mb = (int)js_int(res, "MemoryMaxMB", 0);
	a->disk_mb = (int)js_int(js_obj(g, "EphemeralDisk"), "SizeMB", 300);
	json_object *nets = js_obj(g, "Networks");
	if (nets && json_object_array_length(nets) > 0) {
		json_object *n = json_object_array_get_idx(nets, 0);
		a->has_network = 1;
		snprintf(a->net_mode, sizeof a->net_mode, "%s", js_str(n, "Mode", ""));
		int host = strcmp(a->net_mode, "host") == 0;
		static const char *kinds[] = {"ReservedPorts", "DynamicPorts"};
		for (int k = 0; k < 2; k++) {
			json_object *ports = js_obj(n, kinds[k]);
			for (size_t i = 0; ports && i < json_object_array_length(ports) && a->nports < NL_MAX_PORTS;
			     i++) {
				json_object *p = json_object_array_get_idx(ports, i);
				struct nl_port *np = &a->ports[a->nports++];
				snprintf(np->label, sizeof np->label, "%s", js_str(p, "Label", ""));
				np->to = (int)js_int(p, "To", 0);
				np->value = k == 0 ? (int)js_int(p, "Value", 0) : host && np->to ? np->to : portfwd_pick();
				if (np->to == 0 || np->to == -1)
					np->to = np->value;
			}
		}
	}
	state_add_alloc(a);
	return a;
}

/* ---- evaluation completion ---- */

/* A blocked evaluation for what e could not place (structs.go CreateBlockedEval; the generic
 * scheduler's createBlockedEval sets the description). */
static struct nl_eval *block_remainder(struct nl_job *j, struct nl_eval *e)
{
	uint64_t idx = state_next_index();
	struct nl_eval *b = new_eval(j, e->type, "queued-allocs", e->priority, idx);
	snprintf(b->status, sizeof b->status, "blocked");
	snprintf(b->status_description, sizeof b->status_description, "created to place remaining allocations");
	snprintf(b->previous_eval, sizeof b->previous_eval, "%s", e->id);
	b->job_modify_index = e->job_modify_index;
	b->failed = json_object_get(e->failed);
	b->queued = e->queued ? json_object_get(e->queued) : NULL;
	snprintf(e->blocked_eval, sizeof e->blocked_eval, "%s", b->id);
	state_save_eval(b);
	struct ev_batch *batch = events_begin(idx);
	ev_eval(batch, "EvaluationUpdated", b);
	events_commit(batch);
	return b;
}

static void on_eval_complete(struct loop_timer *t)
{
	struct nl_eval *e = t->arg;
	struct nl_job *j = state_job(e->ns, e->job_id);
	/* a blocked evaluation tried again stays blocked while something is still unplaced; a
	 * fresh one that could not place everything leaves a blocked one behind */
	int reblock = strcmp(e->status, "blocked") == 0 && e->failed;
	if (!reblock && e->failed && !e->blocked_eval[0] && strcmp(e->status, "blocked") != 0 && j && !j->stop)
		block_remainder(j, e);
	uint64_t idx = state_next_index();
	if (!reblock)
		snprintf(e->status, sizeof e->status, "complete");
	e->snapshot_index = e->create_index;
	e->modify_index = idx;
	e->modify_time = now_ns();
	state_save_eval(e);
	struct ev_batch *b = events_begin(idx);
	ev_eval(b, "EvaluationUpdated", e);
	if (j && job_update_status(j)) {
		j->modify_index = idx;
		job_sync_spec(j);
		state_save_job(j);
		ev_job(b, "EvaluationUpdated", j);
	}
	events_commit(b);
	/* the client now learns about the allocations this evaluation placed */
	for (int i = 0; i < st.nallocs; i++) {
		struct nl_alloc *a = st.allocs[i];
		if (strcmp(a->eval_id, e->id) == 0 && !alloc_terminal(a))
			task_received(a);
	}
}

static void arm_eval(struct nl_eval *e)
{
	loop_timer_init(&e->timer, on_eval_complete, e);
	loop_timer_start(&e->timer, SCHED_EVAL_DELAY_MS);
}

/* ---- planning ---- */

struct plan {
	struct nl_alloc *placed[64];
	int nplaced;
	struct nl_alloc *stopped[64];
	int nstopped;
	struct ev_batch *b;
	uint64_t idx;
};

static uint64_t plan_index(struct plan *p, struct nl_eval *e)
{
	if (!p->idx) {
		p->idx = state_next_index();
		p->b = events_begin(p->idx);
		e->modify_index = p->idx;
		ev_eval(p->b, "PlanResult", e);
	}
	return p->idx;
}

static void plan_stop(struct plan *p, struct nl_eval *e, struct nl_alloc *a, const char *why)
{
	stop_alloc(a, why, plan_index(p, e));
	ev_alloc(p->b, "PlanResult", a);
	state_save_alloc(a);
	if (p->nstopped < 64)
		p->stopped[p->nstopped++] = a;
}

/* Nomad's datacenter patterns: '*' matches any run of characters, nothing else is special
 * (scheduler/util.go readyNodesInDCsAndPool, Node.IsInAnyDC, go-glob). */
static int glob_match(const char *pat, const char *s)
{
	if (*pat == '\0')
		return *s == '\0';
	if (*pat == '*')
		return glob_match(pat + 1, s) || (*s && glob_match(pat, s + 1));
	return *pat == *s && glob_match(pat + 1, s + 1);
}

static int in_datacenters(const struct nl_job *j)
{
	json_object *dcs = js_obj(j->spec, "Datacenters");
	if (!dcs || json_object_array_length(dcs) == 0)
		return 1; /* canonicalized to "*" */
	for (size_t i = 0; i < json_object_array_length(dcs); i++) {
		json_object *d = json_object_array_get_idx(dcs, i);
		if (json_object_is_type(d, json_type_string) && glob_match(json_object_get_string(d), NL_DATACENTER))
			return 1;
	}
	return 0;
}

static long long group_memory_mb(json_object *g)
{
	long long mb = 0;
	json_object *tasks = js_obj(g, "Tasks");
	for (size_t i = 0; tasks && i < json_object_array_length(tasks); i++)
		mb += js_int(js_obj(json_object_array_get_idx(tasks, i), "Resources"), "MemoryMB", 300);
	return mb;
}

static int quiet_failures; /* a blocked evaluation tried again: its failure was logged before */

/* Records group as not placed in e's FailedTGAllocs with the AllocMetric Nomad's scheduler
 * would show: evaluated 0 when no node is in the job's datacenters, else the one node
 * exhausted in dimension (structs.go AllocMetric, ExhaustResources). Returns 0. */
static int not_placed(struct nl_eval *e, json_object *g, const char *dimension, const char *why)
{
	const char *group = js_str(g, "Name", "");
	int evaluated = dimension != NULL;
	if (!e->failed)
		e->failed = json_object_new_object();
	json_object *m = json_object_new_object(), *avail = json_object_new_object(), *dim = NULL, *res = NULL;
	if (evaluated)
		json_object_object_add(avail, NL_DATACENTER, json_object_new_int(1));
	if (dimension) {
		dim = json_object_new_object();
		json_object_object_add(dim, dimension, json_object_new_int(1));
	}
	if (dimension && strcmp(dimension, "memory") == 0) {
		json_object *tasks = js_obj(g, "Tasks");
		res = json_object_new_object();
		for (size_t i = 0; tasks && i < json_object_array_length(tasks); i++) {
			json_object *t = json_object_array_get_idx(tasks, i), *r = json_object_new_object();
			json_object_object_add(r, "CPU", json_object_new_int(0));
			json_object_object_add(r, "MemoryMB", json_object_new_int64(js_int(js_obj(t, "Resources"), "MemoryMB", 300)));
			json_object_object_add(r, "MemoryMaxMB", json_object_new_int(0));
			json_object_object_add(r, "DiskMB", json_object_new_int(0));
			json_object_object_add(res, js_str(t, "Name", ""), r);
		}
	}
	json_object_object_add(m, "NodesEvaluated", json_object_new_int(evaluated));
	json_object_object_add(m, "NodesFiltered", json_object_new_int(0));
	json_object_object_add(m, "NodesInPool", json_object_new_int(evaluated));
	json_object_object_add(m, "NodePool", json_object_new_string("default"));
	json_object_object_add(m, "NodesAvailable", avail);
	json_object_object_add(m, "ClassFiltered", NULL);
	json_object_object_add(m, "ConstraintFiltered", NULL);
	json_object_object_add(m, "NodesExhausted", json_object_new_int(evaluated));
	json_object_object_add(m, "ClassExhausted", NULL);
	json_object_object_add(m, "DimensionExhausted", dim);
	json_object_object_add(m, "QuotaExhausted", NULL);
	json_object_object_add(m, "ResourcesExhausted", res);
	json_object_object_add(m, "Scores", NULL);
	json_object_object_add(m, "ScoreMetaData", NULL);
	json_object_object_add(m, "AllocationTime", json_object_new_int(0));
	json_object_object_add(m, "CoalescedFailures", json_object_new_int(0));
	json_object_object_add(e->failed, group, m);
	if (!quiet_failures)
		log_warn("allocation not placed; placement is tried again when capacity frees up", "job_id", e->job_id,
			 "group", group, "reason", why);
	return 0;
}

/* Whether the node can take one more allocation of group g (replacing live, which goes): the
 * job's datacenters must hold this node, the memory its allocations reserve (MemoryMB, as
 * Nomad counts) must fit the node's, and the agent runs at most max_allocs sandboxes. */
static int placeable(struct nl_eval *e, const struct nl_job *j, json_object *g, const struct nl_alloc *live)
{
	if (!in_datacenters(j))
		return not_placed(e, g, NULL, "no node in the job's datacenters (this agent's is " NL_DATACENTER ")");
	int running = 0;
	long long reserved = 0;
	for (int i = 0; i < st.nallocs; i++) {
		const struct nl_alloc *a = st.allocs[i];
		if (alloc_terminal(a) || a == live)
			continue;
		running++;
		reserved += a->memory_mb;
	}
	if (node_mb > 0 && reserved + group_memory_mb(g) > node_mb)
		return not_placed(e, g, "memory", "the node's memory is reserved");
	if (running >= max_allocs)
		return not_placed(e, g, "sandboxes",
				  "the agent runs its maximum of sandboxes (-max-allocations)");
	return 1;
}

/* Plans j's groups under evaluation e; returns how many allocations it placed. */
static int plan_job(struct nl_job *j, struct nl_eval *e, int all_stop)
{
	struct plan p = {0};
	json_object *groups = js_obj(j->spec, "TaskGroups");
	/* live allocations of groups that are gone, or of a stopped job */
	for (int i = 0; i < st.nallocs; i++) {
		struct nl_alloc *a = st.allocs[i];
		if (alloc_terminal(a) || strcmp(a->job_id, j->id) || strcmp(a->ns, j->ns) ||
		    a->job_create_index != j->create_index)
			continue;
		json_object *g = find_group(j->spec, a->task_group);
		if (all_stop || j->stop || !g || js_int(g, "Count", 1) <= 0)
			plan_stop(&p, e, a, "alloc not needed due to job update");
	}
	for (size_t gi = 0; !all_stop && !j->stop && groups && gi < json_object_array_length(groups); gi++) {
		json_object *g = json_object_array_get_idx(groups, gi);
		if (js_int(g, "Count", 1) <= 0)
			continue;
		const char *gname = js_str(g, "Name", "");
		struct nl_alloc *live = NULL;
		for (int i = 0; i < st.nallocs; i++) {
			struct nl_alloc *a = st.allocs[i];
			if (!alloc_terminal(a) && strcmp(a->job_id, j->id) == 0 && strcmp(a->ns, j->ns) == 0 &&
			    a->job_create_index == j->create_index && strcmp(a->task_group, gname) == 0) {
				live = a;
				break;
			}
		}
		if (live) {
			char *fold = jobspec_group_fingerprint(find_group(live->job, gname));
			char *fnew = jobspec_group_fingerprint(g);
			int same = fold && fnew && strcmp(fold, fnew) == 0;
			free(fold);
			free(fnew);
			if (same) {
				if (live->job_version == j->version && strcmp(live->eval_id, e->id) == 0)
					continue;
				/* in-place update: new job version, same task */
				uint64_t pidx = plan_index(&p, e);
				snprintf(live->eval_id, sizeof live->eval_id, "%s", e->id);
				live->job_version = j->version;
				json_object_put(live->job);
				live->job = json_object_get(j->spec);
				live->alloc_modify_index = live->modify_index = pidx;
				live->modify_time = now_ns();
				ev_alloc(p.b, "PlanResult", live);
				state_save_alloc(live);
				continue;
			}
			plan_stop(&p, e, live, "alloc is being updated due to job update");
		}
		if (!placeable(e, j, g, live))
			continue;
		uint64_t pidx = plan_index(&p, e);
		struct nl_alloc *a = new_alloc(j, e, g, pidx);
		if (strcmp(live ? live->id : "", "") != 0)
			snprintf(a->previous_allocation, sizeof a->previous_allocation, "%s", live->id);
		ev_alloc(p.b, "PlanResult", a);
		state_save_alloc(a);
		if (p.nplaced < 64)
			p.placed[p.nplaced++] = a;
	}
	if (!p.idx)
		return 0;
	state_save_eval(e);
	if (job_update_status(j)) {
		j->modify_index = p.idx;
		job_sync_spec(j);
		ev_job(p.b, "PlanResult", j);
	}
	j->summary_index = p.idx;
	state_save_job(j);
	events_commit(p.b);
	for (int i = 0; i < p.nstopped; i++)
		task_stop(p.stopped[i]);
	for (int i = 0; i < p.nplaced; i++) {
		log_info("allocation placed", "alloc_id", p.placed[i]->id, "job_id", j->id, "group",
			 p.placed[i]->task_group);
		task_place(p.placed[i]);
	}
	return p.nplaced;
}

/* ---- register / deregister ---- */

static json_object *register_response(struct nl_eval *e, uint64_t job_modify_index, uint64_t idx)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "EvalID", json_object_new_string(e ? e->id : ""));
	json_object_object_add(o, "EvalCreateIndex", json_object_new_int64(e ? (int64_t)e->create_index : 0));
	json_object_object_add(o, "JobModifyIndex", json_object_new_int64((int64_t)job_modify_index));
	json_object_object_add(o, "Warnings", json_object_new_string(""));
	json_object_object_add(o, "Index", json_object_new_int64((int64_t)idx));
	json_object_object_add(o, "LastContact", json_object_new_int(0));
	json_object_object_add(o, "KnownLeader", json_object_new_boolean(0));
	json_object_object_add(o, "NextToken", json_object_new_string(""));
	return o;
}

int sched_enforce_index(const struct jobspec_request *req, char *err, size_t cap)
{
	if (!req->enforce_index)
		return 0;
	/* nomad/job_endpoint.go Register, RegisterEnforceIndexErrPrefix */
	const struct nl_job *j = state_job(req->ns, req->id);
	unsigned long long want = req->job_modify_index;
	if (j && want == 0)
		snprintf(err, cap, "Enforcing job modify index 0: job already exists");
	else if (j && want != j->job_modify_index)
		snprintf(err, cap, "Enforcing job modify index %llu: job exists with conflicting job modify index: %llu", want,
			 (unsigned long long)j->job_modify_index);
	else if (!j && want != 0)
		snprintf(err, cap, "Enforcing job modify index %llu: job does not exist", want);
	else
		return 0;
	return -1;
}

json_object *sched_register(struct jobspec_request *req)
{
	int64_t now = now_ns();
	struct nl_job *j = state_job(req->ns, req->id);
	char *fp = jobspec_fingerprint(req->job);
	uint64_t idx = state_next_index();
	if (!j) {
		j = calloc(1, sizeof *j);
		if (!j)
			abort();
		snprintf(j->ns, sizeof j->ns, "%s", req->ns);
		snprintf(j->id, sizeof j->id, "%s", req->id);
		j->spec = req->job;
		j->fingerprint = fp;
		j->create_index = j->job_modify_index = idx;
		j->submit_time = now;
		state_add_job(j);
		log_info("job registered", "namespace", j->ns, "job_id", j->id);
	} else if (!fp || strcmp(fp, j->fingerprint) != 0 || j->stop != js_bool(req->job, "Stop")) {
		json_object_put(j->spec);
		free(j->fingerprint);
		j->spec = req->job;
		j->fingerprint = fp;
		j->version++;
		j->job_modify_index = idx;
		j->submit_time = now;
		log_info("job updated", "namespace", j->ns, "job_id", j->id);
	} else {
		/* unchanged: same version and JobModifyIndex, but still a new evaluation */
		json_object_put(req->job);
		free(fp);
	}
	req->job = NULL;
	j->stop = js_bool(j->spec, "Stop");
	j->modify_index = idx;
	int prio = req->eval_priority ? req->eval_priority : (int)js_int(j->spec, "Priority", 50);
	struct nl_eval *e = new_eval(j, js_str(j->spec, "Type", "service"), "job-register", prio, idx);
	e->job_modify_index = j->job_modify_index;
	/* QueuedAllocations of the completed evaluation: every group of this version */
	e->queued = json_object_new_object();
	json_object *groups = js_obj(j->spec, "TaskGroups");
	for (size_t i = 0; groups && i < json_object_array_length(groups); i++)
		json_object_object_add(e->queued, js_str(json_object_array_get_idx(groups, i), "Name", ""),
				       json_object_new_int(0));
	job_update_status(j);
	job_sync_spec(j);
	state_save_job(j);
	state_save_eval(e);
	/* the job upsert and its evaluation are two transactions with the same index */
	struct ev_batch *b = events_begin(idx);
	ev_job(b, "JobRegistered", j);
	events_commit(b);
	b = events_begin(idx);
	ev_eval(b, "JobRegistered", e);
	events_commit(b);
	plan_job(j, e, 0);
	arm_eval(e);
	return register_response(e, j->job_modify_index, idx);
}

json_object *sched_deregister(const char *ns, const char *id, int purge)
{
	struct nl_job *j = state_job(ns, id);
	if (!j) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "EvalID", json_object_new_string(""));
		json_object_object_add(o, "EvalCreateIndex", json_object_new_int(0));
		json_object_object_add(o, "JobModifyIndex", json_object_new_int(0));
		json_object_object_add(o, "VolumeEvalID", json_object_new_string(""));
		json_object_object_add(o, "VolumeEvalIndex", json_object_new_int(0));
		json_object_object_add(o, "Index", json_object_new_int(0));
		json_object_object_add(o, "LastContact", json_object_new_int(0));
		json_object_object_add(o, "KnownLeader", json_object_new_boolean(0));
		json_object_object_add(o, "NextToken", json_object_new_string(""));
		return o;
	}
	uint64_t idx = state_next_index();
	/* Nomad creates the deregistration evaluation with type "service" */
	struct nl_eval *e = new_eval(j, "service", "job-deregister", (int)js_int(j->spec, "Priority", 50), idx);
	e->job_modify_index = idx;
	struct ev_batch *b = events_begin(idx);
	ev_job(b, "JobDeregistered", j); /* the job as it was before */
	if (!purge) {
		j->stop = 1;
		j->version++;
		j->job_modify_index = j->modify_index = idx;
		job_update_status(j);
		job_sync_spec(j);
		state_save_job(j);
	}
	events_commit(b);
	b = events_begin(idx);
	ev_eval(b, "JobDeregistered", e);
	events_commit(b);
	state_save_eval(e);
	/* stop the job's allocations; a purged job is gone from the state first */
	struct plan p = {0};
	for (int i = 0; i < st.nallocs; i++) {
		struct nl_alloc *a = st.allocs[i];
		if (alloc_terminal(a) || strcmp(a->job_id, j->id) || strcmp(a->ns, j->ns) ||
		    a->job_create_index != j->create_index)
			continue;
		plan_stop(&p, e, a, "alloc not needed due to job update");
	}
	log_info(purge ? "job purged" : "job stopped", "namespace", ns, "job_id", id);
	if (purge)
		state_remove_job(j);
	else if (p.idx && job_update_status(j)) {
		j->modify_index = p.idx;
		job_sync_spec(j);
		state_save_job(j);
		ev_job(p.b, "PlanResult", j);
	}
	if (p.idx) {
		state_save_eval(e);
		events_commit(p.b);
		for (int i = 0; i < p.nstopped; i++)
			task_stop(p.stopped[i]);
	}
	arm_eval(e);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "EvalID", json_object_new_string(e->id));
	json_object_object_add(o, "EvalCreateIndex", json_object_new_int64((int64_t)idx));
	json_object_object_add(o, "JobModifyIndex", json_object_new_int64((int64_t)idx));
	json_object_object_add(o, "VolumeEvalID", json_object_new_string(""));
	json_object_object_add(o, "VolumeEvalIndex", json_object_new_int(0));
	json_object_object_add(o, "Index", json_object_new_int64((int64_t)idx));
	json_object_object_add(o, "LastContact", json_object_new_int(0));
	json_object_object_add(o, "KnownLeader", json_object_new_boolean(0));
	json_object_object_add(o, "NextToken", json_object_new_string(""));
	return o;
}

static void retry_blocked(void);

/* An allocation that ended frees its capacity: blocked evaluations are tried again soon (from
 * the loop, not from inside the caller's update). */
static void wake_blocked(const struct nl_alloc *a)
{
	if (alloc_client_terminal(a) && !loop_timer_armed(&retry_timer))
		loop_timer_start(&retry_timer, 0);
}

void sched_alloc_update(struct nl_alloc *a, const char *event_type)
{
	uint64_t idx = state_next_index();
	a->modify_index = idx;
	a->modify_time = now_ns();
	struct nl_job *j = job_of_alloc(a);
	int changed = 0;
	if (j) {
		changed = job_update_status(j);
		j->summary_index = idx;
		if (changed) {
			j->modify_index = idx;
			job_sync_spec(j);
		}
		state_save_job(j);
	}
	state_save_alloc(a);
	struct ev_batch *b = events_begin(idx);
	ev_alloc(b, event_type, a);
	if (changed)
		ev_job(b, event_type, j);
	events_commit(b);
	wake_blocked(a);
}

/* ---- garbage collection ---- */

/* Blocked evaluations are tried again when capacity may have freed up (an allocation ended;
 * and every GC tick), as Nomad's blocked-evals tracker unblocks them: a placement completes the
 * evaluation, nothing placed leaves it blocked. One whose job is gone, stopped or has a newer
 * evaluation is canceled, as Nomad reaps duplicate blocked evaluations. */
static void retry_blocked(void)
{
	for (int i = 0; i < st.nevals; i++) {
		struct nl_eval *e = st.evals[i];
		if (strcmp(e->status, "blocked") != 0 || loop_timer_armed(&e->timer))
			continue;
		struct nl_job *j = state_job(e->ns, e->job_id);
		int newer = 0;
		for (int k = 0; k < st.nevals && !newer; k++)
			newer = st.evals[k] != e && strcmp(st.evals[k]->ns, e->ns) == 0 &&
				strcmp(st.evals[k]->job_id, e->job_id) == 0 && st.evals[k]->create_index > e->create_index;
		if (newer || !j || j->stop) {
			uint64_t idx = state_next_index();
			snprintf(e->status, sizeof e->status, "canceled");
			snprintf(e->status_description, sizeof e->status_description,
				 "evaluation superseded: the job changed or is gone");
			e->modify_index = idx;
			e->modify_time = now_ns();
			state_save_eval(e);
			struct ev_batch *b = events_begin(idx);
			ev_eval(b, "EvaluationUpdated", e);
			events_commit(b);
			continue;
		}
		json_object *before = e->failed;
		e->failed = NULL;
		quiet_failures = 1;
		int placed = plan_job(j, e, 0);
		quiet_failures = 0;
		if (placed > 0) {
			json_object_put(before);
			arm_eval(e); /* completes it, or blocks it again if a part is still unplaced */
		} else {
			json_object_put(e->failed); /* the same as before: nothing to tell */
			e->failed = before;
		}
	}
}

static void on_retry(struct loop_timer *t)
{
	(void)t;
	retry_blocked();
}

static void on_gc(struct loop_timer *t)
{
	int64_t now = now_ns();
	int terminal = 0;
	for (int i = 0; i < st.nallocs; i++)
		terminal += alloc_client_terminal(st.allocs[i]);
	/* oldest first (the arrays are in creation order; removing shifts the rest down) */
	for (int i = 0; i < st.nallocs;) {
		struct nl_alloc *a = st.allocs[i];
		int old = now - a->modify_time > SCHED_GC_AGE_NS;
		if (alloc_client_terminal(a) && ((old && !job_of_alloc(a)) || terminal > SCHED_GC_MAX_TERMINAL)) {
			task_forget(a);
			state_remove_alloc(a);
			terminal--;
		} else {
			i++;
		}
	}
	int done = 0;
	for (int i = 0; i < st.nevals; i++)
		done += strcmp(st.evals[i]->status, "pending") != 0;
	for (int i = 0; i < st.nevals;) {
		struct nl_eval *e = st.evals[i];
		if (strcmp(e->status, "pending") != 0 && strcmp(e->status, "blocked") != 0 &&
		    (now - e->modify_time > SCHED_GC_AGE_NS || done > SCHED_GC_MAX_DONE_EVALS)) {
			state_remove_eval(e);
			done--;
		} else {
			i++;
		}
	}
	sandbox_gc();
	retry_blocked();
	loop_timer_start(t, SCHED_GC_INTERVAL_MS);
}

void sched_init(int max, long long memory_mb)
{
	max_allocs = max;
	node_mb = memory_mb;
	loop_timer_init(&retry_timer, on_retry, NULL);
	loop_timer_init(&gc_timer, on_gc, NULL);
	loop_timer_start(&gc_timer, SCHED_GC_INTERVAL_MS);
}

void sched_restore(void)
{
	for (int i = 0; i < st.nevals; i++)
		if (strcmp(st.evals[i]->status, "pending") == 0)
			arm_eval(st.evals[i]);
	/* task_restore may remove nothing but can publish; iterate over a snapshot count */
	int n = st.nallocs;
	for (int i = 0; i < n && i < st.nallocs; i++)
		task_restore(st.allocs[i]);
	for (int i = 0; i < st.njobs; i++) {
		struct nl_job *j = st.jobs[i];
		if (job_update_status(j)) {
			job_sync_spec(j);
			state_save_job(j);
		}
	}
}

void sched_shutdown(void)
{
	loop_timer_stop(&gc_timer);
	loop_timer_stop(&retry_timer);
	for (int i = 0; i < st.nevals; i++)
		loop_timer_stop(&st.evals[i]->timer);
}
