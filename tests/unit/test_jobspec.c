/* jobspec: template and runner jobs as docs/architecture.md and docs/nomad-api.md 3 describe them, every key a
 * real Nomad key (checked against Nomad's own list, tests/fixtures/nomad/job-fields.txt). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobspec.h"
#include "nomad_keys.h"

static char *fields;

static const char *fixture(const char *name)
{
	static char path[1024];
	const char *src = getenv("POSEIDON_SRC_DIR");
	snprintf(path, sizeof path, "%s/tests/fixtures/nomad/%s", src && *src ? src : ".", name);
	return path;
}

static int setup(void **state)
{
	(void)state;
	fields = nomad_keys_load();
	return fields ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	free(fields);
	return 0;
}

static json_object *path_get(json_object *o, const char *a, const char *b)
{
	json_object *v = NULL;
	json_object_object_get_ex(o, a, &v);
	if (b && v)
		json_object_object_get_ex(v, b, &v);
	return v;
}

static json_object *group(json_object *job, const char *name)
{
	json_object *groups = path_get(job, "TaskGroups", NULL);
	for (size_t i = 0; i < json_object_array_length(groups); i++) {
		json_object *g = json_object_array_get_idx(groups, i);
		if (strcmp(json_object_get_string(path_get(g, "Name", NULL)), name) == 0)
			return g;
	}
	return NULL;
}

static json_object *task(json_object *job)
{
	return json_object_array_get_idx(path_get(group(job, "default-group"), "Tasks", NULL), 0);
}

static struct jobspec_opts opts(void)
{
	struct jobspec_opts o = {.disable_force_pull = 0};
	snprintf(o.namespace, sizeof o.namespace, "poseidon");
	snprintf(o.network_mode, sizeof o.network_mode, "bridge");
	return o;
}

static void test_template_job_without_network(void **state)
{
	(void)state;
	struct perr e;
	struct jobspec_opts o = opts();
	json_object *tmpl = jobspec_load(NULL, &e);
	assert_non_null(tmpl);
	struct environment env = {.id = 42, .prewarming_pool_size = 1, .cpu_limit = 100, .memory_limit = 100,
				  .ports_null = 1};
	snprintf(env.image, sizeof env.image, "openhpi/co_execenv_java:17");
	json_object *job = jobspec_template_job(tmpl, &env, &o, &e);
	assert_non_null(job);
	json_object *wrapped = json_object_new_object();
	json_object_object_add(wrapped, "Job", json_object_get(job));
	assert_int_equal(nomad_keys_check(fields, wrapped, ""), 0);
	json_object_put(wrapped);

	assert_string_equal(json_object_get_string(path_get(job, "ID", NULL)), "template-42");
	assert_string_equal(json_object_get_string(path_get(job, "Name", NULL)), "template-42");
	assert_string_equal(json_object_get_string(path_get(job, "Namespace", NULL)), "poseidon");
	assert_string_equal(json_object_get_string(path_get(job, "Type", NULL)), "batch");
	assert_int_equal(json_object_array_length(path_get(job, "TaskGroups", NULL)), 2);
	json_object *t = task(job);
	assert_int_equal(json_object_get_int(path_get(t, "Resources", "CPU")), 100);
	assert_int_equal(json_object_get_int(path_get(t, "Resources", "MemoryMaxMB")), 100);
	assert_int_equal(json_object_get_int(path_get(t, "Resources", "MemoryMB")), 50);
	assert_string_equal(json_object_get_string(path_get(t, "Config", "image")), "openhpi/co_execenv_java:17");
	assert_string_equal(json_object_get_string(path_get(t, "Config", "network_mode")), "none");
	assert_string_equal(json_object_get_string(path_get(t, "Config", "command")), "sleep");
	json_object *nets = path_get(group(job, "default-group"), "Networks", NULL);
	assert_true(json_object_is_type(nets, json_type_array));
	assert_int_equal(json_object_array_length(nets), 0); /* [] drops a network, null would not */
	assert_string_equal(json_object_get_string(path_get(group(job, "config"), "Meta", "prewarmingPoolSize")), "1");
	assert_int_equal(json_object_get_int(path_get(group(job, "config"), "Count", NULL)), 0);

	struct environment back;
	assert_int_equal(jobspec_environment_from_job(job, &back, &e), 0);
	assert_int_equal(back.id, 42);
	assert_int_equal(back.prewarming_pool_size, 1);
	assert_int_equal(back.cpu_limit, 100);
	assert_int_equal(back.memory_limit, 100);
	assert_string_equal(back.image, env.image);
	assert_false(back.network_access);
	json_object_put(job);
	json_object_put(tmpl);
}

static void test_template_job_with_network_and_ports(void **state)
{
	(void)state;
	struct perr e;
	struct jobspec_opts o = opts();
	json_object *tmpl = jobspec_load(NULL, &e);
	struct environment env = {.id = 42, .prewarming_pool_size = 1, .cpu_limit = 150, .memory_limit = 142,
				  .network_access = 1, .nports = 2, .ports = {42, 1337}};
	json_object *job = jobspec_template_job(tmpl, &env, &o, &e);
	json_object *t = task(job);
	assert_string_equal(json_object_get_string(path_get(t, "Config", "network_mode")), "");
	json_object *nets = path_get(group(job, "default-group"), "Networks", NULL);
	assert_int_equal(json_object_array_length(nets), 1);
	json_object *net = json_object_array_get_idx(nets, 0);
	assert_string_equal(json_object_get_string(path_get(net, "Mode", NULL)), "bridge");
	json_object *dyn = path_get(net, "DynamicPorts", NULL);
	assert_int_equal(json_object_array_length(dyn), 2);
	assert_int_equal(json_object_get_int(path_get(json_object_array_get_idx(dyn, 1), "To", NULL)), 1337);
	assert_string_equal(json_object_get_string(path_get(json_object_array_get_idx(dyn, 1), "Label", NULL)), "1337");
	json_object *wrapped = json_object_new_object();
	json_object_object_add(wrapped, "Job", json_object_get(job));
	assert_int_equal(nomad_keys_check(fields, wrapped, ""), 0);
	json_object_put(wrapped);
	struct environment back;
	assert_int_equal(jobspec_environment_from_job(job, &back, &e), 0);
	assert_true(back.network_access);
	assert_int_equal(back.nports, 2);
	assert_int_equal(back.ports[0], 42);
	json_object_put(job);
	json_object_put(tmpl);
}

static void test_runner_job_meta_and_force_pull(void **state)
{
	(void)state;
	struct perr e;
	struct jobspec_opts o = opts();
	json_object *tmpl = jobspec_load(NULL, &e);
	struct environment env = {.id = 10, .prewarming_pool_size = 5, .cpu_limit = 20, .memory_limit = 30, .ports_null = 1};
	json_object *job = jobspec_runner_job(tmpl, &env, "10-abc", 0, &o, &e);
	assert_string_equal(json_object_get_string(path_get(job, "ID", NULL)), "10-abc");
	json_object *meta = path_get(group(job, "config"), "Meta", NULL);
	assert_int_equal(json_object_object_length(meta), 1);
	assert_string_equal(json_object_get_string(path_get(meta, "used", NULL)), "false");
	json_object *t = task(job);
	assert_false(json_object_get_boolean(path_get(t, "Config", "force_pull")));
	/* a limit under the template's reservation shrinks the reservation (Nomad wants max >= reserved) */
	assert_int_equal(json_object_get_int(path_get(t, "Resources", "MemoryMB")), 30);
	assert_int_equal(json_object_get_int(path_get(t, "Resources", "MemoryMaxMB")), 30);

	int used, changed;
	long long timeout;
	jobspec_get_used(job, &used, &timeout);
	assert_false(used);
	assert_int_equal(jobspec_set_used(job, 1, 60, &changed, &e), 0);
	assert_true(changed);
	jobspec_get_used(job, &used, &timeout);
	assert_true(used);
	assert_int_equal(timeout, 60);
	assert_int_equal(jobspec_set_used(job, 1, 60, &changed, &e), 0);
	assert_false(changed);
	json_object_put(job);

	o.disable_force_pull = 0;
	job = jobspec_runner_job(tmpl, &env, "10-def", 1, &o, &e);
	assert_true(json_object_get_boolean(path_get(task(job), "Config", "force_pull")));
	json_object_put(job);
	o.disable_force_pull = 1;
	job = jobspec_runner_job(tmpl, &env, "10-def", 1, &o, &e);
	assert_false(json_object_get_boolean(path_get(task(job), "Config", "force_pull")));
	json_object_put(job);
	json_object_put(tmpl);
}

static void test_limit_too_high(void **state)
{
	(void)state;
	struct perr e;
	struct jobspec_opts o = opts();
	json_object *tmpl = jobspec_load(NULL, &e);
	struct environment env = {.id = 1, .memory_limit = 2147483648ULL, .ports_null = 1};
	assert_null(jobspec_template_job(tmpl, &env, &o, &e));
	assert_int_equal(e.kind, PERR_UNKNOWN);
	assert_non_null(strstr(e.msg, "limit too high"));
	json_object_put(tmpl);
}

static void test_custom_templates(void **state)
{
	(void)state;
	struct perr e;
	char path[] = "/tmp/poseidon-template-XXXXXX";
	int fd = mkstemp(path);
	const char *bad = "{\"Job\":{\"TaskGroups\":[{\"Name\":\"other\"}]}}";
	assert_int_equal(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
	close(fd);
	assert_null(jobspec_load(path, &e));
	assert_non_null(strstr(e.msg, "default-task"));
	/* a bare Job without a config group receives one */
	FILE *f = fopen(path, "w");
	fprintf(f, "{\"TaskGroups\":[{\"Name\":\"default-group\",\"Count\":1,\"Tasks\":[{\"Name\":\"default-task\",\"Driver\":\"docker\"}]}]}");
	fclose(f);
	json_object *tmpl = jobspec_load(path, &e);
	assert_non_null(tmpl);
	assert_non_null(group(tmpl, "config"));
	json_object_put(tmpl);
	assert_null(jobspec_load("/nonexistent.json", &e));
	unlink(path);
}

static void test_reads_the_recorded_nomad_job(void **state)
{
	(void)state;
	struct perr e;
	json_object *job = json_object_from_file(fixture("job-read-response.json"));
	assert_non_null(job);
	struct environment env;
	assert_int_equal(jobspec_environment_from_job(job, &env, &e), 0);
	assert_int_equal(env.id, 10);
	assert_int_equal(env.prewarming_pool_size, 1);
	assert_int_equal(env.cpu_limit, 20);
	assert_int_equal(env.memory_limit, 256);
	assert_string_equal(env.image, "openhpi/co_execenv_python:3.8");
	assert_true(env.network_access);
	assert_int_equal(env.nports, 1);
	assert_int_equal(env.ports[0], 8080);
	json_object_put(job);
	job = json_object_from_file(fixture("job-read-response-runner.json"));
	int used;
	long long timeout;
	jobspec_get_used(job, &used, &timeout);
	assert_true(used);
	assert_int_equal(timeout, 60);
	assert_int_not_equal(jobspec_environment_from_job(job, &env, &e), 0); /* not a template */
	json_object_put(job);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_template_job_without_network),
		cmocka_unit_test(test_template_job_with_network_and_ports),
		cmocka_unit_test(test_runner_job_meta_and_force_pull),
		cmocka_unit_test(test_limit_too_high),
		cmocka_unit_test(test_custom_templates),
		cmocka_unit_test(test_reads_the_recorded_nomad_job),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
