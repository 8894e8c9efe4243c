/* task: see task.h. Each allocation that runs here has a struct task_rt (a->rt) holding its
 * sandbox, the restart bookkeeping and its timers; a->runtime is the persisted copy. */
#include "task.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobspec.h"
#include "log.h"
#include "portfwd.h"
#include "render.h"
#include "sched.h"
#include "util.h"

#define NS_SEC 1000000000LL
#define TASK_MAX_ENV 512

struct task_rt {
	struct nl_alloc *a;
	struct sandbox sb;
	int sb_active;     /* a sandbox exists (starting or running) */
	int received;      /* "Received" reported */
	int stopping;      /* killing because the server wants it stopped */
	unsigned oom_ends; /* times the task ended OOM-killed */
	int64_t interval_start;
	int interval_count;
	struct loop_timer restart_timer, kill_timer;
	char **env;
};

static const struct sandbox_ops task_sandbox_ops;
static void on_restart_timer(struct loop_timer *t);
static void on_kill_timer(struct loop_timer *t);

/* ---- small helpers ---- */

static struct task_rt *rt_of(struct nl_alloc *a)
{
	if (!a->rt) {
		struct task_rt *rt = calloc(1, sizeof *rt);
		if (!rt) {
			log_error("task: out of memory");
			abort();
		}
		rt->a = a;
		rt->sb.info_w.fd = rt->sb.oom_w.fd = rt->sb.pidfd_w.fd = -1;
		for (int i = 0; i < 5; i++)
			rt->sb.ns_fd[i] = -1;
		rt->sb.root_fd = -1;
		loop_timer_init(&rt->restart_timer, on_restart_timer, a);
		loop_timer_init(&rt->kill_timer, on_kill_timer, a);
		a->rt = rt;
	}
	return a->rt;
}

static json_object *group_of(struct nl_alloc *a)
{
	json_object *groups = js_obj(a->job, "TaskGroups");
	for (size_t i = 0; groups && i < json_object_array_length(groups); i++) {
		json_object *g = json_object_array_get_idx(groups, i);
		if (strcmp(js_str(g, "Name", ""), a->task_group) == 0)
			return g;
	}
	return NULL;
}

static json_object *task_of(struct nl_alloc *a)
{
	json_object *tasks = js_obj(group_of(a), "Tasks");
	for (size_t i = 0; tasks && i < json_object_array_length(tasks); i++) {
		json_object *t = json_object_array_get_idx(tasks, i);
		if (strcmp(js_str(t, "Name", ""), a->task_name) == 0)
			return t;
	}
	return NULL;
}

static void event(struct nl_alloc *a, const char *type, const char *msg, const char *display,
		  const char *const *details)
{
	alloc_add_event(a, render_task_event(type, now_ns(), msg, display, details));
}

static void persist_runtime(struct nl_alloc *a)
{
	struct task_rt *rt = a->rt;
	json_object *o = json_object_new_object();
	if (rt && rt->sb_active)
		json_object_object_add(o, "Sandbox", sandbox_to_json(&rt->sb));
	if (rt) {
		json_object_object_add(o, "IntervalStart", json_object_new_int64(rt->interval_start));
		json_object_object_add(o, "IntervalCount", json_object_new_int(rt->interval_count));
		json_object_object_add(o, "Received", json_object_new_boolean(rt->received));
	}
	json_object_put(a->runtime);
	a->runtime = o;
}

static void set_client(struct nl_alloc *a, const char *status, const char *desc)
{
	snprintf(a->client_status, sizeof a->client_status, "%s", status);
	snprintf(a->client_description, sizeof a->client_description, "%s", desc);
}

static void update(struct nl_alloc *a)
{
	persist_runtime(a);
	sched_alloc_update(a, "AllocationUpdated");
}

/* ---- environment ---- */

static void env_add(char **env, int *n, const char *k, const char *v)
{
	if (*n >= TASK_MAX_ENV - 1)
		return;
	for (int i = 0; i < *n; i++) {
		size_t kl = strlen(k);
		if (strncmp(env[i], k, kl) == 0 && env[i][kl] == '=') {
			free(env[i]);
			if (asprintf(&env[i], "%s=%s", k, v) < 0)
				env[i] = strdup("");
			return;
		}
	}
	if (asprintf(&env[*n], "%s=%s", k, v) >= 0)
		(*n)++;
	env[*n] = NULL;
}

static void free_env(char **env)
{
	for (int i = 0; env && env[i]; i++)
		free(env[i]);
	free(env);
}

static void env_meta(char **env, int *n, json_object *meta)
{
	if (!meta || !json_object_is_type(meta, json_type_object))
		return;
	json_object_object_foreach(meta, k, v)
	{
		char key[300];
		snprintf(key, sizeof key, "NOMAD_META_%s", k);
		for (char *p = key; *p; p++)
			if (*p == '.' || *p == '-')
				*p = '_';
		env_add(env, n, key, v ? json_object_get_string(v) : "");
	}
}

static char **build_env(struct nl_alloc *a)
{
	char **env = calloc(TASK_MAX_ENV, sizeof *env);
	int n = 0;
	char buf[64], host[16];
	if (!env)
		return NULL;
	int hl = 0;
	for (const char *q = a->id; *q && hl < 12; q++)
		if (*q != '-')
			host[hl++] = *q;
	host[hl] = '\0';
	json_object *task = task_of(a), *group = group_of(a);
	env_add(env, &n, "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	env_add(env, &n, "HOSTNAME", host);
	env_add(env, &n, "HOME", "/root");
	env_add(env, &n, "NOMAD_ALLOC_DIR", "/alloc");
	env_add(env, &n, "NOMAD_TASK_DIR", "/local");
	env_add(env, &n, "NOMAD_SECRETS_DIR", "/secrets");
	env_add(env, &n, "NOMAD_ALLOC_ID", a->id);
	env_add(env, &n, "NOMAD_ALLOC_NAME", a->name);
	env_add(env, &n, "NOMAD_ALLOC_INDEX", "0");
	snprintf(buf, sizeof buf, "%.8s", a->id);
	env_add(env, &n, "NOMAD_SHORT_ALLOC_ID", buf);
	snprintf(buf, sizeof buf, "%d", a->cpu);
	env_add(env, &n, "NOMAD_CPU_LIMIT", buf);
	snprintf(buf, sizeof buf, "%d", a->memory_mb);
	env_add(env, &n, "NOMAD_MEMORY_LIMIT", buf);
	if (a->memory_max_mb) {
		snprintf(buf, sizeof buf, "%d", a->memory_max_mb);
		env_add(env, &n, "NOMAD_MEMORY_MAX_LIMIT", buf);
	}
	env_add(env, &n, "NOMAD_DC", NL_DATACENTER);
	env_add(env, &n, "NOMAD_GROUP_NAME", a->task_group);
	env_add(env, &n, "NOMAD_JOB_ID", a->job_id);
	env_add(env, &n, "NOMAD_JOB_NAME", js_str(a->job, "Name", a->job_id));
	env_add(env, &n, "NOMAD_NAMESPACE", a->ns);
	env_add(env, &n, "NOMAD_NODE_ID", st.node_id);
	env_add(env, &n, "NOMAD_NODE_NAME", st.node_name);
	env_add(env, &n, "NOMAD_REGION", "global");
	env_add(env, &n, "NOMAD_TASK_NAME", a->task_name);
	for (int i = 0; i < a->nports; i++) {
		char k[128], v[64];
		snprintf(k, sizeof k, "NOMAD_PORT_%s", a->ports[i].label);
		snprintf(v, sizeof v, "%d", a->ports[i].to ? a->ports[i].to : a->ports[i].value);
		env_add(env, &n, k, v);
		snprintf(k, sizeof k, "NOMAD_ALLOC_PORT_%s", a->ports[i].label);
		env_add(env, &n, k, v);
		snprintf(k, sizeof k, "NOMAD_IP_%s", a->ports[i].label);
		env_add(env, &n, k, "127.0.0.1");
		snprintf(k, sizeof k, "NOMAD_ADDR_%s", a->ports[i].label);
		snprintf(v, sizeof v, "127.0.0.1:%d", a->ports[i].to ? a->ports[i].to : a->ports[i].value);
		env_add(env, &n, k, v);
		snprintf(k, sizeof k, "NOMAD_HOST_PORT_%s", a->ports[i].label);
		snprintf(v, sizeof v, "%d", a->ports[i].value);
		env_add(env, &n, k, v);
		snprintf(k, sizeof k, "NOMAD_HOST_IP_%s", a->ports[i].label);
		env_add(env, &n, k, "127.0.0.1");
		snprintf(k, sizeof k, "NOMAD_HOST_ADDR_%s", a->ports[i].label);
		snprintf(v, sizeof v, "127.0.0.1:%d", a->ports[i].value);
		env_add(env, &n, k, v);
	}
	env_meta(env, &n, js_obj(a->job, "Meta"));
	env_meta(env, &n, js_obj(group, "Meta"));
	env_meta(env, &n, js_obj(task, "Meta"));
	json_object *tenv = js_obj(task, "Env");
	if (tenv && json_object_is_type(tenv, json_type_object)) {
		json_object_object_foreach(tenv, k, v)
		{
			env_add(env, &n, k, v ? json_object_get_string(v) : "");
		}
	}
	return env;
}

char **task_env(struct nl_alloc *a)
{
	struct task_rt *rt = rt_of(a);
	if (!rt->env)
		rt->env = build_env(a);
	return rt->env;
}

/* ---- starting ---- */

static void driver_failure(struct nl_alloc *a, const char *msg)
{
	const char *details[] = {"driver_error", msg, NULL};
	log_error("task failed to start", "alloc_id", a->id, "error", msg);
	event(a, "Driver Failure", "", msg, details);
}

static void start_sandbox(struct nl_alloc *a)
{
	struct task_rt *rt = rt_of(a);
	json_object *task = task_of(a), *cfgj = js_obj(task, "Config");
	char alloc_dir[1200], err[512];
	char *argv[256];
	int argc = 0;
	snprintf(alloc_dir, sizeof alloc_dir, "%s/alloc/%s", st.dir, a->id);
	const char *command = js_str(cfgj, "command", "");
	if (!*command) {
		/* an image's default command is unknown here: keep the container alive */
		argv[argc++] = "sleep";
		argv[argc++] = "infinity";
	} else {
		argv[argc++] = (char *)command;
		json_object *args = js_obj(cfgj, "args");
		for (size_t i = 0; args && json_object_is_type(args, json_type_array) &&
				   i < json_object_array_length(args) && argc < 254;
		     i++) {
			json_object *v = json_object_array_get_idx(args, i);
			argv[argc++] = (char *)(v ? json_object_get_string(v) : "");
		}
	}
	argv[argc] = NULL;
	long long mem = a->memory_max_mb > 0 ? a->memory_max_mb : a->memory_mb;
	struct sandbox_cfg cfg = {
		.alloc_id = a->id,
		.alloc_dir = alloc_dir,
		.image = js_str(cfgj, "image", NULL),
		.argv = argv,
		.envp = task_env(a),
		.share_host_net = a->has_network && strcmp(a->net_mode, "host") == 0,
		/* a group network (bridge, as Poseidon's networkAccess asks) gives outbound network
		 * unless the task's Docker config says network_mode "none" */
		.user_net = a->has_network && strcmp(a->net_mode, "none") != 0 &&
			    strcmp(js_str(cfgj, "network_mode", ""), "none") != 0,
		.memory_mb = mem,
		.cpu_mhz = a->cpu,
		.pids_max = js_int(cfgj, "pids_limit", 0),
		.task_name = a->task_name,
	};
	if (sandbox_start(&rt->sb, &cfg, &task_sandbox_ops, a, err, sizeof err) < 0) {
		rt->sb_active = 0;
		driver_failure(a, err);
		/* treated like a task that exited non-zero: the restart policy decides */
		a->task.finished_at = 0;
		rt->sb.exited = 1;
		task_sandbox_ops.exited(&rt->sb, -1, 0, a);
		return;
	}
	rt->sb_active = 1;
	persist_runtime(a);
	state_save_alloc(a);
}

static void go_running(struct nl_alloc *a)
{
	struct task_rt *rt = a->rt;
	if (!rt->received || !rt->sb.ready || rt->sb.exited || strcmp(a->task.state, "running") == 0)
		return;
	if (strcmp(a->desired_status, "run") != 0)
		return;
	snprintf(a->task.state, sizeof a->task.state, "running");
	a->task.started_at = now_ns();
	event(a, "Started", "", "Task started by client", NULL);
	set_client(a, "running", "Tasks are running");
	portfwd_start(a, &rt->sb);
	log_info("allocation running", "alloc_id", a->id, "job_id", a->job_id);
	update(a);
}

void task_place(struct nl_alloc *a)
{
	struct task_rt *rt = rt_of(a);
	rt->interval_start = now_ns();
	start_sandbox(a);
}

void task_received(struct nl_alloc *a)
{
	struct task_rt *rt = rt_of(a);
	if (rt->received || alloc_terminal(a))
		return;
	rt->received = 1;
	if (!a->task.state[0])
		snprintf(a->task.state, sizeof a->task.state, "pending");
	event(a, "Received", "", "Task received by client", NULL);
	const char *d[] = {"message", "Building Task Directory", NULL};
	event(a, "Task Setup", "Building Task Directory", "Building Task Directory", d);
	set_client(a, "pending", "No tasks have started");
	update(a);
	go_running(a);
}

/* ---- exits and restarts ---- */

static void finish_dead(struct nl_alloc *a, int failed)
{
	struct task_rt *rt = a->rt;
	portfwd_stop(a);
	snprintf(a->task.state, sizeof a->task.state, "dead");
	a->task.failed = failed;
	a->task.finished_at = now_ns();
	if (failed)
		set_client(a, "failed", "Failed tasks");
	else
		set_client(a, "complete", "All tasks have completed");
	if (rt) {
		rt->sb_active = 0;
		loop_timer_stop(&rt->restart_timer);
		loop_timer_stop(&rt->kill_timer);
	}
	update(a);
	/* the allocation's files on the host (logs, status) are not needed once it is over; what the
	 * runner wrote was in its tmpfs and went with its sandbox */
	char dir[1200];
	snprintf(dir, sizeof dir, "%s/alloc/%s", st.dir, a->id);
	if (rm_rf(dir) < 0)
		log_warn("allocation directory not removed", "alloc_id", a->id, "path", dir, "error", strerror(errno));
}

static void on_restart_timer(struct loop_timer *t)
{
	struct nl_alloc *a = t->arg;
	if (alloc_terminal(a))
		return;
	/* a new container: its sandbox gets a fresh tmpfs for /workspace and /tmp, like a recreated
	 * Docker container */
	start_sandbox(a);
}

static void terminated_event(struct nl_alloc *a, int code, int oom, int killed_by_us)
{
	char cs[16], disp[256], msg[128] = "";
	snprintf(cs, sizeof cs, "%d", code);
	int docker = strcmp(js_str(task_of(a), "Driver", ""), "docker") == 0;
	if (oom)
		snprintf(msg, sizeof msg, "OOM Killed");
	else if (code != 0 && docker)
		snprintf(msg, sizeof msg, "Docker container exited with non-zero exit code: %d", code);
	if (*msg)
		snprintf(disp, sizeof disp, "Exit Code: %d, Exit Message: \"%s\"", code, msg);
	else
		snprintf(disp, sizeof disp, "Exit Code: %d", code);
	const char *details[] = {"exit_code", cs, "signal", "0", "oom_killed", oom ? "true" : "false",
				 "exit_message", msg, NULL};
	(void)killed_by_us;
	event(a, "Terminated", msg, disp, details);
}

static void restart_or_fail(struct nl_alloc *a, int code, int oom)
{
	struct task_rt *rt = a->rt;
	json_object *rp = js_obj(task_of(a), "RestartPolicy");
	if (!rp)
		rp = js_obj(group_of(a), "RestartPolicy");
	long long attempts = js_int(rp, "Attempts", 0), interval = js_int(rp, "Interval", 0),
		  delay = js_int(rp, "Delay", 15 * NS_SEC);
	const char *mode = js_str(rp, "Mode", "fail");
	int batch = strcmp(a->job_type, "batch") == 0 || strcmp(a->job_type, "sysbatch") == 0;
	if (batch && code == 0 && !oom) {
		finish_dead(a, 0);
		return;
	}
	int64_t now = now_ns();
	if (now - rt->interval_start > interval) {
		rt->interval_start = now;
		rt->interval_count = 0;
	}
	char reason[256], ivs[40], delays[40], ds[40];
	fmt_go_duration(interval, ivs);
	long long wait = delay;
	const char *why = "Restart within policy";
	if (rt->interval_count >= attempts) {
		snprintf(reason, sizeof reason, "Exceeded allowed attempts %lld in interval %s and mode is \"%s\"",
			 attempts, ivs, mode);
		if (strcmp(mode, "delay") != 0) {
			const char *details[] = {"fails_task", "true", "restart_reason", reason, NULL};
			event(a, "Not Restarting", "", reason, details);
			log_warn("task failed, not restarting", "alloc_id", a->id, "reason", reason);
			finish_dead(a, 1);
			return;
		}
		wait = rt->interval_start + interval - now;
		if (wait < delay)
			wait = delay;
		rt->interval_start = now + wait;
		rt->interval_count = 0;
		why = reason;
	}
	rt->interval_count++;
	a->task.restarts++;
	a->task.last_restart = now;
	snprintf(ds, sizeof ds, "%lld", wait);
	fmt_go_duration(wait, delays);
	char disp[300];
	snprintf(disp, sizeof disp, "Task restarting in %s", delays);
	const char *details[] = {"start_delay", ds, "restart_reason", why, NULL};
	event(a, "Restarting", "", disp, details);
	snprintf(a->task.state, sizeof a->task.state, "pending");
	set_client(a, "pending", "No tasks have started");
	rt->sb_active = 0;
	loop_timer_start(&rt->restart_timer, wait / 1000000);
	log_info("task restarting", "alloc_id", a->id, "delay", delays, "oom", oom ? "true" : "false");
	update(a);
}

static void on_sb_ready(struct sandbox *sb, void *arg)
{
	struct nl_alloc *a = arg;
	(void)sb;
	persist_runtime(a);
	state_save_alloc(a);
	if (strcmp(a->desired_status, "run") != 0 || a->rt == NULL || ((struct task_rt *)a->rt)->stopping) {
		sandbox_kill(sb);
		return;
	}
	go_running(a);
}

static void on_sb_exited(struct sandbox *sb, int code, int oom, void *arg)
{
	struct nl_alloc *a = arg;
	struct task_rt *rt = a->rt;
	if (sb->ready || sb->bwrap_pid || sb->init_pid)
		sandbox_release(sb);
	rt->sb_active = 0;
	loop_timer_stop(&rt->kill_timer);
	if (oom) {
		code = 137;
		rt->oom_ends++;
	}
	log_info("task exited", "alloc_id", a->id, "exit_code", log_int((char[24]){0}, code),
		 "oom_killed", oom ? "true" : "false");
	if (alloc_client_terminal(a))
		return;
	if (code >= 0 || oom)
		terminated_event(a, code < 0 ? 137 : code, oom, rt->stopping);
	if (rt->stopping || strcmp(a->desired_status, "run") != 0) {
		event(a, "Killed", "", "Task successfully killed", NULL);
		finish_dead(a, 0);
		return;
	}
	if (!rt->received) {
		/* died before the client reported it received: report it first */
		rt->received = 1;
		event(a, "Received", "", "Task received by client", NULL);
	}
	restart_or_fail(a, code, oom);
}

static void on_sb_oom(struct sandbox *sb, void *arg)
{
	struct nl_alloc *a = arg;
	(void)sb;
	/* The kernel killed the cgroup's largest process. As with Docker, the task goes on unless
	 * that was its main process (then the sandbox exits and reports the OOM). */
	log_warn("OOM kill in allocation", "alloc_id", a->id);
}

static const struct sandbox_ops task_sandbox_ops = {
	.ready = on_sb_ready,
	.exited = on_sb_exited,
	.oom = on_sb_oom,
};

/* ---- stopping ---- */

static void on_kill_timer(struct loop_timer *t)
{
	struct nl_alloc *a = t->arg;
	struct task_rt *rt = a->rt;
	if (rt && rt->sb_active && !rt->sb.exited)
		sandbox_kill(&rt->sb);
}

void task_stop(struct nl_alloc *a)
{
	struct task_rt *rt = rt_of(a);
	if (alloc_client_terminal(a))
		return;
	loop_timer_stop(&rt->restart_timer);
	if (!rt->sb_active || rt->sb.exited) {
		/* nothing runs (never started, or waiting for a restart) */
		if (a->task.state[0])
			event(a, "Killed", "", "Task successfully killed", NULL);
		finish_dead(a, 0);
		return;
	}
	if (rt->stopping)
		return;
	rt->stopping = 1;
	json_object *task = task_of(a);
	long long kt = js_int(task, "KillTimeout", 5 * NS_SEC);
	const char *sig = js_str(task, "KillSignal", "");
	char kts[40];
	fmt_go_duration(kt, kts);
	if (strcmp(a->task.state, "running") == 0) {
		char disp[128];
		snprintf(disp, sizeof disp, "Sent interrupt. Waiting %s before force killing", kts);
		const char *details[] = {"kill_timeout", kts, NULL};
		event(a, "Killing", "", disp, details);
	}
	if (!*sig || strcmp(sig, "SIGKILL") == 0 || !rt->sb.ready) {
		sandbox_kill(&rt->sb);
		return;
	}
	int signo = SIGTERM;
	static const struct {
		const char *n;
		int s;
	} sigs[] = {{"SIGINT", SIGINT}, {"SIGTERM", SIGTERM}, {"SIGQUIT", SIGQUIT}, {"SIGHUP", SIGHUP},
		    {"SIGUSR1", SIGUSR1}, {"SIGUSR2", SIGUSR2}};
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		if (strcmp(sig, sigs[i].n) == 0)
			signo = sigs[i].s;
	sandbox_signal_task(&rt->sb, signo);
	loop_timer_start(&rt->kill_timer, kt / 1000000);
}

unsigned task_oom_ends(struct nl_alloc *a)
{
	return a->rt ? ((struct task_rt *)a->rt)->oom_ends : 0;
}

struct sandbox *task_sandbox(struct nl_alloc *a)
{
	struct task_rt *rt = a->rt;
	if (!rt || !rt->sb_active || !rt->sb.ready || rt->sb.exited || rt->stopping)
		return NULL;
	return &rt->sb;
}

/* ---- restarts of the agent ---- */

void task_restore(struct nl_alloc *a)
{
	struct task_rt *rt = rt_of(a);
	json_object *saved = js_obj(a->runtime, "Sandbox");
	rt->interval_start = js_int(a->runtime, "IntervalStart", now_ns());
	rt->interval_count = (int)js_int(a->runtime, "IntervalCount", 0);
	rt->received = js_bool(a->runtime, "Received");
	if (alloc_client_terminal(a))
		return;
	if (saved) {
		int code = -1, oom = 0;
		snprintf(rt->sb.alloc_id, sizeof rt->sb.alloc_id, "%s", a->id);
		if (sandbox_adopt(&rt->sb, saved, &task_sandbox_ops, a, &code, &oom)) {
			rt->sb_active = 1;
			log_info("allocation re-adopted", "alloc_id", a->id);
			if (strcmp(a->desired_status, "run") != 0) {
				task_stop(a);
				return;
			}
			if (strcmp(a->task.state, "running") != 0) {
				rt->received = 1;
				go_running(a);
			} else {
				portfwd_start(a, &rt->sb);
			}
			return;
		}
		/* the task died while the agent was down: report it failed */
		log_warn("allocation's sandbox died while the agent was down", "alloc_id", a->id);
		rt->sb_active = 0;
		if (strcmp(a->desired_status, "run") != 0) {
			event(a, "Killed", "", "Task successfully killed", NULL);
			finish_dead(a, 0);
			return;
		}
		terminated_event(a, code >= 0 ? code : 137, oom, 0);
		const char *details[] = {"fails_task", "true", "restart_reason",
					 "The task died while the Nomad agent was not running", NULL};
		event(a, "Not Restarting", "", "The task died while the Nomad agent was not running", details);
		finish_dead(a, 1);
		return;
	}
	/* no sandbox: it was waiting for a (re)start */
	if (strcmp(a->desired_status, "run") != 0) {
		finish_dead(a, 0);
		return;
	}
	if (a->task.restarts > 0) {
		loop_timer_start(&rt->restart_timer, 0);
	} else {
		start_sandbox(a);
		if (rt->received)
			go_running(a);
	}
}

void task_forget(struct nl_alloc *a)
{
	struct task_rt *rt = a->rt;
	if (!rt)
		return;
	loop_timer_stop(&rt->restart_timer);
	loop_timer_stop(&rt->kill_timer);
	portfwd_stop(a);
	if (rt->sb_active)
		sandbox_release(&rt->sb);
	free_env(rt->env);
	free(rt);
	a->rt = NULL;
}

void task_detach_all(void)
{
	for (int i = 0; i < st.nallocs; i++)
		task_forget(st.allocs[i]);
}
