/* metrics: what a process records becomes the right hash fields, and fields (from any number of
 * processes) render as valid Prometheus text 0.0.4 and InfluxDB line protocol, with cumulative,
 * consistent histograms and bounded labels. No Redis here: see tests/integration/test_metrics.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

/* The pending batch as one array, and its rendering. */
struct batch {
	char **fields, **values;
	size_t n;
};

static void take(struct batch *b)
{
	metrics_take_pending(&b->fields, &b->values, &b->n);
}

static void drop(struct batch *b)
{
	store_metrics_free(b->fields, b->values, b->n);
	memset(b, 0, sizeof *b);
}

static const char *value_of(const struct batch *b, const char *field)
{
	for (size_t i = 0; i < b->n; i++)
		if (strcmp(b->fields[i], field) == 0)
			return b->values[i];
	return NULL;
}

static int setup(void **state)
{
	(void)state;
	struct batch b;
	take(&b); /* start from an empty batch */
	drop(&b);
	return 0;
}

/* The sample line `series value`, or NULL. */
static const char *sample(const char *text, const char *series)
{
	static char v[64];
	size_t n = strlen(series);
	for (const char *p = text; p && *p;) {
		const char *nl = strchr(p, '\n');
		if (strncmp(p, series, n) == 0 && p[n] == ' ') {
			size_t vl = (size_t)((nl ? nl : p + strlen(p)) - (p + n + 1));
			snprintf(v, sizeof v, "%.*s", (int)vl, p + n + 1);
			return v;
		}
		p = nl ? nl + 1 : NULL;
	}
	return NULL;
}

static void test_requests_become_a_counter_and_a_cumulative_histogram(void **state)
{
	(void)state;
	struct batch b;
	metrics_request("POST", "/api/v1/runners", 200, 0.0003);
	metrics_request("POST", "/api/v1/runners", 200, 0.002);
	metrics_request("POST", "/api/v1/runners", 200, 0.002);
	metrics_request("POST", "/api/v1/runners", 500, 20);
	take(&b);
	/* per bucket, not cumulative, in Redis */
	assert_string_equal(
	    value_of(&b,
	             "poseidon_http_request_duration_seconds{method=\"POST\",route=\"/api/v1/runners\"}#0"),
	    "1");
	assert_string_equal(
	    value_of(&b,
	             "poseidon_http_request_duration_seconds{method=\"POST\",route=\"/api/v1/runners\"}#2"),
	    "2");
	assert_string_equal(
	    value_of(&b,
	             "poseidon_http_request_duration_seconds{method=\"POST\",route=\"/api/v1/runners\"}#14"),
	    "1");
	assert_string_equal(
	    value_of(
	        &b, "poseidon_http_requests_total{method=\"POST\",route=\"/api/v1/runners\",status=\"200\"}"),
	    "3");
	const char *sum = value_of(
	    &b, "poseidon_http_request_duration_seconds{method=\"POST\",route=\"/api/v1/runners\"}#sum");
	assert_non_null(sum);
	assert_non_null(strchr(sum, '.')); /* a float: HINCRBYFLOAT */
	assert_true(strtod(sum, NULL) > 20.0042 && strtod(sum, NULL) < 20.0044);

	char *t = metrics_render_prometheus(b.fields, b.values, b.n, NULL, 0);
	const char *h =
	    "poseidon_http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/v1/runners\",le=";
	char s[256];
	struct {
		const char *le, *count;
	} want[] = {{"0.0005", "1"}, {"0.001", "1"}, {"0.0025", "3"}, {"0.005", "3"},
	            {"1", "3"},      {"10", "3"},    {"+Inf", "4"}};
	for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
		snprintf(s, sizeof s, "%s\"%s\"}", h, want[i].le);
		assert_non_null(sample(t, s));
		assert_string_equal(sample(t, s), want[i].count);
	}
	assert_string_equal(
	    sample(t,
	           "poseidon_http_request_duration_seconds_count{method=\"POST\",route=\"/api/v1/runners\"}"),
	    "4");
	assert_true(
	    strtod(sample(t, "poseidon_http_request_duration_seconds_sum{method=\"POST\",route=\"/api/v1/"
	                     "runners\"}"),
	           NULL) > 20.004);
	assert_string_equal(
	    sample(t,
	           "poseidon_http_requests_total{method=\"POST\",route=\"/api/v1/runners\",status=\"500\"}"),
	    "1");
	free(t);
	drop(&b);
}

static void test_batches_of_several_processes_add_up(void **state)
{
	(void)state;
	struct batch one, two;
	metrics_claim(7, 1);
	metrics_claim(7, 1);
	metrics_claim(7, 0);
	metrics_request("GET", "/api/v1/version", 200, 0.01);
	take(&one);
	metrics_claim(7, 1);
	metrics_request("GET", "/api/v1/version", 200, 0.5);
	take(&two);
	/* what HGETALL would give after both were added: here simply both lists */
	size_t n = one.n + two.n;
	char **f = calloc(n, sizeof *f), **v = calloc(n, sizeof *v);
	memcpy(f, one.fields, one.n * sizeof *f);
	memcpy(f + one.n, two.fields, two.n * sizeof *f);
	memcpy(v, one.values, one.n * sizeof *v);
	memcpy(v + one.n, two.values, two.n * sizeof *v);
	char *t = metrics_render_prometheus(f, v, n, NULL, 0);
	assert_string_equal(sample(t, "poseidon_runner_claims_total{environment_id=\"7\"}"), "3");
	assert_string_equal(sample(t, "poseidon_empty_pool_total{environment_id=\"7\"}"), "1");
	assert_string_equal(
	    sample(t,
	           "poseidon_http_request_duration_seconds_count{method=\"GET\",route=\"/api/v1/version\"}"),
	    "2");
	assert_string_equal(
	    sample(t, "poseidon_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/"
	              "version\",le=\"0.25\"}"),
	    "1");
	assert_string_equal(
	    sample(t, "poseidon_http_request_duration_seconds_sum{method=\"GET\",route=\"/api/v1/version\"}"),
	    "0.51");
	free(t);
	free(f);
	free(v);
	drop(&one);
	drop(&two);
}

static void test_labels_are_bounded_and_escaped(void **state)
{
	(void)state;
	struct batch b;
	metrics_request("BREW", NULL, 404, 0.001);         /* RFC 2324 */
	metrics_request("GET", "/a\"b\\c\nd", 999, 0.001); /* never a real route, but escaped all the same */
	metrics_execution_outcome(NULL, "exit");
	metrics_execution_outcome(NULL, "exit");
	metrics_execution_outcome(NULL, "whatever the gateway says");
	metrics_nomad_error(PERR_NOMAD_UNREACHABLE);
	metrics_nomad_error(PERR_NOMAD_OVERLOAD);
	metrics_nomad_error(PERR_NOMAD_INTERNAL);
	metrics_nomad_error(PERR_STORE);
	take(&b);
	assert_string_equal(
	    value_of(&b, "poseidon_http_requests_total{method=\"other\",route=\"unmatched\",status=\"404\"}"),
	    "1");
	assert_string_equal(
	    value_of(&b,
	             "poseidon_http_requests_total{method=\"GET\",route=\"/a\\\"b\\\\c\\nd\",status=\"0\"}"),
	    "1");
	assert_string_equal(value_of(&b, "poseidon_executions_total{outcome=\"exit\"}"), "2");
	assert_string_equal(value_of(&b, "poseidon_executions_total{outcome=\"other\"}"), "1");
	char *t = metrics_render_prometheus(b.fields, b.values, b.n, NULL, 0);
	assert_string_equal(sample(t, "poseidon_nomad_errors_total{kind=\"unreachable\"}"), "1");
	assert_string_equal(sample(t, "poseidon_nomad_errors_total{kind=\"overload\"}"), "1");
	assert_string_equal(sample(t, "poseidon_nomad_errors_total{kind=\"internal\"}"), "1");
	assert_string_equal(sample(t, "poseidon_nomad_errors_total{kind=\"other\"}"), "1");
	/* the escaped label survives the round trip through the parser */
	assert_string_equal(
	    sample(t,
	           "poseidon_http_request_duration_seconds_count{method=\"GET\",route=\"/a\\\"b\\\\c\\nd\"}"),
	    "1");
	free(t);
	drop(&b);
}

static void test_gauges_come_from_the_pools(void **state)
{
	(void)state;
	struct env_stats st[] = {{.id = 10, .prewarming_pool_size = 5, .idle = 3, .used = 2, .starting = 1},
	                         {.id = 2, .prewarming_pool_size = 1, .idle = 0, .used = 4, .starting = 0}};
	char *t = metrics_render_prometheus(NULL, NULL, 0, st, 2);
	assert_string_equal(sample(t, "poseidon_environments"), "2");
	assert_string_equal(sample(t, "poseidon_prewarming_pool_size{environment_id=\"10\"}"), "5");
	assert_string_equal(sample(t, "poseidon_runners{environment_id=\"10\",state=\"idle\"}"), "3");
	assert_string_equal(sample(t, "poseidon_runners{environment_id=\"10\",state=\"used\"}"), "2");
	assert_string_equal(sample(t, "poseidon_runners{environment_id=\"10\",state=\"starting\"}"), "1");
	assert_string_equal(sample(t, "poseidon_runners{environment_id=\"2\",state=\"used\"}"), "4");
	/* natural order: environment 2 before 10 */
	assert_true(strstr(t, "poseidon_prewarming_pool_size{environment_id=\"2\"}") <
	            strstr(t, "poseidon_prewarming_pool_size{environment_id=\"10\"}"));
	assert_string_equal(sample(t, "# TYPE poseidon_runners"), "gauge");
	free(t);
}

static void test_known_series_start_at_zero_and_unknown_fields_are_skipped(void **state)
{
	(void)state;
	char *f[] = {"poseidon_something_new_total{a=\"1\"}",
	             "poseidon_http_requests_total{a=\"1\"}#3",
	             "poseidon_http_request_duration_seconds{a=\"1\"}#99",
	             "poseidon_http_requests_total{a=\"1\"",
	             "poseidon_http_request_duration_seconds{a=\"1\"}",
	             "garbage"};
	char *v[] = {"5", "5", "5", "5", "5", "5"};
	char *t = metrics_render_prometheus(f, v, 6, NULL, 0);
	assert_null(strstr(t, "poseidon_something_new_total"));
	assert_null(strstr(t, "a=\"1\""));
	assert_string_equal(sample(t, "poseidon_executions_total{outcome=\"exit\"}"), "0");
	assert_string_equal(sample(t, "poseidon_executions_total{outcome=\"client_close\"}"), "0");
	assert_string_equal(sample(t, "poseidon_file_bytes_total{direction=\"upload\"}"), "0");
	assert_string_equal(sample(t, "poseidon_nomad_errors_total{kind=\"unreachable\"}"), "0");
	assert_string_equal(sample(t, "poseidon_nomad_event_stream_reconnects_total"), "0");
	assert_string_equal(sample(t, "poseidon_environments"), "0");
	assert_non_null(strstr(t, "# TYPE poseidon_http_request_duration_seconds histogram\n"));
	free(t);
}

/* Every line is a comment (HELP/TYPE, once per family, before its samples) or a sample
 * `name{label="value",...} number`, and the text ends with a newline (format 0.0.4). */
static void assert_valid_exposition(const char *t)
{
	char typed[64][96];
	int ntyped = 0;
	const char *p = t;
	assert_true(*t && t[strlen(t) - 1] == '\n');
	while (*p) {
		const char *nl = strchr(p, '\n');
		assert_non_null(nl);
		char line[1024];
		snprintf(line, sizeof line, "%.*s", (int)(nl - p), p);
		if (strncmp(line, "# TYPE ", 7) == 0) {
			char name[96], type[32];
			assert_int_equal(sscanf(line, "# TYPE %95s %31s", name, type), 2);
			for (int i = 0; i < ntyped; i++)
				assert_string_not_equal(typed[i], name);
			snprintf(typed[ntyped++], sizeof typed[0], "%s", name);
		} else if (strncmp(line, "# HELP ", 7) != 0) {
			const char *c = line;
			assert_true(isalpha((unsigned char)*c) || *c == '_');
			while (isalnum((unsigned char)*c) || *c == '_' || *c == ':')
				c++;
			char name[96];
			snprintf(name, sizeof name, "%.*s", (int)(c - line), line);
			/* the sample belongs to the family typed last */
			assert_true(ntyped > 0);
			assert_int_equal(strncmp(name, typed[ntyped - 1], strlen(typed[ntyped - 1])), 0);
			if (*c == '{') {
				c++;
				while (*c != '}') {
					while (isalnum((unsigned char)*c) || *c == '_')
						c++;
					assert_int_equal(*c++, '=');
					assert_int_equal(*c++, '"');
					while (*c != '"') {
						assert_true(*c && *c != '\n');
						c += *c == '\\' ? 2 : 1;
					}
					c++;
					if (*c == ',')
						c++;
					else
						assert_int_equal(*c, '}');
				}
				c++;
			}
			assert_int_equal(*c++, ' ');
			char *end;
			strtod(c, &end);
			assert_true(end > c && *end == '\0');
		}
		p = nl + 1;
	}
}

static void test_the_whole_text_is_valid_exposition_format(void **state)
{
	(void)state;
	struct batch b;
	struct env_stats st[] = {{.id = 1, .prewarming_pool_size = 2, .idle = 2}};
	metrics_request("GET", "/api/v1/runners/{runnerId}/files", 200, 0.3);
	metrics_request("PUT", "/api/v1/execution-environments/{id:int}", 201, 0.02);
	metrics_runner_startup(1, 1.5);
	metrics_runner_startup(1, 400);
	metrics_file_bytes(1, 1000);
	metrics_file_bytes(0, 10);
	metrics_event_stream_reconnect();
	take(&b);
	char *t = metrics_render_prometheus(b.fields, b.values, b.n, st, 1);
	assert_valid_exposition(t);
	assert_string_equal(
	    sample(t, "poseidon_runner_startup_seconds_bucket{environment_id=\"1\",le=\"2\"}"), "1");
	assert_string_equal(
	    sample(t, "poseidon_runner_startup_seconds_bucket{environment_id=\"1\",le=\"300\"}"), "1");
	assert_string_equal(
	    sample(t, "poseidon_runner_startup_seconds_bucket{environment_id=\"1\",le=\"+Inf\"}"), "2");
	assert_string_equal(sample(t, "poseidon_file_bytes_total{direction=\"upload\"}"), "1000");
	assert_string_equal(sample(t, "poseidon_file_bytes_total{direction=\"download\"}"), "10");
	assert_string_equal(sample(t, "poseidon_nomad_event_stream_reconnects_total"), "1");
	free(t);
	drop(&b);
}

static void test_influx_line_protocol(void **state)
{
	(void)state;
	struct batch b;
	struct env_stats st[] = {{.id = 4, .prewarming_pool_size = 3, .idle = 1, .used = 2}};
	metrics_request("GET", "/a b,c=d", 200, 0.002);
	metrics_request("GET", "/a b,c=d", 200, 3);
	take(&b);
	char *t = metrics_render_influx(b.fields, b.values, b.n, st, 1, "prod", 1700000000000000000LL);
	assert_non_null(strstr(
	    t, "poseidon_runners,environment_id=4,state=used,stage=prod value=2i 1700000000000000000\n"));
	assert_non_null(strstr(t, "poseidon_prewarming_pool_size,environment_id=4,stage=prod value=3i "));
	assert_non_null(
	    strstr(t, "poseidon_http_requests_total,method=GET,route=/a\\ b\\,c\\=d,status=200,stage=prod "
	              "value=2i "));
	assert_non_null(
	    strstr(t, "poseidon_http_request_duration_seconds,method=GET,route=/a\\ b\\,c\\=d,stage=prod "
	              "le_0.0005=0i,le_0.001=0i,le_0.0025=1i,"));
	assert_non_null(
	    strstr(t, ",le_2.5=1i,le_5=2i,le_10=2i,le_inf=2i,sum=3.002,count=2i 1700000000000000000\n"));
	assert_non_null(strstr(t, "poseidon_nomad_event_stream_reconnects_total,stage=prod value=0i "));
	/* without a stage there is no tag, and no stray comma */
	free(t);
	t = metrics_render_influx(b.fields, b.values, b.n, NULL, 0, "", 5);
	assert_non_null(strstr(t, "poseidon_nomad_event_stream_reconnects_total value=0i 5\n"));
	assert_non_null(strstr(t, "poseidon_environments value=0i 5\n"));
	free(t);
	drop(&b);
}

static void test_float_sums_always_look_like_floats(void **state)
{
	(void)state;
	struct batch b;
	metrics_runner_startup(9, 1.0);
	metrics_runner_startup(9, 1.0);
	take(&b);
	/* "2" would be sent with HINCRBY, which Redis refuses on a field that holds "0.5" */
	assert_string_equal(value_of(&b, "poseidon_runner_startup_seconds{environment_id=\"9\"}#sum"), "2.0");
	drop(&b);
}

#define THREADS    4
#define PER_THREAD 20000

static void *record(void *arg)
{
	(void)arg;
	for (int i = 0; i < PER_THREAD; i++)
		metrics_request("POST", "/api/v1/runners", 200, 0.0001 * (i % 50));
	return NULL;
}

static void test_recording_from_many_threads_loses_nothing(void **state)
{
	(void)state;
	pthread_t t[THREADS];
	struct batch b;
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, record, NULL);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	take(&b);
	char want[32];
	snprintf(want, sizeof want, "%d", THREADS * PER_THREAD);
	assert_string_equal(
	    value_of(
	        &b, "poseidon_http_requests_total{method=\"POST\",route=\"/api/v1/runners\",status=\"200\"}"),
	    want);
	char *text = metrics_render_prometheus(b.fields, b.values, b.n, NULL, 0);
	assert_string_equal(
	    sample(text,
	           "poseidon_http_request_duration_seconds_count{method=\"POST\",route=\"/api/v1/runners\"}"),
	    want);
	free(text);
	drop(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_requests_become_a_counter_and_a_cumulative_histogram, setup),
	    cmocka_unit_test_setup(test_batches_of_several_processes_add_up, setup),
	    cmocka_unit_test_setup(test_labels_are_bounded_and_escaped, setup),
	    cmocka_unit_test_setup(test_gauges_come_from_the_pools, setup),
	    cmocka_unit_test_setup(test_known_series_start_at_zero_and_unknown_fields_are_skipped, setup),
	    cmocka_unit_test_setup(test_the_whole_text_is_valid_exposition_format, setup),
	    cmocka_unit_test_setup(test_influx_line_protocol, setup),
	    cmocka_unit_test_setup(test_float_sums_always_look_like_floats, setup),
	    cmocka_unit_test_setup(test_recording_from_many_threads_loses_nothing, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
