/* state: see state.h. Objects live in three growable pointer arrays (a single node runs at
 * most a few thousand of them, so lookups are linear scans). Files are small and rewritten
 * whole on every change; a crash between two writes loses at most the last change of one
 * object, never the file (rename is atomic). */
#include "state.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jobspec.h"
#include "log.h"
#include "util.h"

#define STATE_MAX_FILE (64 * 1024 * 1024)
#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

struct nl_state st;

void state_save_agent(void);

uint64_t state_next_index(void)
{
	/* persisted at once so that indexes stay monotonic across restarts even when the
	 * objects that carried the highest ones were purged */
	st.index++;
	state_save_agent();
	return st.index;
}

/* ---- arrays ---- */

#define ARRAY_PUSH(arr, n, cap, item)                                                                      \
	do {                                                                                               \
		if ((n) == (cap)) {                                                                        \
			int c_ = (cap) ? (cap) * 2 : 64;                                                   \
			void *p_ = realloc((arr), (size_t)c_ * sizeof *(arr));                             \
			if (!p_) {                                                                         \
				log_error("state: out of memory");                                         \
				abort();                                                                   \
			}                                                                                  \
			(arr) = p_;                                                                        \
			(cap) = c_;                                                                        \
		}                                                                                          \
		(arr)[(n)++] = (item);                                                                     \
	} while (0)

struct nl_job *state_job(const char *ns, const char *id)
{
	for (int i = 0; i < st.njobs; i++)
		if (strcmp(st.jobs[i]->id, id) == 0 && strcmp(st.jobs[i]->ns, ns) == 0)
			return st.jobs[i];
	return NULL;
}

struct nl_eval *state_eval(const char *id)
{
	for (int i = 0; i < st.nevals; i++)
		if (strcmp(st.evals[i]->id, id) == 0)
			return st.evals[i];
	return NULL;
}

struct nl_alloc *state_alloc(const char *id)
{
	for (int i = 0; i < st.nallocs; i++)
		if (strcmp(st.allocs[i]->id, id) == 0)
			return st.allocs[i];
	return NULL;
}

static void path_of(char *out, size_t cap, const char *kind, const char *ns, const char *id)
{
	char e1[NL_NS_MAX * 3 + 1], e2[NL_JOBID_MAX * 3 + 1];
	file_name_escape(id, e2, sizeof e2);
	if (ns) {
		file_name_escape(ns, e1, sizeof e1);
		snprintf(out, cap, "%s/%s/%s/%s.json", st.dir, kind, e1, e2);
	} else {
		snprintf(out, cap, "%s/%s/%s.json", st.dir, kind, e2);
	}
}

static void free_job(void *p)
{
	struct nl_job *j = p;
	json_object_put(j->spec);
	free(j->fingerprint);
	free(j);
}

static void free_eval(void *p)
{
	struct nl_eval *e = p;
	json_object_put(e->queued);
	json_object_put(e->failed);
	free(e);
}

static void free_alloc(void *p)
{
	struct nl_alloc *a = p;
	json_object_put(a->job);
	json_object_put(a->task.events);
	json_object_put(a->runtime);
	free(a);
}

void state_add_job(struct nl_job *j) { ARRAY_PUSH(st.jobs, st.njobs, st.jobs_cap, j); }
void state_add_eval(struct nl_eval *e) { ARRAY_PUSH(st.evals, st.nevals, st.evals_cap, e); }
void state_add_alloc(struct nl_alloc *a) { ARRAY_PUSH(st.allocs, st.nallocs, st.allocs_cap, a); }

void state_remove_job(struct nl_job *j)
{
	char path[2048];
	for (int i = 0; i < st.njobs; i++)
		if (st.jobs[i] == j) {
			memmove(st.jobs + i, st.jobs + i + 1, (size_t)(st.njobs - i - 1) * sizeof *st.jobs);
			st.njobs--;
			break;
		}
	path_of(path, sizeof path, "jobs", j->ns, j->id);
	if (unlink(path) < 0 && errno != ENOENT)
		log_error("state: cannot remove job file", "path", path, "error", strerror(errno));
	loop_defer_free(free_job, j);
}

void state_remove_eval(struct nl_eval *e)
{
	char path[2048];
	loop_timer_stop(&e->timer);
	for (int i = 0; i < st.nevals; i++)
		if (st.evals[i] == e) {
			memmove(st.evals + i, st.evals + i + 1, (size_t)(st.nevals - i - 1) * sizeof *st.evals);
			st.nevals--;
			break;
		}
	path_of(path, sizeof path, "evals", NULL, e->id);
	unlink(path);
	loop_defer_free(free_eval, e);
}

void state_remove_alloc(struct nl_alloc *a)
{
	char path[2048];
	for (int i = 0; i < st.nallocs; i++)
		if (st.allocs[i] == a) {
			memmove(st.allocs + i, st.allocs + i + 1, (size_t)(st.nallocs - i - 1) * sizeof *st.allocs);
			st.nallocs--;
			break;
		}
	path_of(path, sizeof path, "allocs", NULL, a->id);
	unlink(path);
	loop_defer_free(free_alloc, a);
}

/* ---- status ---- */

int alloc_client_terminal(const struct nl_alloc *a)
{
	return strcmp(a->client_status, "complete") == 0 || strcmp(a->client_status, "failed") == 0 ||
	       strcmp(a->client_status, "lost") == 0;
}

int alloc_terminal(const struct nl_alloc *a)
{
	return strcmp(a->desired_status, "stop") == 0 || strcmp(a->desired_status, "evict") == 0 ||
	       alloc_client_terminal(a);
}

void alloc_add_event(struct nl_alloc *a, json_object *ev)
{
	if (!a->task.events)
		a->task.events = json_object_new_array();
	json_object_array_add(a->task.events, ev);
	size_t n = json_object_array_length(a->task.events);
	if (n > NL_MAX_TASK_EVENTS)
		json_object_array_del_idx(a->task.events, 0, n - NL_MAX_TASK_EVENTS);
}

int job_update_status(struct nl_job *j)
{
	const char *status = "pending";
	int any_alloc = 0, any_eval = 0, live_alloc = 0, live_eval = 0;
	for (int i = 0; i < st.nallocs; i++) {
		struct nl_alloc *a = st.allocs[i];
		if (strcmp(a->job_id, j->id) != 0 || strcmp(a->ns, j->ns) != 0 ||
		    a->job_create_index != j->create_index)
			continue;
		any_alloc = 1;
		if (!alloc_terminal(a))
			live_alloc = 1;
	}
	for (int i = 0; i < st.nevals; i++) {
		struct nl_eval *e = st.evals[i];
		if (strcmp(e->job_id, j->id) != 0 || strcmp(e->ns, j->ns) != 0 || e->create_index < j->create_index)
			continue;
		any_eval = 1;
		if (strcmp(e->status, "pending") == 0 || strcmp(e->status, "blocked") == 0)
			live_eval = 1;
	}
	if (live_alloc)
		status = "running";
	else if (live_eval)
		status = "pending";
	else if (any_alloc || any_eval || j->stop)
		status = "dead";
	if (strcmp(status, j->status) == 0)
		return 0;
	snprintf(j->status, sizeof j->status, "%s", status);
	return 1;
}

void job_sync_spec(struct nl_job *j)
{
	json_object *s = j->spec;
	json_object_object_add(s, "Stop", json_object_new_boolean(j->stop));
	json_object_object_add(s, "Status", json_object_new_string(j->status));
	json_object_object_add(s, "Version", json_object_new_int64((int64_t)j->version));
	json_object_object_add(s, "SubmitTime", json_object_new_int64(j->submit_time));
	json_object_object_add(s, "CreateIndex", json_object_new_int64((int64_t)j->create_index));
	json_object_object_add(s, "ModifyIndex", json_object_new_int64((int64_t)j->modify_index));
	json_object_object_add(s, "JobModifyIndex", json_object_new_int64((int64_t)j->job_modify_index));
}

/* ---- persistence ---- */

static void save(const char *path, json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_FLAGS);
	if (write_file_atomic(path, s, strlen(s), 0600) < 0)
		log_error("state: write failed", "path", path, "error", strerror(errno));
}

void state_save_job(struct nl_job *j)
{
	char path[2048], dir[2048], e[NL_NS_MAX * 3 + 1];
	file_name_escape(j->ns, e, sizeof e);
	snprintf(dir, sizeof dir, "%s/jobs/%s", st.dir, e);
	mkdir(dir, 0700);
	path_of(path, sizeof path, "jobs", j->ns, j->id);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "Namespace", json_object_new_string(j->ns));
	json_object_object_add(o, "ID", json_object_new_string(j->id));
	json_object_object_add(o, "CreateIndex", json_object_new_int64((int64_t)j->create_index));
	json_object_object_add(o, "ModifyIndex", json_object_new_int64((int64_t)j->modify_index));
	json_object_object_add(o, "JobModifyIndex", json_object_new_int64((int64_t)j->job_modify_index));
	json_object_object_add(o, "SummaryIndex", json_object_new_int64((int64_t)j->summary_index));
	json_object_object_add(o, "Version", json_object_new_int64((int64_t)j->version));
	json_object_object_add(o, "SubmitTime", json_object_new_int64(j->submit_time));
	json_object_object_add(o, "Stop", json_object_new_boolean(j->stop));
	json_object_object_add(o, "Status", json_object_new_string(j->status));
	json_object_object_add(o, "Spec", json_object_get(j->spec));
	save(path, o);
	json_object_put(o);
}

void state_save_eval(struct nl_eval *e)
{
	char path[2048];
	path_of(path, sizeof path, "evals", NULL, e->id);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "ID", json_object_new_string(e->id));
	json_object_object_add(o, "Namespace", json_object_new_string(e->ns));
	json_object_object_add(o, "JobID", json_object_new_string(e->job_id));
	json_object_object_add(o, "Priority", json_object_new_int(e->priority));
	json_object_object_add(o, "Type", json_object_new_string(e->type));
	json_object_object_add(o, "TriggeredBy", json_object_new_string(e->triggered_by));
	json_object_object_add(o, "Status", json_object_new_string(e->status));
	json_object_object_add(o, "JobModifyIndex", json_object_new_int64((int64_t)e->job_modify_index));
	json_object_object_add(o, "CreateIndex", json_object_new_int64((int64_t)e->create_index));
	json_object_object_add(o, "ModifyIndex", json_object_new_int64((int64_t)e->modify_index));
	json_object_object_add(o, "SnapshotIndex", json_object_new_int64((int64_t)e->snapshot_index));
	json_object_object_add(o, "CreateTime", json_object_new_int64(e->create_time));
	json_object_object_add(o, "ModifyTime", json_object_new_int64(e->modify_time));
	json_object_object_add(o, "QueuedAllocations", e->queued ? json_object_get(e->queued) : NULL);
	json_object_object_add(o, "FailedTGAllocs", e->failed ? json_object_get(e->failed) : NULL);
	json_object_object_add(o, "BlockedEval", json_object_new_string(e->blocked_eval));
	json_object_object_add(o, "PreviousEval", json_object_new_string(e->previous_eval));
	json_object_object_add(o, "StatusDescription", json_object_new_string(e->status_description));
	save(path, o);
	json_object_put(o);
}

void state_save_alloc(struct nl_alloc *a)
{
	char path[2048];
	path_of(path, sizeof path, "allocs", NULL, a->id);
	json_object *o = json_object_new_object();
#define S(k, v) json_object_object_add(o, k, json_object_new_string(v))
#define I(k, v) json_object_object_add(o, k, json_object_new_int64((int64_t)(v)))
	S("ID", a->id);
	S("Namespace", a->ns);
	S("EvalID", a->eval_id);
	S("Name", a->name);
	S("JobID", a->job_id);
	S("JobType", a->job_type);
	S("TaskGroup", a->task_group);
	S("TaskName", a->task_name);
	I("JobVersion", a->job_version);
	I("JobCreateIndex", a->job_create_index);
	S("DesiredStatus", a->desired_status);
	S("DesiredDescription", a->desired_description);
	S("ClientStatus", a->client_status);
	S("ClientDescription", a->client_description);
	S("PreviousAllocation", a->previous_allocation);
	S("NextAllocation", a->next_allocation);
	I("CreateIndex", a->create_index);
	I("ModifyIndex", a->modify_index);
	I("AllocModifyIndex", a->alloc_modify_index);
	I("CreateTime", a->create_time);
	I("ModifyTime", a->modify_time);
	I("HasNetwork", a->has_network);
	S("NetMode", a->net_mode);
	I("CPU", a->cpu);
	I("MemoryMB", a->memory_mb);
	I("MemoryMaxMB", a->memory_max_mb);
	I("DiskMB", a->disk_mb);
	json_object *ports = json_object_new_array();
	for (int i = 0; i < a->nports; i++) {
		json_object *p = json_object_new_object();
		json_object_object_add(p, "Label", json_object_new_string(a->ports[i].label));
		json_object_object_add(p, "Value", json_object_new_int(a->ports[i].value));
		json_object_object_add(p, "To", json_object_new_int(a->ports[i].to));
		json_object_array_add(ports, p);
	}
	json_object_object_add(o, "Ports", ports);
	json_object *t = json_object_new_object();
	json_object_object_add(t, "State", json_object_new_string(a->task.state));
	json_object_object_add(t, "Failed", json_object_new_boolean(a->task.failed));
	json_object_object_add(t, "Restarts", json_object_new_int(a->task.restarts));
	json_object_object_add(t, "LastRestart", json_object_new_int64(a->task.last_restart));
	json_object_object_add(t, "StartedAt", json_object_new_int64(a->task.started_at));
	json_object_object_add(t, "FinishedAt", json_object_new_int64(a->task.finished_at));
	json_object_object_add(t, "Events", a->task.events ? json_object_get(a->task.events) : NULL);
	json_object_object_add(o, "Task", t);
	json_object_object_add(o, "Job", a->job ? json_object_get(a->job) : NULL);
	json_object_object_add(o, "Runtime", a->runtime ? json_object_get(a->runtime) : NULL);
#undef S
#undef I
	save(path, o);
	json_object_put(o);
}

void state_save_agent(void)
{
	char path[2048];
	snprintf(path, sizeof path, "%s/agent.json", st.dir);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "Index", json_object_new_int64((int64_t)st.index));
	json_object_object_add(o, "NodeID", json_object_new_string(st.node_id));
	json_object_object_add(o, "SigningKeyID", json_object_new_string(st.signing_key));
	save(path, o);
	json_object_put(o);
}

static void copy_str(char *dst, size_t cap, json_object *o, const char *key)
{
	snprintf(dst, cap, "%s", js_str(o, key, ""));
}

static void bump_index(uint64_t v)
{
	if (v > st.index)
		st.index = v;
}

static json_object *load_json(const char *path)
{
	size_t len;
	char *s = read_file(path, STATE_MAX_FILE, &len);
	if (!s)
		return NULL;
	json_object *o = json_tokener_parse(s);
	free(s);
	if (!o)
		log_error("state: unreadable file, skipped", "path", path);
	return o;
}

static void load_job(json_object *o)
{
	struct nl_job *j = calloc(1, sizeof *j);
	if (!j)
		return;
	copy_str(j->ns, sizeof j->ns, o, "Namespace");
	copy_str(j->id, sizeof j->id, o, "ID");
	copy_str(j->status, sizeof j->status, o, "Status");
	j->create_index = (uint64_t)js_int(o, "CreateIndex", 0);
	j->modify_index = (uint64_t)js_int(o, "ModifyIndex", 0);
	j->job_modify_index = (uint64_t)js_int(o, "JobModifyIndex", 0);
	j->summary_index = (uint64_t)js_int(o, "SummaryIndex", 0);
	j->version = (uint64_t)js_int(o, "Version", 0);
	j->submit_time = js_int(o, "SubmitTime", 0);
	j->stop = js_bool(o, "Stop");
	j->spec = json_object_get(js_obj(o, "Spec"));
	if (!j->spec || !*j->id) {
		free_job(j);
		return;
	}
	j->fingerprint = jobspec_fingerprint(j->spec);
	bump_index(j->modify_index);
	state_add_job(j);
}

static void load_eval(json_object *o)
{
	struct nl_eval *e = calloc(1, sizeof *e);
	if (!e)
		return;
	copy_str(e->id, sizeof e->id, o, "ID");
	copy_str(e->ns, sizeof e->ns, o, "Namespace");
	copy_str(e->job_id, sizeof e->job_id, o, "JobID");
	copy_str(e->type, sizeof e->type, o, "Type");
	copy_str(e->triggered_by, sizeof e->triggered_by, o, "TriggeredBy");
	copy_str(e->status, sizeof e->status, o, "Status");
	e->priority = (int)js_int(o, "Priority", 50);
	e->job_modify_index = (uint64_t)js_int(o, "JobModifyIndex", 0);
	e->create_index = (uint64_t)js_int(o, "CreateIndex", 0);
	e->modify_index = (uint64_t)js_int(o, "ModifyIndex", 0);
	e->snapshot_index = (uint64_t)js_int(o, "SnapshotIndex", 0);
	e->create_time = js_int(o, "CreateTime", 0);
	e->modify_time = js_int(o, "ModifyTime", 0);
	json_object *q = js_obj(o, "QueuedAllocations");
	e->queued = q ? json_object_get(q) : NULL;
	json_object *f = js_obj(o, "FailedTGAllocs");
	e->failed = f ? json_object_get(f) : NULL;
	copy_str(e->blocked_eval, sizeof e->blocked_eval, o, "BlockedEval");
	copy_str(e->previous_eval, sizeof e->previous_eval, o, "PreviousEval");
	copy_str(e->status_description, sizeof e->status_description, o, "StatusDescription");
	loop_timer_init(&e->timer, NULL, e);
	bump_index(e->modify_index);
	state_add_eval(e);
}

static void load_alloc(json_object *o)
{
	struct nl_alloc *a = calloc(1, sizeof *a);
	if (!a)
		return;
	copy_str(a->id, sizeof a->id, o, "ID");
	copy_str(a->ns, sizeof a->ns, o, "Namespace");
	copy_str(a->eval_id, sizeof a->eval_id, o, "EvalID");
	copy_str(a->name, sizeof a->name, o, "Name");
	copy_str(a->job_id, sizeof a->job_id, o, "JobID");
	copy_str(a->job_type, sizeof a->job_type, o, "JobType");
	copy_str(a->task_group, sizeof a->task_group, o, "TaskGroup");
	copy_str(a->task_name, sizeof a->task_name, o, "TaskName");
	copy_str(a->desired_status, sizeof a->desired_status, o, "DesiredStatus");
	copy_str(a->desired_description, sizeof a->desired_description, o, "DesiredDescription");
	copy_str(a->client_status, sizeof a->client_status, o, "ClientStatus");
	copy_str(a->client_description, sizeof a->client_description, o, "ClientDescription");
	copy_str(a->previous_allocation, sizeof a->previous_allocation, o, "PreviousAllocation");
	copy_str(a->next_allocation, sizeof a->next_allocation, o, "NextAllocation");
	copy_str(a->net_mode, sizeof a->net_mode, o, "NetMode");
	a->job_version = (uint64_t)js_int(o, "JobVersion", 0);
	a->job_create_index = (uint64_t)js_int(o, "JobCreateIndex", 0);
	a->create_index = (uint64_t)js_int(o, "CreateIndex", 0);
	a->modify_index = (uint64_t)js_int(o, "ModifyIndex", 0);
	a->alloc_modify_index = (uint64_t)js_int(o, "AllocModifyIndex", 0);
	a->create_time = js_int(o, "CreateTime", 0);
	a->modify_time = js_int(o, "ModifyTime", 0);
	a->has_network = (int)js_int(o, "HasNetwork", 0);
	a->cpu = (int)js_int(o, "CPU", 0);
	a->memory_mb = (int)js_int(o, "MemoryMB", 0);
	a->memory_max_mb = (int)js_int(o, "MemoryMaxMB", 0);
	a->disk_mb = (int)js_int(o, "DiskMB", 0);
	json_object *ports = js_obj(o, "Ports");
	for (size_t i = 0; ports && i < json_object_array_length(ports) && a->nports < NL_MAX_PORTS; i++) {
		json_object *p = json_object_array_get_idx(ports, i);
		struct nl_port *np = &a->ports[a->nports++];
		copy_str(np->label, sizeof np->label, p, "Label");
		np->value = (int)js_int(p, "Value", 0);
		np->to = (int)js_int(p, "To", 0);
	}
	json_object *t = js_obj(o, "Task");
	copy_str(a->task.state, sizeof a->task.state, t, "State");
	a->task.failed = js_bool(t, "Failed");
	a->task.restarts = (int)js_int(t, "Restarts", 0);
	a->task.last_restart = js_int(t, "LastRestart", 0);
	a->task.started_at = js_int(t, "StartedAt", 0);
	a->task.finished_at = js_int(t, "FinishedAt", 0);
	json_object *ev = js_obj(t, "Events");
	a->task.events = ev ? json_object_get(ev) : NULL;
	json_object *job = js_obj(o, "Job");
	a->job = job ? json_object_get(job) : NULL;
	json_object *rt = js_obj(o, "Runtime");
	a->runtime = rt ? json_object_get(rt) : NULL;
	if (!*a->id) {
		free_alloc(a);
		return;
	}
	bump_index(a->modify_index);
	state_add_alloc(a);
}

static void load_dir(const char *sub, void (*fn)(json_object *), int nested)
{
	char dir[2048];
	snprintf(dir, sizeof dir, "%s/%s", st.dir, sub);
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		if (nested) {
			char subdir[2048];
			snprintf(subdir, sizeof subdir, "%s/%s", sub, de->d_name);
			struct stat sb;
			if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
				load_dir(subdir, fn, 0);
			continue;
		}
		size_t n = strlen(de->d_name);
		if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0) {
			if (n > 4 && strcmp(de->d_name + n - 4, ".tmp") == 0)
				unlink(path); /* half-written leftovers of a crash */
			continue;
		}
		json_object *o = load_json(path);
		if (o) {
			fn(o);
			json_object_put(o);
		}
	}
	closedir(d);
}

int state_open(const char *dir)
{
	char path[2048];
	memset(&st, 0, sizeof st);
	snprintf(st.dir, sizeof st.dir, "%s", dir);
	if (mkdir_p(dir, 0700) < 0)
		return -1;
	static const char *subs[] = {"jobs", "evals", "allocs", "alloc", NULL};
	for (int i = 0; subs[i]; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, subs[i]);
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			return -1;
	}
	snprintf(path, sizeof path, "%s/agent.json", dir);
	json_object *agent = load_json(path);
	if (agent) {
		st.index = (uint64_t)js_int(agent, "Index", 0);
		copy_str(st.node_id, sizeof st.node_id, agent, "NodeID");
		copy_str(st.signing_key, sizeof st.signing_key, agent, "SigningKeyID");
		json_object_put(agent);
	}
	if (!is_uuid(st.node_id))
		uuid_v4(st.node_id);
	if (!is_uuid(st.signing_key))
		uuid_v4(st.signing_key);
	load_dir("jobs", load_job, 1);
	load_dir("evals", load_eval, 0);
	load_dir("allocs", load_alloc, 0);
	state_save_agent();
	return 0;
}

void state_close(void)
{
	for (int i = 0; i < st.njobs; i++)
		free_job(st.jobs[i]);
	for (int i = 0; i < st.nevals; i++)
		free_eval(st.evals[i]);
	for (int i = 0; i < st.nallocs; i++)
		free_alloc(st.allocs[i]);
	free(st.jobs);
	free(st.evals);
	free(st.allocs);
	st.jobs = NULL;
	st.evals = NULL;
	st.allocs = NULL;
	st.njobs = st.nevals = st.nallocs = 0;
}
