/* log: logfmt shape, quoting, and that registered secrets never reach a line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "log.h"

static void test_line_shape_and_quoting(void **state)
{
	(void)state;
	char buf[512];
	const char *kv[] = {"runner", "0-abc", "error", "no such \"file\"", "empty", ""};
	int n = log_format(buf, sizeof buf, LOG_LEVEL_WARN, "copy failed", kv, 6);
	assert_int_equal(n, (int)strlen(buf));
	assert_int_equal(strncmp(buf, "time=", 5), 0);
	assert_non_null(strstr(buf, " level=warn "));
	assert_non_null(strstr(buf, " msg=\"copy failed\""));
	assert_non_null(strstr(buf, " runner=0-abc"));
	assert_non_null(strstr(buf, " error=\"no such \\\"file\\\"\""));
	assert_non_null(strstr(buf, " empty=\"\""));
	assert_int_equal(buf[n - 1], '\n');
	assert_true(strchr(buf, '\n') == buf + n - 1);
}

static void test_control_characters_are_escaped(void **state)
{
	(void)state;
	char buf[256];
	const char *kv[] = {"path", "a\nb\x01"};
	log_format(buf, sizeof buf, LOG_LEVEL_INFO, "m", kv, 2);
	assert_non_null(strstr(buf, "path=\"a\\nb\\x01\""));
}

static void test_secrets_are_redacted(void **state)
{
	(void)state;
	char buf[256];
	log_add_secret("s3cr3t-token");
	const char *kv[] = {"header", "Poseidon-Token: s3cr3t-token!", "token", "s3cr3t-token"};
	log_format(buf, sizeof buf, LOG_LEVEL_INFO, "got s3cr3t-token", kv, 4);
	assert_null(strstr(buf, "s3cr3t"));
	assert_non_null(strstr(buf, "[redacted]!"));
}

static void test_long_lines_are_cut_not_overflowed(void **state)
{
	(void)state;
	char buf[64], big[500];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	const char *kv[] = {"v", big};
	int n = log_format(buf, sizeof buf, LOG_LEVEL_ERROR, "m", kv, 2);
	assert_true(n < (int)sizeof buf);
	assert_non_null(strstr(buf, "...\n"));
}

static void test_levels(void **state)
{
	(void)state;
	enum log_level l;
	assert_int_equal(log_parse_level("DEBUG", &l), 0);
	assert_int_equal(l, LOG_LEVEL_DEBUG);
	assert_int_equal(log_parse_level("warning", &l), 0);
	assert_int_equal(l, LOG_LEVEL_WARN);
	assert_int_equal(log_parse_level("fatal", &l), 0);
	assert_int_equal(l, LOG_LEVEL_ERROR);
	assert_int_equal(log_parse_level("chatty", &l), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_shape_and_quoting),
		cmocka_unit_test(test_control_characters_are_escaped),
		cmocka_unit_test(test_secrets_are_redacted),
		cmocka_unit_test(test_long_lines_are_cut_not_overflowed),
		cmocka_unit_test(test_levels),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
