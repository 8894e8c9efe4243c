/* config: defaults < YAML file < POSEIDON_* environment, and errors that name the key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static char path[64];

static void write_file(const char *text)
{
	snprintf(path, sizeof path, "/tmp/poseidon-config-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static int teardown(void **state)
{
	(void)state;
	if (path[0])
		unlink(path);
	path[0] = '\0';
	return 0;
}

static void test_defaults_match_the_reference(void **state)
{
	(void)state;
	struct config c;
	config_defaults(&c);
	assert_string_equal(c.server.address, "127.0.0.1");
	assert_int_equal(c.server.port, 7200);
	assert_string_equal(c.server.token, "");
	assert_true(c.server.interactivestderr);
	assert_true(c.server.alert.prewarmingpoolthreshold == 0.0);
	assert_string_equal(c.nomad.address, "127.0.0.1");
	assert_int_equal(c.nomad.port, 4646);
	assert_string_equal(c.nomad.namespace, "default");
	assert_string_equal(c.redis.address, "127.0.0.1");
	assert_int_equal(c.redis.port, 6379);
	assert_string_equal(c.redis.prefix, "poseidon:");
	assert_int_equal(c.server.maxbodysize, 64LL * 1024 * 1024);
}

static void test_file_overrides_defaults_env_overrides_file(void **state)
{
	(void)state;
	struct config c;
	struct perr e;
	write_file("server:\n  port: 7300\n  token: fromfile\n  alert:\n    prewarmingpoolthreshold: 0.5\n"
		   "nomad:\n  address: nomad.example\n  tls:\n    active: true\n"
		   "logger:\n  level: debug\nredis:\n  port: 6400\n");
	config_defaults(&c);
	assert_int_equal(config_apply_file(&c, path, &e), 0);
	assert_int_equal(c.server.port, 7300);
	assert_string_equal(c.server.token, "fromfile");
	assert_true(c.server.alert.prewarmingpoolthreshold == 0.5);
	assert_string_equal(c.nomad.address, "nomad.example");
	assert_true(c.nomad.tls.active);
	assert_string_equal(c.logger.level, "debug");
	assert_int_equal(c.redis.port, 6400);

	char *env[] = {"POSEIDON_SERVER_PORT=7400", "POSEIDON_SERVER_TOKEN=fromenv",
		       "POSEIDON_NOMAD_TLS_ACTIVE=false", "POSEIDON_SERVER_ALERT_PREWARMINGPOOLTHRESHOLD=0.25",
		       "POSEIDON_UNRELATED=1", "OTHER=2", NULL};
	assert_int_equal(config_apply_env(&c, env, &e), 0);
	assert_int_equal(c.server.port, 7400);
	assert_string_equal(c.server.token, "fromenv");
	assert_false(c.nomad.tls.active);
	assert_true(c.server.alert.prewarmingpoolthreshold == 0.25);
	assert_string_equal(c.nomad.address, "nomad.example"); /* untouched by env */
}

static void test_unknown_keys_and_nulls_are_ignored(void **state)
{
	(void)state;
	struct config c;
	struct perr e;
	write_file("aws:\n  enabled: false\n  functions: [a, b]\nsentry:\n  dsn: x\nserver:\n  token: ~\n"
		   "profiling:\n  cpu: true\n");
	config_defaults(&c);
	assert_int_equal(config_apply_file(&c, path, &e), 0);
	assert_string_equal(c.server.token, "");
}

static void test_bad_values_name_the_key(void **state)
{
	(void)state;
	struct config c;
	struct perr e;
	write_file("server:\n  port: seventy\n");
	config_defaults(&c);
	assert_int_equal(config_apply_file(&c, path, &e), -1);
	assert_non_null(strstr(e.msg, "server.port"));
	assert_non_null(strstr(e.msg, path));
	teardown(NULL);

	write_file("nomad:\n  port: 70000\n");
	config_defaults(&c);
	assert_int_equal(config_apply_file(&c, path, &e), -1);
	assert_non_null(strstr(e.msg, "nomad.port"));
	teardown(NULL);

	write_file("server: [1, 2\n");
	assert_int_equal(config_apply_file(&c, path, &e), -1);
	assert_non_null(strstr(e.msg, "line"));
	teardown(NULL);

	write_file("server:\n  port:\n    nested: 1\n");
	assert_int_equal(config_apply_file(&c, path, &e), -1);
	assert_non_null(strstr(e.msg, "server.port"));

	char *env1[] = {"POSEIDON_SERVER_INTERACTIVESTDERR=maybe", NULL};
	assert_int_equal(config_apply_env(&c, env1, &e), -1);
	assert_non_null(strstr(e.msg, "server.interactivestderr"));
	assert_non_null(strstr(e.msg, "POSEIDON_SERVER_INTERACTIVESTDERR"));
	char *env2[] = {"POSEIDON_LOGGER_LEVEL=loud", NULL};
	assert_int_equal(config_apply_env(&c, env2, &e), -1);
	assert_non_null(strstr(e.msg, "logger.level"));
	char *env3[] = {"POSEIDON_SERVER_ALERT_PREWARMINGPOOLTHRESHOLD=2", NULL};
	assert_int_equal(config_apply_env(&c, env3, &e), -1);
	char *env4[] = {"POSEIDON_REDIS_PORT=", NULL};
	assert_int_equal(config_apply_env(&c, env4, &e), -1);
	assert_int_equal(config_apply_file(&c, "/nonexistent/poseidon.yaml", &e), -1);
	assert_non_null(strstr(e.msg, "/nonexistent/poseidon.yaml"));
}

static void test_booleans_accept_go_and_yaml_spellings(void **state)
{
	(void)state;
	struct config c;
	struct perr e;
	config_defaults(&c);
	const char *yes[] = {"1", "t", "TRUE", "True", "yes", "on"};
	for (size_t i = 0; i < 6; i++) {
		c.nomad.tls.active = 0;
		assert_int_equal(config_set(&c, "nomad.tls.active", yes[i], "test", &e), 0);
		assert_true(c.nomad.tls.active);
	}
	assert_int_equal(config_set(&c, "nomad.tls.active", "F", "test", &e), 0);
	assert_false(c.nomad.tls.active);
	assert_int_equal(config_set(&c, "no.such.key", "1", "test", &e), 1);
}

static void test_config_path_from_args(void **state)
{
	(void)state;
	char *a1[] = {"prog", "-config", "/x.yaml", NULL};
	char *a2[] = {"prog", "--config=/y.yaml", NULL};
	char *a3[] = {"prog", "-other", NULL};
	assert_string_equal(config_path_from_args(3, a1), "/x.yaml");
	assert_string_equal(config_path_from_args(2, a2), "/y.yaml");
	assert_null(config_path_from_args(2, a3));
}

static void test_get_and_reference(void **state)
{
	(void)state;
	struct config c;
	char v[64];
	config_defaults(&c);
	assert_int_equal(config_get(&c, "server.port", v, sizeof v), 0);
	assert_string_equal(v, "7200");
	assert_int_equal(config_get(&c, "server.interactivestderr", v, sizeof v), 0);
	assert_string_equal(v, "true");
	assert_int_equal(config_get(&c, "nope", v, sizeof v), -1);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	config_write_reference(f);
	fclose(f);
	assert_non_null(strstr(buf, "| `server.token` | `POSEIDON_SERVER_TOKEN` |"));
	assert_non_null(strstr(buf, "`redis.prefix`"));
	free(buf);
}

/* docs/configuration.md carries the generated table; `make docs` refreshes it. */
static void test_documented_table_is_current(void **state)
{
	(void)state;
	char file[1024], *doc = NULL, *gen = NULL;
	size_t doclen = 0, genlen = 0;
	const char *src = getenv("POSEIDON_SRC_DIR");
	snprintf(file, sizeof file, "%s/docs/configuration.md", src && *src ? src : ".");
	FILE *f = fopen(file, "r");
	assert_non_null(f);
	FILE *d = open_memstream(&doc, &doclen);
	int c;
	while ((c = fgetc(f)) != EOF)
		fputc(c, d);
	fclose(f);
	fclose(d);
	FILE *g = open_memstream(&gen, &genlen);
	config_write_reference(g);
	fclose(g);
	if (!strstr(doc, gen))
		fprintf(stderr, "docs/configuration.md is out of date: run make docs\n");
	assert_non_null(strstr(doc, gen));
	free(doc);
	free(gen);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_defaults_match_the_reference, teardown),
		cmocka_unit_test_teardown(test_file_overrides_defaults_env_overrides_file, teardown),
		cmocka_unit_test_teardown(test_unknown_keys_and_nulls_are_ignored, teardown),
		cmocka_unit_test_teardown(test_bad_values_name_the_key, teardown),
		cmocka_unit_test_teardown(test_booleans_accept_go_and_yaml_spellings, teardown),
		cmocka_unit_test_teardown(test_config_path_from_args, teardown),
		cmocka_unit_test_teardown(test_get_and_reference, teardown),
		cmocka_unit_test(test_documented_table_is_current),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
