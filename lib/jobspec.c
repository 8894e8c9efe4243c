/* jobspec: see jobspec.h. The built-in template is deploy/template-job.json, linked in with the
 * assembler's .incbin (the Makefile rebuilds this object when the file changes). Every key this
 * module writes is a real Nomad job key; tests/unit/test_jobspec.c checks the output against
 * Nomad's list of accepted keys. */
#include "jobspec.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__asm__(".section .rodata\n"
	".global jobspec_builtin_template\n"
	"jobspec_builtin_template:\n"
	".incbin \"deploy/template-job.json\"\n"
	".byte 0\n"
	".previous\n");
extern const char jobspec_builtin_template[];

#define LIMIT_MAX 2147483647ULL

void jobspec_opts_from_config(struct jobspec_opts *o, const struct config *c)
{
	memset(o, 0, sizeof *o);
	snprintf(o->namespace, sizeof o->namespace, "%s", c->nomad.namespace);
	snprintf(o->network_mode, sizeof o->network_mode, "%s", c->nomad.network.mode);
	o->disable_force_pull = c->nomad.disableforcepull;
}

static json_object *get(json_object *o, const char *key)
{
	json_object *v = NULL;
	if (o && json_object_is_type(o, json_type_object))
		json_object_object_get_ex(o, key, &v);
	return v;
}

/* The element of array `list` whose "Name" is name. */
static json_object *find_named(json_object *list, const char *name)
{
	for (size_t i = 0; list && json_object_is_type(list, json_type_array) && i < json_object_array_length(list); i++) {
		json_object *it = json_object_array_get_idx(list, i);
		json_object *n = get(it, "Name");
		if (n && json_object_is_type(n, json_type_string) && strcmp(json_object_get_string(n), name) == 0)
			return it;
	}
	return NULL;
}

/* get-or-create an object member */
static json_object *obj(json_object *parent, const char *key)
{
	json_object *v = get(parent, key);
	if (!v || !json_object_is_type(v, json_type_object)) {
		v = json_object_new_object();
		json_object_object_add(parent, key, v);
	}
	return v;
}

static void set_str(json_object *o, const char *k, const char *v) { json_object_object_add(o, k, json_object_new_string(v)); }
static void set_int(json_object *o, const char *k, long long v) { json_object_object_add(o, k, json_object_new_int64(v)); }

/* Makes sure the job has default-group/default-task running `sleep infinity` with Resources, and a
 * config group with a config task running `true`. */
static int normalise(json_object *job, struct perr *e)
{
	json_object *groups = get(job, "TaskGroups");
	json_object *dg = find_named(groups, "default-group");
	json_object *task = dg ? find_named(get(dg, "Tasks"), "default-task") : NULL;
	if (!task)
		return perr_set(e, PERR_UNKNOWN, "job template has no task default-task in group default-group");
	json_object *cfg = obj(task, "Config");
	set_str(cfg, "command", "sleep");
	json_object *args = json_object_new_array();
	json_object_array_add(args, json_object_new_string("infinity"));
	json_object_object_add(cfg, "args", args);
	json_object *res = get(task, "Resources");
	if (!res || !json_object_is_type(res, json_type_object)) {
		res = json_object_new_object();
		set_int(res, "CPU", 100);
		set_int(res, "MemoryMB", 300);
		json_object_object_add(task, "Resources", res);
	}
	json_object *cg = find_named(groups, "config");
	if (!cg) {
		cg = json_object_new_object();
		set_str(cg, "Name", "config");
		set_int(cg, "Count", 0);
		json_object_array_add(groups, cg);
	}
	json_object *ctasks = get(cg, "Tasks");
	if (!ctasks || !json_object_is_type(ctasks, json_type_array)) {
		ctasks = json_object_new_array();
		json_object_object_add(cg, "Tasks", ctasks);
	}
	json_object *ct = find_named(ctasks, "config");
	if (!ct) {
		ct = json_object_new_object();
		set_str(ct, "Name", "config");
		set_str(ct, "Driver", "exec");
		json_object *r = json_object_new_object();
		set_int(r, "CPU", 1);
		set_int(r, "MemoryMB", 10);
		json_object_object_add(ct, "Resources", r);
		json_object_array_add(ctasks, ct);
	}
	set_str(obj(ct, "Config"), "command", "true");
	obj(cg, "Meta");
	return 0;
}

json_object *jobspec_load(const char *path, struct perr *e)
{
	json_object *doc;
	if (path && *path) {
		doc = json_object_from_file(path);
		if (!doc)
			return perr_set(e, PERR_UNKNOWN, "job template %s: %s", path, json_util_get_last_err()), NULL;
	} else {
		doc = json_tokener_parse(jobspec_builtin_template);
		if (!doc)
			return perr_set(e, PERR_UNKNOWN, "built-in job template is not JSON"), NULL;
	}
	json_object *job = get(doc, "Job");
	job = job ? json_object_get(job) : json_object_get(doc);
	json_object_put(doc);
	if (!json_object_is_type(job, json_type_object) || !get(job, "TaskGroups")) {
		json_object_put(job);
		return perr_set(e, PERR_UNKNOWN, "job template %s has no TaskGroups", path && *path ? path : "(built-in)"),
		       NULL;
	}
	if (normalise(job, e) < 0) {
		json_object_put(job);
		return NULL;
	}
	return job;
}

static json_object *copy(json_object *o)
{
	json_object *c = NULL;
	if (json_object_deep_copy(o, &c, NULL) != 0)
		return NULL;
	return c;
}

/* Applies env and opts to a copy of the template; id becomes ID and Name. */
static json_object *build(json_object *tmpl, const struct environment *env, const char *id, int force_pull,
			  const struct jobspec_opts *o, struct perr *e)
{
	if (env->cpu_limit > LIMIT_MAX || env->memory_limit > LIMIT_MAX)
		return perr_set(e, PERR_UNKNOWN, "error creating Nomad environment: limit too high: cpu %llu, memory %llu",
				env->cpu_limit, env->memory_limit),
		       NULL;
	json_object *job = copy(tmpl);
	if (!job || normalise(job, e) < 0) {
		json_object_put(job);
		return job ? NULL : (perr_set(e, PERR_UNKNOWN, "out of memory"), NULL);
	}
	set_str(job, "ID", id);
	set_str(job, "Name", id);
	set_str(job, "Namespace", o->namespace);
	json_object *groups = get(job, "TaskGroups");
	json_object *dg = find_named(groups, "default-group");
	json_object *task = find_named(get(dg, "Tasks"), "default-task");
	json_object *cfg = obj(task, "Config");
	json_object *res = obj(task, "Resources");

	if (env->cpu_limit > 0)
		set_int(res, "CPU", (long long)env->cpu_limit);
	if (env->memory_limit > 0) {
		long long reserve = json_object_get_int64(get(res, "MemoryMB"));
		if (reserve <= 0 || reserve > (long long)env->memory_limit)
			reserve = (long long)env->memory_limit;
		set_int(res, "MemoryMB", reserve);
		set_int(res, "MemoryMaxMB", (long long)env->memory_limit);
	}
	set_str(cfg, "image", env->image);
	json_object_object_add(cfg, "force_pull", json_object_new_boolean(force_pull && !o->disable_force_pull));

	json_object *networks = json_object_new_array();
	if (env->network_access) {
		json_object *net = json_object_new_object(), *ports = json_object_new_array();
		set_str(net, "Mode", o->network_mode);
		for (int i = 0; i < env->nports; i++) {
			json_object *p = json_object_new_object();
			char label[8];
			snprintf(label, sizeof label, "%u", env->ports[i]);
			set_str(p, "Label", label);
			set_int(p, "To", env->ports[i]);
			json_object_array_add(ports, p);
		}
		json_object_object_add(net, "DynamicPorts", ports);
		json_object_array_add(networks, net);
		set_str(cfg, "network_mode", "");
	} else {
		set_str(cfg, "network_mode", "none");
	}
	json_object_object_add(dg, "Networks", networks); /* [] (not null) drops an existing network */
	return job;
}

json_object *jobspec_template_job(json_object *tmpl, const struct environment *env, const struct jobspec_opts *o,
				  struct perr *e)
{
	char id[48], pool[24];
	snprintf(id, sizeof id, "template-%lld", env->id);
	json_object *job = build(tmpl, env, id, 1, o, e);
	if (!job)
		return NULL;
	snprintf(pool, sizeof pool, "%llu", env->prewarming_pool_size);
	json_object *meta = obj(find_named(get(job, "TaskGroups"), "config"), "Meta");
	set_str(meta, "prewarmingPoolSize", pool);
	return job;
}

json_object *jobspec_runner_job(json_object *tmpl, const struct environment *env, const char *runner_id,
				int force_pull, const struct jobspec_opts *o, struct perr *e)
{
	json_object *job = build(tmpl, env, runner_id, force_pull, o, e);
	if (!job)
		return NULL;
	json_object *meta = json_object_new_object();
	set_str(meta, "used", "false");
	json_object_object_add(find_named(get(job, "TaskGroups"), "config"), "Meta", meta);
	return job;
}

static long long to_ll(json_object *v)
{
	if (!v)
		return 0;
	if (json_object_is_type(v, json_type_string))
		return strtoll(json_object_get_string(v), NULL, 10);
	return json_object_get_int64(v);
}

int jobspec_environment_from_job(json_object *job, struct environment *env, struct perr *e)
{
	json_object *idv = get(job, "ID");
	memset(env, 0, sizeof *env);
	const char *id = idv && json_object_is_type(idv, json_type_string) ? json_object_get_string(idv) : "";
	if (strncmp(id, "template-", 9) != 0)
		return perr_set(e, PERR_UNKNOWN, "job %s is not an environment template", id);
	env->id = strtoll(id + 9, NULL, 10);
	json_object *groups = get(job, "TaskGroups");
	json_object *dg = find_named(groups, "default-group");
	json_object *task = find_named(get(dg, "Tasks"), "default-task");
	if (!task)
		return perr_set(e, PERR_UNKNOWN, "job %s has no default-task", id);
	long long pool = to_ll(get(get(find_named(groups, "config"), "Meta"), "prewarmingPoolSize"));
	env->prewarming_pool_size = pool > 0 ? (unsigned long long)pool : 0;
	json_object *res = get(task, "Resources");
	long long cpu = to_ll(get(res, "CPU")), mem = to_ll(get(res, "MemoryMaxMB"));
	env->cpu_limit = cpu > 0 ? (unsigned long long)cpu : 0;
	env->memory_limit = mem > 0 ? (unsigned long long)mem : 0;
	json_object *cfg = get(task, "Config");
	json_object *image = get(cfg, "image"), *mode = get(cfg, "network_mode");
	snprintf(env->image, sizeof env->image, "%s", image ? json_object_get_string(image) : "");
	env->network_access = !(mode && json_object_is_type(mode, json_type_string) &&
				strcmp(json_object_get_string(mode), "none") == 0);
	env->ports_null = 1;
	json_object *net = get(dg, "Networks");
	json_object *dyn = net && json_object_is_type(net, json_type_array) && json_object_array_length(net) > 0
				   ? get(json_object_array_get_idx(net, 0), "DynamicPorts")
				   : NULL;
	if (env->network_access && dyn && json_object_is_type(dyn, json_type_array)) {
		env->ports_null = 0;
		for (size_t i = 0; i < json_object_array_length(dyn) && env->nports < MODEL_MAX_PORTS; i++)
			env->ports[env->nports++] = (uint16_t)to_ll(get(json_object_array_get_idx(dyn, i), "To"));
	}
	return 0;
}

void jobspec_get_used(json_object *job, int *used, long long *timeout)
{
	json_object *meta = get(find_named(get(job, "TaskGroups"), "config"), "Meta");
	json_object *u = get(meta, "used"), *t = get(meta, "timeout");
	*used = u && json_object_is_type(u, json_type_string) && strcmp(json_object_get_string(u), "true") == 0;
	*timeout = to_ll(t);
}

int jobspec_set_used(json_object *job, int used, long long timeout, int *changed, struct perr *e)
{
	json_object *cg = find_named(get(job, "TaskGroups"), "config");
	if (!cg)
		return perr_set(e, PERR_UNKNOWN, "job has no config group");
	int was_used;
	long long was_timeout;
	jobspec_get_used(job, &was_used, &was_timeout);
	*changed = was_used != used || (used && was_timeout != timeout);
	if (!*changed)
		return 0;
	json_object *meta = obj(cg, "Meta");
	set_str(meta, "used", used ? "true" : "false");
	if (used) {
		char t[24];
		snprintf(t, sizeof t, "%lld", timeout);
		set_str(meta, "timeout", t);
	}
	return 0;
}
