/* deploy/nomad/poseidon.nomad.json, the job that runs this service on a Nomad cluster: no Nomad
 * runs here, so everything that can be checked without one is. Every key is a real Nomad job key
 * (tests/fixtures/nomad/job-fields.txt, as test_jobspec checks our runner jobs), durations are
 * nanoseconds, every ${NOMAD_META_*} and ${NOMAD_PORT_*} it uses is defined, every POSEIDON_*
 * variable is one our programs or lighttpd.conf read, the lighttpd task sets everything
 * lighttpd.conf needs, the programs it starts exist, and the layout is the documented one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "nomad_keys.h"

static char *fields;     /* "\n"-framed list of Nomad's job keys */
static char *lighttpd;   /* lighttpd.conf */
static char *config_ref; /* lib/config's key table */
static json_object *root, *job;

static const char *src_path(const char *rel)
{
	static char path[2][1024];
	static int k;
	const char *src = getenv("POSEIDON_SRC_DIR");
	k ^= 1;
	snprintf(path[k], sizeof path[k], "%s/%s", src && *src ? src : ".", rel);
	return path[k];
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	size_t cap = 1 << 20, n = 1;
	char *b = malloc(cap);
	b[0] = '\n';
	n += fread(b + 1, 1, cap - 2, f);
	b[n] = '\0';
	fclose(f);
	return b;
}

static int setup(void **state)
{
	(void)state;
	size_t len;
	fields = nomad_keys_load();
	lighttpd = slurp(src_path("lighttpd.conf"));
	root = json_object_from_file(src_path("deploy/nomad/poseidon.nomad.json"));
	FILE *f = open_memstream(&config_ref, &len);
	if (!f)
		return -1;
	config_write_reference(f);
	fclose(f);
	if (!fields || !lighttpd || !root || !json_object_object_get_ex(root, "Job", &job))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(fields);
	free(lighttpd);
	free(config_ref);
	json_object_put(root);
	return 0;
}

static json_object *get(json_object *o, const char *k)
{
	json_object *v = NULL;
	json_object_object_get_ex(o, k, &v);
	return v;
}

static const char *str(json_object *o, const char *k)
{
	json_object *v = get(o, k);
	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* Calls fn for every name that follows one of the markers in s (a name: [A-Za-z0-9_.-]). */
typedef int (*ref_fn)(const char *name, void *ud);
static int scan_refs(const char *s, const char *const *markers, ref_fn fn, void *ud)
{
	int bad = 0;
	for (const char *const *m = markers; *m; m++)
		for (const char *p = s; (p = strstr(p, *m)); p += strlen(*m)) {
			char name[128];
			size_t n =
			    strspn(p + strlen(*m),
			           "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-");
			snprintf(name, sizeof name, "%.*s", (int)n, p + strlen(*m));
			bad += fn(name, ud);
		}
	return bad;
}

/* Every string under v (object values and array items; with keys too when keys is set). */
typedef int (*str_fn)(const char *s, void *ud);
static int each_string(json_object *v, int keys, str_fn fn, void *ud)
{
	int bad = 0;
	if (json_object_is_type(v, json_type_string))
		return fn(json_object_get_string(v), ud);
	if (json_object_is_type(v, json_type_array))
		for (size_t i = 0; i < json_object_array_length(v); i++)
			bad += each_string(json_object_array_get_idx(v, i), keys, fn, ud);
	if (json_object_is_type(v, json_type_object)) {
		json_object_object_foreach(v, k, val)
		{
			if (keys)
				bad += fn(k, ud);
			bad += each_string(val, keys, fn, ud);
		}
	}
	return bad;
}

static json_object *group(const char *name)
{
	json_object *groups = get(job, "TaskGroups");
	for (size_t i = 0; groups && i < json_object_array_length(groups); i++) {
		const char *n = str(json_object_array_get_idx(groups, i), "Name");
		if (n && strcmp(n, name) == 0)
			return json_object_array_get_idx(groups, i);
	}
	return NULL;
}

static json_object *task(json_object *g, const char *name)
{
	json_object *tasks = get(g, "Tasks");
	for (size_t i = 0; tasks && i < json_object_array_length(tasks); i++)
		if (strcmp(str(json_object_array_get_idx(tasks, i), "Name"), name) == 0)
			return json_object_array_get_idx(tasks, i);
	return NULL;
}

static void test_every_key_is_a_nomad_job_key(void **state)
{
	(void)state;
	assert_int_equal(nomad_keys_check(fields, root, ""), 0);
}

static void test_layout_redis_front_and_standby_refill(void **state)
{
	(void)state;
	assert_string_equal(str(job, "ID"), "poseidon");
	assert_string_equal(str(job, "Type"), "service");
	struct {
		const char *group;
		int count;
		const char *tasks[3];
	} want[] = {
	    {"redis", 1, {"redis", NULL}},
	    {"front", 2, {"lighttpd", "wsgate", NULL}},
	    {"refill", 2, {"refill", NULL}}, /* one leads, one stands by */
	};
	assert_int_equal(json_object_array_length(get(job, "TaskGroups")), 3);
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		json_object *g = group(want[i].group);
		assert_non_null(g);
		assert_int_equal(json_object_get_int(get(g, "Count")), want[i].count);
		for (int t = 0; want[i].tasks[t]; t++) {
			json_object *tk = task(g, want[i].tasks[t]);
			assert_non_null(tk);
			const char *d = str(tk, "Driver");
			assert_true(strcmp(d, "exec") == 0 || strcmp(d, "raw_exec") == 0);
			assert_non_null(get(get(tk, "Config"), "command"));
		}
	}
}

/* Durations in Nomad's JSON are integer nanoseconds: "10s" or 10 would be a mistake. */
static int check_durations(json_object *v, const char *key)
{
	static const char *const names[] = {
	    "Interval",        "Timeout",          "KillTimeout", "Delay", "MinHealthyTime",
	    "HealthyDeadline", "ProgressDeadline", "Stagger",     NULL};
	int bad = 0;
	for (const char *const *n = names; key && *n; n++)
		if (strcmp(key, *n) == 0 &&
		    (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1000000)) {
			fprintf(stderr, "%s is not a duration in nanoseconds: %s\n", key,
			        json_object_to_json_string(v));
			bad++;
		}
	if (json_object_is_type(v, json_type_array))
		for (size_t i = 0; i < json_object_array_length(v); i++)
			bad += check_durations(json_object_array_get_idx(v, i), NULL);
	if (json_object_is_type(v, json_type_object)) {
		json_object_object_foreach(v, k, val) bad += check_durations(val, k);
	}
	return bad;
}

static void test_durations_are_nanoseconds(void **state)
{
	(void)state;
	assert_int_equal(check_durations(job, NULL), 0);
}

static int meta_defined(const char *name, void *ud)
{
	(void)ud;
	if (get(get(job, "Meta"), name))
		return 0;
	fprintf(stderr, "NOMAD_META_%s is used but not in Job.Meta\n", name);
	return 1;
}

static int meta_refs(const char *s, void *ud)
{
	static const char *const m[] = {"${NOMAD_META_", "env \"NOMAD_META_", NULL};
	return scan_refs(s, m, meta_defined, ud);
}

static int port_defined(const char *name, void *ud)
{
	json_object *nets = get((json_object *)ud, "Networks");
	for (size_t i = 0; nets && i < json_object_array_length(nets); i++)
		for (int kind = 0; kind < 2; kind++) {
			json_object *ports =
			    get(json_object_array_get_idx(nets, i), kind ? "DynamicPorts" : "ReservedPorts");
			for (size_t j = 0; ports && j < json_object_array_length(ports); j++)
				if (strcmp(str(json_object_array_get_idx(ports, j), "Label"), name) == 0)
					return 0;
		}
	fprintf(stderr, "port %s is used but not defined in group %s\n", name,
	        str((json_object *)ud, "Name"));
	return 1;
}

static int port_refs(const char *s, void *ud)
{
	static const char *const m[] = {"${NOMAD_PORT_", "env \"NOMAD_PORT_", NULL};
	return scan_refs(s, m, port_defined, ud);
}

static void test_every_meta_and_port_it_uses_is_defined(void **state)
{
	(void)state;
	assert_int_equal(each_string(job, 0, meta_refs, NULL), 0);
	json_object *groups = get(job, "TaskGroups");
	for (size_t i = 0; i < json_object_array_length(groups); i++) {
		json_object *g = json_object_array_get_idx(groups, i);
		assert_int_equal(each_string(g, 0, port_refs, g), 0);
	}
	/* services name a port of their group */
	for (size_t i = 0; i < json_object_array_length(groups); i++) {
		json_object *g = json_object_array_get_idx(groups, i), *svcs = get(g, "Services");
		for (size_t j = 0; svcs && j < json_object_array_length(svcs); j++)
			assert_int_equal(
			    port_defined(str(json_object_array_get_idx(svcs, j), "PortLabel"), g), 0);
	}
}

/* A POSEIDON_* name is one of lib/config's variables, one lighttpd.conf reads, or POSEIDON_CONFIG. */
static int poseidon_var_known(const char *name, void *ud)
{
	(void)ud;
	char full[160], quoted[170], envref[170];
	snprintf(full, sizeof full, "POSEIDON_%s", name);
	snprintf(quoted, sizeof quoted, "`%s`", full);
	snprintf(envref, sizeof envref, "env.%s", full);
	if (strcmp(full, "POSEIDON_CONFIG") == 0 || strstr(config_ref, quoted))
		return 0;
	const char *p = strstr(lighttpd, envref);
	if (p && !strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZ_", p[strlen(envref)]))
		return 0;
	fprintf(stderr, "%s is read by no program and not by lighttpd.conf\n", full);
	return 1;
}

static int poseidon_refs(const char *s, void *ud)
{
	static const char *const m[] = {"POSEIDON_", NULL};
	return scan_refs(s, m, poseidon_var_known, ud);
}

static void test_every_poseidon_variable_is_one_we_read(void **state)
{
	(void)state;
	assert_int_equal(each_string(job, 1, poseidon_refs, NULL), 0);
}

/* lighttpd refuses to start when a variable its config reads is unset. */
static void test_the_lighttpd_task_sets_what_lighttpd_conf_reads(void **state)
{
	(void)state;
	json_object *t = task(group("front"), "lighttpd"), *env = get(t, "Env");
	assert_non_null(env);
	int seen = 0;
	for (const char *p = lighttpd; (p = strstr(p, "env.POSEIDON_")); p += 4) {
		char name[128];
		size_t n = strspn(p + 4, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_");
		snprintf(name, sizeof name, "%.*s", (int)n, p + 4);
		if (!get(env, name))
			fprintf(stderr, "lighttpd.conf reads %s; the lighttpd task does not set it\n", name);
		assert_non_null(get(env, name));
		seen++;
	}
	assert_true(seen >= 5);
	/* and it proxies the WebSocket to the gateway of its own group */
	assert_string_equal(str(env, "POSEIDON_WSGATE_PORT"), "${NOMAD_PORT_wsgate}");
	assert_string_equal(str(get(task(group("front"), "wsgate"), "Env"), "POSEIDON_WSGATE_PORT"),
	                    "${NOMAD_PORT_wsgate}");
}

/* ${NOMAD_META_bin_dir}/poseidon-<x> must be one of our programs (app/<x>/main.c). */
static void test_it_starts_programs_that_exist(void **state)
{
	(void)state;
	const char *const groups[] = {"front", "refill", NULL};
	int programs = 0;
	for (const char *const *gn = groups; *gn; gn++) {
		json_object *tasks = get(group(*gn), "Tasks");
		for (size_t i = 0; i < json_object_array_length(tasks); i++) {
			const char *cmd = json_object_get_string(
			    get(get(json_object_array_get_idx(tasks, i), "Config"), "command"));
			const char *prog = strstr(cmd, "/poseidon-");
			if (!prog)
				continue;
			char rel[256];
			struct stat sb;
			snprintf(rel, sizeof rel, "app/%s/main.c", prog + strlen("/poseidon-"));
			if (stat(src_path(rel), &sb) != 0)
				fprintf(stderr, "%s starts %s, which is not built from %s\n", *gn, cmd, rel);
			assert_int_equal(stat(src_path(rel), &sb), 0);
			assert_int_equal(
			    strncmp(cmd, "${NOMAD_META_bin_dir}/", strlen("${NOMAD_META_bin_dir}/")), 0);
			programs++;
		}
	}
	assert_int_equal(programs, 2); /* poseidon-wsgate and poseidon-refill; lighttpd spawns poseidon-api */
}

static int var_path_ok(const char *s, void *ud)
{
	(void)ud;
	char want[128];
	snprintf(want, sizeof want, "nomadVar \"nomad/jobs/%s\"", str(job, "ID"));
	int bad = 0;
	for (const char *p = s; (p = strstr(p, "nomadVar ")); p++)
		if (strncmp(p, want, strlen(want)) != 0) {
			fprintf(stderr,
			        "a task reads a Nomad variable outside its job's implicit path: %.60s\n", p);
			bad++;
		}
	return bad;
}

static int service_known(const char *s, void *ud)
{
	(void)ud;
	int bad = 0;
	for (const char *p = s; (p = strstr(p, "nomadService \"")); p++) {
		char name[128];
		size_t n = strcspn(p + 14, "\"");
		snprintf(name, sizeof name, "%.*s", (int)n, p + 14);
		int found = 0;
		json_object *groups = get(job, "TaskGroups");
		for (size_t i = 0; i < json_object_array_length(groups); i++) {
			json_object *svcs = get(json_object_array_get_idx(groups, i), "Services");
			for (size_t j = 0; svcs && j < json_object_array_length(svcs); j++)
				found |=
				    strcmp(str(json_object_array_get_idx(svcs, j), "Name"), name) == 0 &&
				    strcmp(str(json_object_array_get_idx(svcs, j), "Provider"), "nomad") == 0;
		}
		if (!found)
			fprintf(stderr, "template looks up service %s, which no group registers with Nomad\n",
			        name);
		bad += !found;
	}
	return bad;
}

static void test_templates_read_only_this_jobs_variables_and_services(void **state)
{
	(void)state;
	assert_int_equal(each_string(job, 0, var_path_ok, NULL), 0);
	assert_int_equal(each_string(job, 0, service_known, NULL), 0);
	/* secrets come from the variable, never from the file */
	const char *text = json_object_to_json_string(root);
	assert_null(strstr(text, "POSEIDON_SERVER_TOKEN\":"));
	assert_null(strstr(text, "POSEIDON_NOMAD_TOKEN\":"));
	assert_null(strstr(text, "POSEIDON_REDIS_PASSWORD\":"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_key_is_a_nomad_job_key),
	    cmocka_unit_test(test_layout_redis_front_and_standby_refill),
	    cmocka_unit_test(test_durations_are_nanoseconds),
	    cmocka_unit_test(test_every_meta_and_port_it_uses_is_defined),
	    cmocka_unit_test(test_every_poseidon_variable_is_one_we_read),
	    cmocka_unit_test(test_the_lighttpd_task_sets_what_lighttpd_conf_reads),
	    cmocka_unit_test(test_it_starts_programs_that_exist),
	    cmocka_unit_test(test_templates_read_only_this_jobs_variables_and_services),
	};
	return cmocka_run_group_tests_name("deploy_nomad_job", tests, setup, teardown);
}
