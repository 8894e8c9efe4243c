/* render: see render.h. Builders write keys in the order Nomad's codecgen encoder does (the
 * samples' order); json-c keeps insertion order. */
#include "render.h"

#include <stdio.h>
#include <string.h>

#include "jobspec.h"
#include "util.h"

#define NOMAD_VERSION "1.10.5"

static void put(json_object *o, const char *k, json_object *v) { json_object_object_add(o, k, v); }
static void put_s(json_object *o, const char *k, const char *v) { put(o, k, json_object_new_string(v ? v : "")); }
static void put_i(json_object *o, const char *k, long long v) { put(o, k, json_object_new_int64(v)); }
static void put_b(json_object *o, const char *k, int v) { put(o, k, json_object_new_boolean(v)); }
static void put_null(json_object *o, const char *k) { put(o, k, NULL); }
static void put_d(json_object *o, const char *k, double v) { put(o, k, json_object_new_double(v)); }
/* omitempty variants */
static void opt_s(json_object *o, const char *k, const char *v)
{
	if (v && *v)
		put_s(o, k, v);
}
static void opt_i(json_object *o, const char *k, long long v)
{
	if (v)
		put_i(o, k, v);
}

static void put_time(json_object *o, const char *k, int64_t ns)
{
	if (!ns) {
		put_null(o, k);
		return;
	}
	char t[40];
	fmt_time_rfc3339(ns, t);
	put_s(o, k, t);
}

const char *render_string(json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

json_object *render_task_event(const char *type, int64_t time_ns, const char *message, const char *display,
			       const char *const *details)
{
	json_object *e = json_object_new_object(), *d = json_object_new_object();
	long long exit_code = 0, start_delay = 0, kill_timeout = 0;
	int fails = 0;
	const char *restart_reason = "", *driver_error = "", *setup_error = "";
	for (const char *const *p = details; p && p[0] && p[1]; p += 2) {
		put_s(d, p[0], p[1]);
		if (strcmp(p[0], "exit_code") == 0)
			sscanf(p[1], "%lld", &exit_code);
		else if (strcmp(p[0], "start_delay") == 0)
			sscanf(p[1], "%lld", &start_delay);
		else if (strcmp(p[0], "restart_reason") == 0)
			restart_reason = p[1];
		else if (strcmp(p[0], "fails_task") == 0)
			fails = strcmp(p[1], "true") == 0;
		else if (strcmp(p[0], "driver_error") == 0)
			driver_error = p[1];
		else if (strcmp(p[0], "setup_error") == 0)
			setup_error = p[1];
		else if (strcmp(p[0], "kill_timeout") == 0) {
			double sec = 0;
			if (sscanf(p[1], "%lfs", &sec) == 1)
				kill_timeout = (long long)(sec * 1e9);
		}
	}
	put_s(e, "Type", type);
	put_i(e, "Time", time_ns);
	put_s(e, "Message", message);
	put_s(e, "DisplayMessage", display);
	put(e, "Details", d);
	put_b(e, "FailsTask", fails);
	put_s(e, "RestartReason", restart_reason);
	put_s(e, "SetupError", setup_error);
	put_s(e, "DriverError", driver_error);
	put_i(e, "ExitCode", exit_code);
	put_i(e, "Signal", 0);
	put_i(e, "KillTimeout", kill_timeout);
	put_s(e, "KillError", "");
	put_s(e, "KillReason", "");
	put_i(e, "StartDelay", start_delay);
	put_s(e, "DownloadError", "");
	put_s(e, "ValidationError", "");
	put_i(e, "DiskLimit", 0);
	put_s(e, "FailedSibling", "");
	put_s(e, "VaultError", "");
	put_s(e, "TaskSignalReason", "");
	put_s(e, "TaskSignal", "");
	put_s(e, "DriverMessage", "");
	put_s(e, "GenericSource", "");
	return e;
}

json_object *render_eval(const struct nl_eval *e)
{
	json_object *o = json_object_new_object();
	put_s(o, "ID", e->id);
	put_s(o, "Namespace", e->ns);
	opt_i(o, "Priority", e->priority);
	opt_s(o, "Type", e->type);
	opt_s(o, "TriggeredBy", e->triggered_by);
	opt_s(o, "JobID", e->job_id);
	opt_i(o, "JobModifyIndex", (long long)e->job_modify_index);
	opt_s(o, "Status", e->status);
	opt_s(o, "StatusDescription", e->status_description);
	opt_s(o, "PreviousEval", e->previous_eval);
	opt_s(o, "BlockedEval", e->blocked_eval);
	if (e->failed)
		put(o, "FailedTGAllocs", json_object_get(e->failed));
	if (e->queued && strcmp(e->status, "pending") != 0)
		put(o, "QueuedAllocations", json_object_get(e->queued));
	opt_i(o, "SnapshotIndex", (long long)e->snapshot_index);
	opt_i(o, "CreateIndex", (long long)e->create_index);
	opt_i(o, "ModifyIndex", (long long)e->modify_index);
	opt_i(o, "CreateTime", e->create_time);
	opt_i(o, "ModifyTime", e->modify_time);
	return o;
}

json_object *render_task_states(const struct nl_alloc *a)
{
	json_object *o = json_object_new_object(), *t = json_object_new_object();
	put_s(t, "State", a->task.state);
	put_b(t, "Failed", a->task.failed);
	put_i(t, "Restarts", a->task.restarts);
	put_time(t, "LastRestart", a->task.last_restart);
	put_time(t, "StartedAt", a->task.started_at);
	put_time(t, "FinishedAt", a->task.finished_at);
	put(t, "Events", a->task.events ? json_object_get(a->task.events) : json_object_new_array());
	put_s(t, "Paused", "");
	put(o, a->task_name, t);
	return o;
}

static json_object *network_json(const struct nl_alloc *a, int with_values)
{
	/* NetworkResource / Port: struct-wide omitempty */
	json_object *n = json_object_new_object();
	opt_s(n, "Mode", a->net_mode);
	put_s(n, "IP", "127.0.0.1");
	if (a->nports > 0) {
		json_object *ports = json_object_new_array();
		for (int i = 0; i < a->nports; i++) {
			json_object *p = json_object_new_object();
			opt_s(p, "Label", a->ports[i].label);
			if (with_values)
				opt_i(p, "Value", a->ports[i].value);
			opt_i(p, "To", a->ports[i].to);
			put_s(p, "HostNetwork", "default");
			json_object_array_add(ports, p);
		}
		put(n, "DynamicPorts", ports);
	}
	return n;
}

static json_object *networks_or_null(const struct nl_alloc *a)
{
	if (!a->has_network)
		return NULL;
	json_object *l = json_object_new_array();
	json_object_array_add(l, network_json(a, 1));
	return l;
}

static json_object *legacy_resources(long long cpu, long long mem, long long mem_max, long long disk,
				     json_object *networks)
{
	json_object *r = json_object_new_object();
	put_i(r, "CPU", cpu);
	put_i(r, "Cores", 0);
	put_i(r, "MemoryMB", mem);
	put_i(r, "MemoryMaxMB", mem_max);
	put_i(r, "DiskMB", disk);
	put_i(r, "IOPS", 0);
	put(r, "Networks", networks);
	put_null(r, "Devices");
	put_null(r, "NUMA");
	put_i(r, "SecretsMB", 0);
	return r;
}

static json_object *allocated_resources(const struct nl_alloc *a)
{
	json_object *ar = json_object_new_object(), *tasks = json_object_new_object(), *t = json_object_new_object();
	json_object *cpu = json_object_new_object(), *mem = json_object_new_object();
	put_i(cpu, "CpuShares", a->cpu);
	put_null(cpu, "ReservedCores");
	put(t, "Cpu", cpu);
	put_i(mem, "MemoryMB", a->memory_mb);
	put_i(mem, "MemoryMaxMB", a->memory_max_mb);
	put(t, "Memory", mem);
	put_null(t, "Networks");
	put_null(t, "Devices");
	put(tasks, a->task_name, t);
	put(ar, "Tasks", tasks);
	json_object *lc = json_object_new_object();
	put_null(lc, a->task_name);
	put(ar, "TaskLifecycles", lc);
	json_object *shared = json_object_new_object();
	put(shared, "Networks", networks_or_null(a));
	put_i(shared, "DiskMB", a->disk_mb);
	if (a->has_network && a->nports > 0) {
		json_object *ports = json_object_new_array();
		for (int i = 0; i < a->nports; i++) {
			json_object *p = json_object_new_object();
			opt_s(p, "Label", a->ports[i].label);
			opt_i(p, "Value", a->ports[i].value);
			opt_i(p, "To", a->ports[i].to);
			put_s(p, "HostIP", "127.0.0.1");
			json_object_array_add(ports, p);
		}
		put(shared, "Ports", ports);
	} else {
		put_null(shared, "Ports");
	}
	put(ar, "Shared", shared);
	return ar;
}

static json_object *metrics_json(void)
{
	json_object *m = json_object_new_object();
	put_i(m, "NodesEvaluated", 1);
	put_i(m, "NodesFiltered", 0);
	put_i(m, "NodesInPool", 1);
	put_s(m, "NodePool", "default");
	json_object *avail = json_object_new_object();
	put_i(avail, NL_DATACENTER, 1);
	put(m, "NodesAvailable", avail);
	put_null(m, "ClassFiltered");
	put_null(m, "ConstraintFiltered");
	put_i(m, "NodesExhausted", 0);
	put_null(m, "ClassExhausted");
	put_null(m, "DimensionExhausted");
	put_null(m, "QuotaExhausted");
	put_null(m, "ResourcesExhausted");
	put_null(m, "Scores");
	json_object *smd = json_object_new_array(), *s = json_object_new_object(), *sc = json_object_new_object();
	put_s(s, "NodeID", st.node_id);
	put_d(sc, "binpack", 0.0);
	put_d(sc, "job-anti-affinity", 0.0);
	put_d(sc, "node-affinity", 0.0);
	put_d(sc, "node-reschedule-penalty", 0.0);
	put(s, "Scores", sc);
	put_d(s, "NormScore", 0.0);
	json_object_array_add(smd, s);
	put(m, "ScoreMetaData", smd);
	put_i(m, "AllocationTime", 0);
	put_i(m, "CoalescedFailures", 0);
	return m;
}

json_object *render_alloc(const struct nl_alloc *a, int with_job)
{
	json_object *o = json_object_new_object();
	put_s(o, "ID", a->id);
	put_s(o, "Namespace", a->ns);
	opt_s(o, "EvalID", a->eval_id);
	opt_s(o, "Name", a->name);
	put_s(o, "NodeID", st.node_id);
	put_s(o, "NodeName", st.node_name);
	opt_s(o, "JobID", a->job_id);
	if (with_job && a->job)
		put(o, "Job", json_object_get(a->job));
	opt_s(o, "TaskGroup", a->task_group);
	long long mem_max = a->memory_max_mb ? a->memory_max_mb : a->memory_mb;
	put(o, "Resources", legacy_resources(a->cpu, a->memory_mb, mem_max, a->disk_mb, networks_or_null(a)));
	put(o, "SharedResources", legacy_resources(0, 0, 0, a->disk_mb, networks_or_null(a)));
	json_object *tr = json_object_new_object();
	put(tr, a->task_name, legacy_resources(a->cpu, a->memory_mb, a->memory_max_mb, 0, NULL));
	put(o, "TaskResources", tr);
	put(o, "AllocatedResources", allocated_resources(a));
	put(o, "Metrics", metrics_json());
	opt_s(o, "DesiredStatus", a->desired_status);
	opt_s(o, "DesiredDescription", a->desired_description);
	opt_s(o, "ClientStatus", a->client_status);
	opt_s(o, "ClientDescription", a->client_description);
	if (a->task.state[0])
		put(o, "TaskStates", render_task_states(a));
	opt_s(o, "PreviousAllocation", a->previous_allocation);
	opt_s(o, "NextAllocation", a->next_allocation);
	if (a->has_network && a->task.state[0]) {
		json_object *ns = json_object_new_object();
		put_s(ns, "InterfaceName", strcmp(a->net_mode, "host") == 0 ? "" : "lo");
		put_s(ns, "Address", "127.0.0.1");
		put_s(ns, "AddressIPv6", "");
		put_null(ns, "DNS");
		put(o, "NetworkStatus", ns);
	}
	put_s(o, "SigningKeyID", st.signing_key);
	opt_i(o, "CreateIndex", (long long)a->create_index);
	opt_i(o, "ModifyIndex", (long long)a->modify_index);
	opt_i(o, "AllocModifyIndex", (long long)a->alloc_modify_index);
	opt_i(o, "CreateTime", a->create_time);
	opt_i(o, "ModifyTime", a->modify_time);
	return o;
}

json_object *render_alloc_stub(const struct nl_alloc *a, int with_resources)
{
	json_object *o = json_object_new_object();
	put_s(o, "ID", a->id);
	put_s(o, "EvalID", a->eval_id);
	put_s(o, "Name", a->name);
	put_s(o, "Namespace", a->ns);
	put_s(o, "NodeID", st.node_id);
	put_s(o, "NodeName", st.node_name);
	put_s(o, "JobID", a->job_id);
	put_s(o, "JobType", a->job_type);
	put_i(o, "JobVersion", (long long)a->job_version);
	put_s(o, "TaskGroup", a->task_group);
	put(o, "AllocatedResources", with_resources ? allocated_resources(a) : NULL);
	put_s(o, "DesiredStatus", a->desired_status);
	put_s(o, "DesiredDescription", a->desired_description);
	put_s(o, "ClientStatus", a->client_status);
	put_s(o, "ClientDescription", a->client_description);
	json_object *dt = json_object_new_object();
	put_null(dt, "Migrate");
	put_null(dt, "Reschedule");
	put_null(dt, "ForceReschedule");
	put_null(dt, "NoShutdownDelay");
	put(o, "DesiredTransition", dt);
	put(o, "TaskStates", a->task.state[0] ? render_task_states(a) : NULL);
	put_null(o, "DeploymentStatus");
	put_s(o, "FollowupEvalID", "");
	put_s(o, "NextAllocation", a->next_allocation);
	put_null(o, "RescheduleTracker");
	put_null(o, "PreemptedAllocations");
	put_s(o, "PreemptedByAllocation", "");
	put_i(o, "CreateIndex", (long long)a->create_index);
	put_i(o, "ModifyIndex", (long long)a->modify_index);
	put_i(o, "CreateTime", a->create_time);
	put_i(o, "ModifyTime", a->modify_time);
	return o;
}

json_object *render_job_summary(const struct nl_job *j)
{
	json_object *o = json_object_new_object(), *sum = json_object_new_object();
	put_s(o, "JobID", j->id);
	put_s(o, "Namespace", j->ns);
	json_object *groups = js_obj(j->spec, "TaskGroups");
	for (size_t g = 0; groups && g < json_object_array_length(groups); g++) {
		const char *name = js_str(json_object_array_get_idx(groups, g), "Name", "");
		long long running = 0, starting = 0, complete = 0, failed = 0, lost = 0;
		for (int i = 0; i < st.nallocs; i++) {
			struct nl_alloc *a = st.allocs[i];
			if (strcmp(a->job_id, j->id) || strcmp(a->ns, j->ns) || a->job_create_index != j->create_index ||
			    strcmp(a->task_group, name))
				continue;
			if (strcmp(a->client_status, "running") == 0)
				running++;
			else if (strcmp(a->client_status, "pending") == 0)
				starting++;
			else if (strcmp(a->client_status, "complete") == 0)
				complete++;
			else if (strcmp(a->client_status, "failed") == 0)
				failed++;
			else if (strcmp(a->client_status, "lost") == 0)
				lost++;
		}
		json_object *s = json_object_new_object();
		put_i(s, "Queued", 0);
		put_i(s, "Complete", complete);
		put_i(s, "Failed", failed);
		put_i(s, "Running", running);
		put_i(s, "Starting", starting);
		put_i(s, "Lost", lost);
		put_i(s, "Unknown", 0);
		put(sum, name, s);
	}
	put(o, "Summary", sum);
	json_object *ch = json_object_new_object();
	put_i(ch, "Pending", 0);
	put_i(ch, "Running", 0);
	put_i(ch, "Dead", 0);
	put(o, "Children", ch);
	put_i(o, "CreateIndex", (long long)j->create_index);
	put_i(o, "ModifyIndex", (long long)(j->summary_index ? j->summary_index : j->create_index));
	return o;
}

json_object *render_job_stub(const struct nl_job *j, int with_meta)
{
	json_object *o = json_object_new_object(), *s = j->spec;
	put_s(o, "ID", j->id);
	put_s(o, "ParentID", js_str(s, "ParentID", ""));
	put_s(o, "Name", js_str(s, "Name", ""));
	put_s(o, "Namespace", j->ns);
	json_object *dcs = js_obj(s, "Datacenters");
	put(o, "Datacenters", dcs ? json_object_get(dcs) : NULL);
	put_s(o, "NodePool", js_str(s, "NodePool", "default"));
	json_object *mr = js_obj(s, "Multiregion");
	put(o, "Multiregion", mr ? json_object_get(mr) : NULL);
	put_s(o, "Type", js_str(s, "Type", ""));
	put_i(o, "Priority", js_int(s, "Priority", 50));
	put_b(o, "Periodic", js_obj(s, "Periodic") != NULL);
	put_b(o, "ParameterizedJob", js_obj(s, "ParameterizedJob") != NULL);
	put_b(o, "Stop", j->stop);
	put_s(o, "Status", j->status);
	put_s(o, "StatusDescription", "");
	put(o, "JobSummary", render_job_summary(j));
	put_i(o, "CreateIndex", (long long)j->create_index);
	put_i(o, "ModifyIndex", (long long)j->modify_index);
	put_i(o, "JobModifyIndex", (long long)j->job_modify_index);
	put_i(o, "SubmitTime", j->submit_time);
	json_object *meta = js_obj(s, "Meta");
	put(o, "Meta", with_meta && meta ? json_object_get(meta) : NULL);
	return o;
}

static json_object *zero_resources(void) { return legacy_resources(0, 0, 0, 0, NULL); }

json_object *render_node(const struct render_node_info *n)
{
	char buf[64], now[40];
	json_object *o = json_object_new_object(), *attrs = json_object_new_object();
	fmt_time_rfc3339(now_ns(), now);
	put_s(attrs, "cpu.arch", "amd64");
	snprintf(buf, sizeof buf, "%d", n->cpus);
	put_s(attrs, "cpu.numcores", buf);
	snprintf(buf, sizeof buf, "%lld", n->cpu_mhz_total);
	put_s(attrs, "cpu.totalcompute", buf);
	put_s(attrs, "driver.docker", "1");
	put_s(attrs, "driver.exec", "1");
	put_s(attrs, "driver.raw_exec", "1");
	put_s(attrs, "kernel.name", "linux");
	snprintf(buf, sizeof buf, "%lld", n->memory_mb * 1024 * 1024);
	put_s(attrs, "memory.totalbytes", buf);
	put_s(attrs, "nomad.advertise.address", n->http_addr);
	put_s(attrs, "nomad.service_discovery", "true");
	put_s(attrs, "nomad.version", NOMAD_VERSION);
	put_s(attrs, "os.name", "linux");
	put_s(attrs, "os.signals",
	      "SIGABRT,SIGALRM,SIGBUS,SIGCHLD,SIGCONT,SIGFPE,SIGHUP,SIGILL,SIGINT,SIGIO,SIGIOT,SIGKILL,SIGPIPE,"
	      "SIGPROF,SIGQUIT,SIGSEGV,SIGSTOP,SIGSYS,SIGTERM,SIGTRAP,SIGTSTP,SIGTTIN,SIGTTOU,SIGURG,SIGUSR1,"
	      "SIGUSR2,SIGWINCH,SIGXCPU,SIGXFSZ");
	put_s(attrs, "unique.hostname", n->hostname);
	put_s(attrs, "unique.network.ip-address", "127.0.0.1");
	put(o, "Attributes", attrs);
	put(o, "CSIControllerPlugins", json_object_new_object());
	put(o, "CSINodePlugins", json_object_new_object());
	put_s(o, "CgroupParent", "nomad-local");
	put_s(o, "ComputedClass", "v1:0");
	put_i(o, "CreateIndex", 1);
	put_s(o, "Datacenter", NL_DATACENTER);
	put_b(o, "Drain", 0);
	put_null(o, "DrainStrategy");
	json_object *drivers = json_object_new_object();
	static const char *dnames[] = {"docker", "exec", "raw_exec"};
	for (int i = 0; i < 3; i++) {
		json_object *d = json_object_new_object(), *da = json_object_new_object();
		snprintf(buf, sizeof buf, "driver.%s", dnames[i]);
		put_s(da, buf, "true");
		put(d, "Attributes", da);
		put_b(d, "Detected", 1);
		put_b(d, "Healthy", 1);
		put_s(d, "HealthDescription", "Healthy");
		put_s(d, "UpdateTime", now);
		put(drivers, dnames[i], d);
	}
	put(o, "Drivers", drivers);
	json_object *events = json_object_new_array(), *ev = json_object_new_object();
	put_s(ev, "Message", "Node registered");
	put_s(ev, "Subsystem", "Cluster");
	put_null(ev, "Details");
	put_s(ev, "Timestamp", now);
	put_i(ev, "CreateIndex", 1);
	json_object_array_add(events, ev);
	put(o, "Events", events);
	put_b(o, "GCVolumesOnNodeGC", 0);
	put_s(o, "HTTPAddr", n->http_addr);
	put_null(o, "HostNetworks");
	put(o, "HostVolumes", json_object_new_object());
	put_s(o, "ID", st.node_id);
	put_i(o, "LastAllocUpdateIndex", 0);
	put_null(o, "LastDrain");
	put_i(o, "LastMissedHeartbeatIndex", 0);
	put(o, "Links", json_object_new_object());
	put(o, "Meta", json_object_new_object());
	put_i(o, "ModifyIndex", 1);
	put_s(o, "Name", n->hostname);
	put_s(o, "NodeClass", "");
	put_i(o, "NodeMaxAllocs", 0);
	put_s(o, "NodePool", "default");
	json_object *nr = json_object_new_object(), *cpu = json_object_new_object(), *cores = json_object_new_array();
	put_i(cpu, "CpuShares", n->cpu_mhz_total);
	put_i(cpu, "TotalCpuCores", n->cpus);
	for (int i = 0; i < n->cpus; i++)
		json_object_array_add(cores, json_object_new_int(i));
	put(cpu, "ReservableCpuCores", cores);
	put(nr, "Cpu", cpu);
	json_object *proc = json_object_new_object(), *topo = json_object_new_object(), *tcores = json_object_new_array();
	for (int i = 0; i < n->cpus; i++) {
		json_object *core = json_object_new_object();
		put_i(core, "BaseSpeed", n->cpus ? n->cpu_mhz_total / n->cpus : 0);
		put_b(core, "Disable", 0);
		put_b(core, "Grade", 1);
		put_i(core, "GuessSpeed", 0);
		put_i(core, "ID", i);
		put_i(core, "MaxSpeed", 0);
		put_i(core, "NodeID", 0);
		put_i(core, "SocketID", 0);
		json_object_array_add(tcores, core);
	}
	put(topo, "Cores", tcores);
	json_object *dist = json_object_new_array(), *nodes = json_object_new_array();
	json_object_array_add(dist, json_object_new_string("Cg=="));
	json_object_array_add(nodes, json_object_new_int(0));
	put(topo, "Distances", dist);
	put(topo, "Nodes", nodes);
	put_i(topo, "OverrideTotalCompute", 0);
	put_i(topo, "OverrideWitholdCompute", 0);
	put(proc, "Topology", topo);
	put(nr, "Processors", proc);
	json_object *mem = json_object_new_object();
	put_i(mem, "MemoryMB", n->memory_mb);
	put(nr, "Memory", mem);
	json_object *disk = json_object_new_object();
	put_i(disk, "DiskMB", 0);
	put(nr, "Disk", disk);
	put_null(nr, "Devices");
	put_null(nr, "NodeNetworks");
	put_null(nr, "Networks");
	put_i(nr, "MinDynamicPort", 20000);
	put_i(nr, "MaxDynamicPort", 32000);
	put(o, "NodeResources", nr);
	put(o, "Reserved", zero_resources());
	json_object *rr = json_object_new_object(), *rc = json_object_new_object(), *rm = json_object_new_object(),
		    *rd = json_object_new_object(), *rn = json_object_new_object();
	put_i(rc, "CpuShares", 0);
	put_null(rc, "ReservedCpuCores");
	put(rr, "Cpu", rc);
	put_i(rm, "MemoryMB", 0);
	put(rr, "Memory", rm);
	put_i(rd, "DiskMB", 0);
	put(rr, "Disk", rd);
	put_s(rn, "ReservedHostPorts", "");
	put(rr, "Networks", rn);
	put(o, "ReservedResources", rr);
	put(o, "Resources", zero_resources());
	put_s(o, "SchedulingEligibility", "eligible");
	put_s(o, "SecretID", "");
	put_s(o, "Status", "ready");
	put_s(o, "StatusDescription", "");
	put_i(o, "StatusUpdatedAt", now_ns() / 1000000000LL);
	put_b(o, "TLSEnabled", 0);
	return o;
}

json_object *render_node_stub(const struct render_node_info *n)
{
	json_object *o = json_object_new_object();
	put_s(o, "Address", "127.0.0.1");
	put_s(o, "ID", st.node_id);
	put(o, "Attributes", NULL);
	put_s(o, "Datacenter", NL_DATACENTER);
	put_s(o, "Name", n->hostname);
	put_s(o, "NodeClass", "");
	put_s(o, "NodePool", "default");
	put_s(o, "Version", NOMAD_VERSION);
	put_b(o, "Drain", 0);
	put_s(o, "SchedulingEligibility", "eligible");
	put_s(o, "Status", "ready");
	put_s(o, "StatusDescription", "");
	put(o, "Drivers", NULL);
	put(o, "NodeResources", NULL);
	put(o, "ReservedResources", NULL);
	put(o, "LastDrain", NULL);
	put_i(o, "CreateIndex", 1);
	put_i(o, "ModifyIndex", 1);
	return o;
}

json_object *render_agent_self(const struct render_node_info *n, int acl_enabled)
{
	json_object *o = json_object_new_object(), *cfg = json_object_new_object();
	put_s(cfg, "Region", "global");
	put_s(cfg, "Datacenter", NL_DATACENTER);
	put_s(cfg, "NodeName", n->hostname);
	json_object *ver = json_object_new_object();
	put_s(ver, "Revision", "");
	put_s(ver, "Version", NOMAD_VERSION);
	put_s(ver, "VersionPrerelease", "");
	put_s(ver, "VersionMetadata", "nomad-local");
	put(cfg, "Version", ver);
	json_object *acl = json_object_new_object();
	put_b(acl, "Enabled", acl_enabled);
	put(cfg, "ACL", acl);
	json_object *client = json_object_new_object(), *server = json_object_new_object();
	put_b(client, "Enabled", 1);
	put_b(server, "Enabled", 1);
	put(cfg, "Client", client);
	put(cfg, "Server", server);
	put(o, "config", cfg);
	json_object *member = json_object_new_object(), *tags = json_object_new_object();
	char name[300];
	snprintf(name, sizeof name, "%s.global", n->hostname);
	put_s(member, "Name", name);
	put_s(member, "Addr", "127.0.0.1");
	put_i(member, "Port", 4648);
	put_s(tags, "region", "global");
	put_s(tags, "dc", NL_DATACENTER);
	put_s(tags, "role", "nomad");
	put_s(tags, "build", NOMAD_VERSION);
	put(member, "Tags", tags);
	put_s(member, "Status", "alive");
	put(o, "member", member);
	json_object *stats = json_object_new_object(), *nomad = json_object_new_object();
	put_s(nomad, "server", "true");
	put_s(nomad, "leader", "true");
	put(stats, "nomad", nomad);
	put(o, "stats", stats);
	return o;
}
