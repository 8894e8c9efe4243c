/* GET /metrics on the real stack (issue 7): Redis, nomad-local, poseidon-refill and two fronts
 * (lighttpd + workers) on the same Redis, as two machines would be. Front A requires the token;
 * front B has metrics.public and a Nomad address where nothing listens (its Nomad errors are
 * counted). Figures recorded by every worker of both fronts and by the refill daemon must add up
 * exactly; histograms must be cumulative and agree with their counters; pool gauges must agree with
 * /statistics; the refill daemon pushes the same figures to a fake InfluxDB run by this test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "metrics.h"
#include "store.h"

#define TOKEN     "metrics-test-token"
#define ENV       5 /* a pool of 3 */
#define ENV_EMPTY 6 /* a pool of 0: every claim finds it empty */
#define FLUSH_MS  100

static struct h_stack st, front_b;
static struct store *store;
static char url_a[128], url_b[128];
static const char *const auth[] = {"Poseidon-Token: " TOKEN, NULL};

/* ---- a fake InfluxDB: records the requests it receives ------------------------------------------ */

static struct {
	int fd, port, requests;
	char last[65536];
	pthread_mutex_t mu;
	pthread_t thread;
} influx = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void *influx_serve(void *arg)
{
	(void)arg;
	for (;;) {
		int c = accept(influx.fd, NULL, NULL);
		if (c < 0)
			return NULL;
		char buf[sizeof influx.last];
		size_t len = 0;
		long want = -1;
		for (;;) {
			ssize_t n = read(c, buf + len, sizeof buf - 1 - len);
			if (n <= 0)
				break;
			len += (size_t)n;
			buf[len] = '\0';
			char *end = strstr(buf, "\r\n\r\n");
			if (end && want < 0) {
				char *cl = strcasestr(buf, "\r\nContent-Length:");
				want = (long)(end + 4 - buf) + (cl && cl < end ? atol(cl + 17) : 0);
			}
			if (want >= 0 && (long)len >= want)
				break;
			if (len == sizeof buf - 1)
				break;
		}
		static const char answer[] =
		    "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
		if (write(c, answer, sizeof answer - 1) < 0)
			perror("influx write");
		close(c);
		pthread_mutex_lock(&influx.mu);
		memcpy(influx.last, buf, len + 1);
		influx.requests++;
		pthread_mutex_unlock(&influx.mu);
	}
}

static int influx_start(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	influx.fd = socket(AF_INET, SOCK_STREAM, 0);
	if (influx.fd < 0 || bind(influx.fd, (struct sockaddr *)&a, sizeof a) < 0 ||
	    listen(influx.fd, 16) < 0 || getsockname(influx.fd, (struct sockaddr *)&a, &len) < 0)
		return -1;
	influx.port = ntohs(a.sin_port);
	return pthread_create(&influx.thread, NULL, influx_serve, NULL) == 0 ? 0 : -1;
}

/* ---- the stack ------------------------------------------------------------------------------- */

static int setup(void **state)
{
	(void)state;
	static char influx_url[64], dead_nomad[64];
	if (influx_start() < 0)
		return -1;
	snprintf(influx_url, sizeof influx_url, "POSEIDON_INFLUXDB_URL=http://127.0.0.1:%d/", influx.port);
	const char *refill_env[] = {
	    "POSEIDON_RECONCILE_INTERVAL=5",         "POSEIDON_REFILL_TICKMS=100",
	    "POSEIDON_METRICS_FLUSHMS=100",          influx_url,
	    "POSEIDON_INFLUXDB_TOKEN=influx-secret", "POSEIDON_INFLUXDB_ORGANIZATION=the org",
	    "POSEIDON_INFLUXDB_BUCKET=poseidon",     "POSEIDON_INFLUXDB_STAGE=test",
	    "POSEIDON_INFLUXDB_INTERVAL=1",          NULL};
	const char *env_a[] = {"POSEIDON_METRICS_FLUSHMS=100", NULL};
	struct h_front_opts a = {.workers = 3, .token = TOKEN, .env = env_a};
	if (h_redis_start(&st.redis) < 0 || h_stack_start_nomad(&st) < 0 || h_stack_start(&st, &a) < 0 ||
	    h_stack_start_refill(&st, refill_env) < 0)
		return -1;
	/* front B: the same Redis, another set of workers, public metrics, and no Nomad */
	snprintf(dead_nomad, sizeof dead_nomad, "POSEIDON_NOMAD_PORT=%d", h_free_port());
	const char *env_b[] = {"POSEIDON_METRICS_FLUSHMS=100", "POSEIDON_METRICS_PUBLIC=true", dead_nomad,
	                       NULL};
	struct h_front_opts b = {.workers = 2, .token = TOKEN, .env = env_b};
	front_b.redis = st.redis;
	if (h_stack_start(&front_b, &b) < 0)
		return -1;
	snprintf(url_a, sizeof url_a, "http://127.0.0.1:%d/metrics", st.port);
	snprintf(url_b, sizeof url_b, "http://127.0.0.1:%d/metrics", front_b.port);

	store = h_stack_store(&st);

	char url[256];
	struct h_resp r;
	const char *envs[][2] = {
	    {"5", "{\"prewarmingPoolSize\":3,\"cpuLimit\":50,\"memoryLimit\":256,\"image\":\"img\"}"},
	    {"6", "{\"prewarmingPoolSize\":0,\"cpuLimit\":50,\"memoryLimit\":256,\"image\":\"img\"}"}};
	for (int i = 0; i < 2; i++) {
		snprintf(url, sizeof url, "%s/execution-environments/%s", st.base, envs[i][0]);
		if (h_http(&r, "PUT", url, envs[i][1], -1, auth) < 0 || r.status != 201)
			return -1;
		h_resp_free(&r);
	}
	for (int i = 0; i < 300 && atoi(h_redis_cli(&st.redis, "LLEN poseidon:pool:%d", ENV)) < 3; i++)
		h_sleep_ms(100);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	store_close(store);
	h_stop(front_b.lighttpd);
	h_stack_stop(&st);
	shutdown(influx.fd, SHUT_RDWR);
	close(influx.fd);
	pthread_join(influx.thread, NULL);
	return h_sanitizer_reports(st.rundir) + h_sanitizer_reports(front_b.rundir) == 0 ? 0 : -1;
}

/* ---- reading /metrics -------------------------------------------------------------------------- */

/* GET url (with the token unless public); the body, malloc'd. */
static char *scrape(const char *url, int with_token)
{
	struct h_resp r;
	assert_int_equal(h_http(&r, "GET", url, NULL, -1, with_token ? auth : NULL), 0);
	assert_int_equal(r.status, 200);
	char *body = r.body;
	r.body = NULL;
	h_resp_free(&r);
	return body;
}

/* The value of one series (the exact text before the space), or -1 when absent. */
static double value(const char *text, const char *series)
{
	size_t n = strlen(series);
	for (const char *p = text; p && *p;) {
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p = strchr(p, '\n');
		p = p ? p + 1 : NULL;
	}
	return -1;
}

static double value_a(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static double value_a(const char *fmt, ...)
{
	char series[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(series, sizeof series, fmt, ap);
	va_end(ap);
	char *t = scrape(url_a, 1);
	double v = value(t, series);
	free(t);
	return v;
}

/* Waits until the series reaches want (figures arrive within metrics.flushms), then checks it
 * stays there: nothing counted twice. */
static void assert_settles_at(const char *series, double want)
{
	double v = -1;
	for (int i = 0; i < 100 && (v = value_a("%s", series)) < want; i++)
		h_sleep_ms(50);
	h_sleep_ms(3 * FLUSH_MS);
	v = value_a("%s", series);
	if (v != want)
		fprintf(stderr, "%s: %g, expected %g\n", series, v, want);
	assert_true(v == want);
}

static long get(const char *url, const char *const *headers)
{
	struct h_resp r;
	assert_int_equal(h_http(&r, "GET", url, NULL, -1, headers), 0);
	long s = r.status;
	h_resp_free(&r);
	return s;
}

/* ---- tests ------------------------------------------------------------------------------------ */

struct load {
	const char *url;
	int n;
};

static void *hammer(void *arg)
{
	struct load *l = arg;
	for (int i = 0; i < l->n; i++)
		assert_int_equal(get(l->url, NULL), 200);
	return NULL;
}

static void test_counts_from_all_workers_of_both_fronts_add_up(void **state)
{
	(void)state;
	const char *series =
	    "poseidon_http_requests_total{method=\"GET\",route=\"/api/v1/version\",status=\"200\"}";
	double before = value_a("%s", series);
	if (before < 0)
		before = 0;
	char va[128], vb[128];
	snprintf(va, sizeof va, "%s/version", st.base);
	snprintf(vb, sizeof vb, "%s/version", front_b.base);
	/* 6 concurrent clients on front A (3 workers), 4 on front B (2 workers) */
	pthread_t t[10];
	struct load la = {va, 30}, lb = {vb, 20};
	for (int i = 0; i < 10; i++)
		pthread_create(&t[i], NULL, hammer, i < 6 ? &la : &lb);
	for (int i = 0; i < 10; i++)
		pthread_join(t[i], NULL);
	assert_settles_at(series, before + 6 * 30 + 4 * 20);
	/* both fronts show the same figures: they read the same Redis */
	char *a = scrape(url_a, 1), *b = scrape(url_b, 0);
	assert_true(value(a, series) == value(b, series));
	free(a);
	free(b);
}

/* Every histogram: le ascending, buckets non-decreasing, +Inf == _count, a _sum; and the request
 * durations count exactly the requests their counter counts. */
static void test_histograms_are_cumulative_and_consistent(void **state)
{
	(void)state;
	char *t = scrape(url_a, 1);
	int histograms = 0;
	for (const char *p = t; *p;) {
		const char *nl = strchr(p, '\n');
		char line[1024];
		snprintf(line, sizeof line, "%.*s", (int)(nl - p), p);
		p = nl + 1;
		char *b = strstr(line, "_bucket{");
		if (!b || line[0] == '#')
			continue;
		char *le = strstr(line, "le=\"");
		assert_non_null(le);
		if (strncmp(le, "le=\"+Inf\"", 9) != 0)
			continue;
		/* the last bucket of a series: walk its buckets again from the text */
		char name[128], labels[512], prefix[700];
		snprintf(name, sizeof name, "%.*s", (int)(b - line), line);
		snprintf(labels, sizeof labels, "%.*s", (int)(le - (b + 8)),
		         b + 8); /* with a trailing ',' or empty */
		snprintf(prefix, sizeof prefix, "%s_bucket{%s", name, labels);
		double prev_le = -1, prev = 0, inf = -1;
		int buckets = 0;
		for (const char *q = t; (q = strstr(q, prefix));) {
			const char *l = q + strlen(prefix);
			q = l;
			if (strncmp(l, "le=\"", 4) != 0)
				continue;
			double bound = strncmp(l + 4, "+Inf", 4) == 0 ? 1e300 : strtod(l + 4, NULL);
			double count = strtod(strchr(l, ' ') + 1, NULL);
			assert_true(bound > prev_le);
			assert_true(count >= prev);
			prev_le = bound, prev = count, buckets++;
			if (bound == 1e300)
				inf = count;
		}
		assert_true(buckets > 2);
		char series[700];
		size_t ll = strlen(labels);
		if (ll)
			labels[ll - 1] = '\0'; /* the ',' before le */
		snprintf(series, sizeof series, "%s_count%s%s%s", name, ll ? "{" : "", labels, ll ? "}" : "");
		assert_true(value(t, series) == inf);
		snprintf(series, sizeof series, "%s_sum%s%s%s", name, ll ? "{" : "", labels, ll ? "}" : "");
		assert_true(value(t, series) >= 0);
		if (strcmp(name, "poseidon_http_request_duration_seconds") == 0) {
			/* the sum of requests_total over all statuses for this method and route */
			double total = 0;
			char want[600];
			snprintf(want, sizeof want, "poseidon_http_requests_total{%s,status=", labels);
			for (const char *q = t; (q = strstr(q, want)); q++)
				total += strtod(strchr(q, ' ') + 1, NULL);
			if (total != inf)
				fprintf(stderr, "%s: %g requests, histogram counts %g\n", labels, total, inf);
			assert_true(total == inf);
		}
		histograms++;
	}
	assert_true(histograms >= 3); /* at least version, PUT environment, and runner startup */
	free(t);
}

static void test_token_applies_unless_metrics_are_public(void **state)
{
	(void)state;
	const char *wrong[] = {"Poseidon-Token: nope", NULL};
	char api_a[128], api_b[128];
	snprintf(api_a, sizeof api_a, "%s/metrics", st.base);
	snprintf(api_b, sizeof api_b, "%s/metrics", front_b.base);
	assert_int_equal(get(url_a, NULL), 401);
	assert_int_equal(get(url_a, wrong), 401);
	assert_int_equal(get(api_a, NULL), 401);
	assert_int_equal(get(url_a, auth), 200);
	assert_int_equal(get(api_a, auth), 200);
	assert_int_equal(get(url_b, NULL), 200); /* metrics.public */
	assert_int_equal(get(api_b, NULL), 200);
	assert_int_equal(get(url_b, wrong), 200);
	/* metrics.public opens /metrics only */
	char stats_b[128];
	snprintf(stats_b, sizeof stats_b, "%s/statistics/execution-environments", front_b.base);
	assert_int_equal(get(stats_b, NULL), 401);
	struct h_resp r;
	assert_int_equal(h_http(&r, "POST", url_a, "", 0, auth), 0);
	assert_int_equal(r.status, 405);
	h_resp_free(&r);
	assert_int_equal(h_http(&r, "GET", url_a, NULL, -1, auth), 0);
	char ct[128];
	assert_true(h_header(&r, "Content-Type", ct, sizeof ct));
	assert_string_equal(ct, "text/plain; version=0.0.4; charset=utf-8");
	h_resp_free(&r);
	/* the rejected scrapes are counted too, by route and status */
	assert_settles_at("poseidon_http_requests_total{method=\"GET\",route=\"/metrics\",status=\"401\"}",
	                  2);
	assert_settles_at("poseidon_http_requests_total{method=\"POST\",route=\"/metrics\",status=\"405\"}",
	                  1);
}

static long claim(int env)
{
	char url[256], body[64];
	struct h_resp r;
	snprintf(url, sizeof url, "%s/runners", st.base);
	snprintf(body, sizeof body, "{\"executionEnvironmentId\":%d,\"inactivityTimeout\":60}", env);
	assert_int_equal(h_http(&r, "POST", url, body, -1, auth), 0);
	long s = r.status;
	h_resp_free(&r);
	return s;
}

static void test_claims_and_empty_pools_are_counted(void **state)
{
	(void)state;
	assert_int_equal(claim(ENV), 200);
	assert_int_equal(claim(ENV), 200);
	assert_int_equal(claim(ENV_EMPTY), 500);
	assert_int_equal(claim(ENV_EMPTY), 500);
	assert_int_equal(claim(ENV_EMPTY), 500);
	assert_int_equal(claim(4242), 404); /* no such environment: neither */
	assert_settles_at("poseidon_runner_claims_total{environment_id=\"5\"}", 2);
	assert_settles_at("poseidon_empty_pool_total{environment_id=\"6\"}", 3);
	assert_true(value_a("poseidon_runner_claims_total{environment_id=\"6\"}") == -1);
	assert_true(value_a("poseidon_empty_pool_total{environment_id=\"4242\"}") == -1);
}

struct pools {
	long long size, idle, used;
};

static void assert_gauges_match_statistics(void)
{
	char url[256];
	snprintf(url, sizeof url, "%s/statistics/execution-environments", st.base);
	for (int attempt = 0; attempt < 50; attempt++) {
		/* statistics, metrics, statistics: compare when the pools did not move meanwhile */
		struct h_resp s1, s2;
		assert_int_equal(h_http(&s1, "GET", url, NULL, -1, auth), 0);
		char *t = scrape(url_a, 1);
		const char *starting = h_redis_cli(&st.redis, "SCARD poseidon:starting:%d", ENV);
		long long nstarting = atoll(starting);
		assert_int_equal(h_http(&s2, "GET", url, NULL, -1, auth), 0);
		int stable = strcmp(s1.body, s2.body) == 0;
		if (stable) {
			struct pools p[2] = {0};
			for (int i = 0; i < 2; i++) {
				char key[32];
				snprintf(key, sizeof key, "\"%d\":", i ? ENV_EMPTY : ENV);
				const char *o = strstr(s1.body, key);
				assert_non_null(o);
				assert_int_equal(sscanf(strstr(o, "\"prewarmingPoolSize\":"),
				                        "\"prewarmingPoolSize\":%lld", &p[i].size),
				                 1);
				assert_int_equal(
				    sscanf(strstr(o, "\"idleRunners\":"), "\"idleRunners\":%lld", &p[i].idle),
				    1);
				assert_int_equal(
				    sscanf(strstr(o, "\"usedRunners\":"), "\"usedRunners\":%lld", &p[i].used),
				    1);
				int env = i ? ENV_EMPTY : ENV;
				char series[128];
				snprintf(series, sizeof series,
				         "poseidon_prewarming_pool_size{environment_id=\"%d\"}", env);
				assert_true(value(t, series) == (double)p[i].size);
				snprintf(series, sizeof series,
				         "poseidon_runners{environment_id=\"%d\",state=\"idle\"}", env);
				assert_true(value(t, series) == (double)p[i].idle);
				snprintf(series, sizeof series,
				         "poseidon_runners{environment_id=\"%d\",state=\"used\"}", env);
				assert_true(value(t, series) == (double)p[i].used);
			}
			assert_true(value(t, "poseidon_environments") == 2);
			assert_true(p[0].size == 3 && p[0].used >= 2);
			stable = value(t, "poseidon_runners{environment_id=\"5\",state=\"starting\"}") ==
			         (double)nstarting;
		}
		h_resp_free(&s1);
		h_resp_free(&s2);
		free(t);
		if (stable)
			return;
		h_sleep_ms(100);
	}
	fail_msg("the pools never held still long enough to compare");
}

static void test_pool_gauges_match_statistics(void **state)
{
	(void)state;
	assert_gauges_match_statistics();
	/* and once the refill daemon has topped the pool up again */
	for (int i = 0; i < 100 && atoi(h_redis_cli(&st.redis, "LLEN poseidon:pool:%d", ENV)) < 3; i++)
		h_sleep_ms(100);
	assert_gauges_match_statistics();
	assert_true(value_a("poseidon_runners{environment_id=\"5\",state=\"idle\"}") == 3);
}

static void test_runner_startup_times_come_from_the_refill_daemon(void **state)
{
	(void)state;
	/* 3 runners at the start, 2 more after the claims above */
	double n = -1;
	for (int i = 0;
	     i < 100 && (n = value_a("poseidon_runner_startup_seconds_count{environment_id=\"5\"}")) < 5; i++)
		h_sleep_ms(50);
	assert_true(n >= 5);
	double sum = value_a("poseidon_runner_startup_seconds_sum{environment_id=\"5\"}");
	assert_true(sum > 0 && sum < n * 60); /* nomad-local starts a sandbox in well under a minute */
}

static void test_file_bytes_up_and_down(void **state)
{
	(void)state;
	char url[512], id[128];
	struct h_resp r;
	double up0 = value_a("poseidon_file_bytes_total{direction=\"upload\"}");
	double down0 = value_a("poseidon_file_bytes_total{direction=\"download\"}");
	snprintf(url, sizeof url, "%s/runners", st.base);
	assert_int_equal(
	    h_http(&r, "POST", url, "{\"executionEnvironmentId\":5,\"inactivityTimeout\":60}", -1, auth), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(sscanf(r.body, "{\"runnerId\":\"%127[^\"]\"", id), 1);
	h_resp_free(&r);
	/* "hello, metrics" (14 bytes) and "abc" (3) */
	snprintf(url, sizeof url, "%s/runners/%s/files", st.base, id);
	assert_int_equal(h_http(&r, "PATCH", url,
	                        "{\"copy\":[{\"path\":\"a.txt\",\"content\":\"aGVsbG8sIG1ldHJpY3M=\"},"
	                        "{\"path\":\"b.txt\",\"content\":\"YWJj\"}]}",
	                        -1, auth),
	                 0);
	assert_int_equal(r.status, 204);
	h_resp_free(&r);
	snprintf(url, sizeof url, "%s/runners/%s/files/raw?path=a.txt", st.base, id);
	assert_int_equal(h_http(&r, "GET", url, NULL, -1, auth), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.len, 14);
	h_resp_free(&r);
	assert_settles_at("poseidon_file_bytes_total{direction=\"upload\"}", up0 + 17);
	assert_settles_at("poseidon_file_bytes_total{direction=\"download\"}", down0 + 14);
}

static void test_nomad_errors_are_counted_by_kind(void **state)
{
	(void)state;
	double before = value_a("poseidon_nomad_errors_total{kind=\"unreachable\"}");
	char url[256];
	struct h_resp r;
	/* front B's workers have no Nomad: registering the template job fails */
	snprintf(url, sizeof url, "%s/execution-environments/77", front_b.base);
	assert_int_equal(
	    h_http(&r, "PUT", url,
	           "{\"prewarmingPoolSize\":0,\"cpuLimit\":50,\"memoryLimit\":256,\"image\":\"i\"}", -1,
	           auth),
	    0);
	assert_int_equal(r.status, 500);
	assert_non_null(strstr(r.body, "NOMAD_UNREACHABLE"));
	h_resp_free(&r);
	assert_settles_at("poseidon_nomad_errors_total{kind=\"unreachable\"}", before + 1);
	/* a Nomad answer the callers read as "not found" is no error */
	double internal = value_a("poseidon_nomad_errors_total{kind=\"internal\"}");
	snprintf(url, sizeof url, "%s/execution-environments/4243?fetch=true", st.base);
	assert_int_equal(h_http(&r, "GET", url, NULL, -1, auth), 0); /* reads template-4243 from Nomad: 404 */
	assert_int_equal(r.status, 404);
	h_resp_free(&r);
	h_sleep_ms(3 * FLUSH_MS);
	assert_true(value_a("poseidon_nomad_errors_total{kind=\"internal\"}") == internal);
}

static void test_execution_outcomes_from_the_gateway_function(void **state)
{
	(void)state;
	struct perr e;
	double exits = value_a("poseidon_executions_total{outcome=\"exit\"}");
	double timeouts = value_a("poseidon_executions_total{outcome=\"timeout\"}");
	double closes = value_a("poseidon_executions_total{outcome=\"client_close\"}");
	/* with a store: in Redis at once */
	assert_int_equal(metrics_execution_outcome(store, "exit"), 0);
	assert_int_equal(metrics_execution_outcome(store, "exit"), 0);
	assert_int_equal(metrics_execution_outcome(store, "timeout"), 0);
	assert_true(value_a("poseidon_executions_total{outcome=\"exit\"}") == exits + 2);
	assert_true(value_a("poseidon_executions_total{outcome=\"timeout\"}") == timeouts + 1);
	/* without: queued until this process flushes */
	assert_int_equal(metrics_execution_outcome(NULL, "client_close"), 0);
	assert_true(value_a("poseidon_executions_total{outcome=\"client_close\"}") == closes);
	assert_int_equal(metrics_flush(store, &e), 0);
	assert_true(value_a("poseidon_executions_total{outcome=\"client_close\"}") == closes + 1);
}

static void test_refill_pushes_line_protocol_to_influxdb(void **state)
{
	(void)state;
	char last[sizeof influx.last];
	int n = 0;
	for (int i = 0; i < 60 && n < 2; i++) {
		h_sleep_ms(100);
		pthread_mutex_lock(&influx.mu);
		n = influx.requests;
		memcpy(last, influx.last, sizeof last);
		pthread_mutex_unlock(&influx.mu);
	}
	assert_true(n >= 2); /* every second */
	assert_int_equal(
	    strncmp(last, "POST /api/v2/write?org=the%20org&bucket=poseidon&precision=ns HTTP/1.1\r\n", 72),
	    0);
	assert_non_null(strcasestr(last, "\r\nAuthorization: Token influx-secret\r\n"));
	assert_non_null(
	    strstr(last, "\nposeidon_prewarming_pool_size,environment_id=5,stage=test value=3i "));
	assert_non_null(strstr(last, "\nposeidon_runner_claims_total,environment_id=5,stage=test value="));
	assert_non_null(strstr(last,
	                       "\nposeidon_http_request_duration_seconds,method=GET,route=/api/v1/version,"
	                       "stage=test le_0.0005="));
}

static void test_event_stream_reconnects_are_counted(void **state)
{
	(void)state;
	double before = value_a("poseidon_nomad_event_stream_reconnects_total");
	assert_int_equal(h_stack_start_nomad(&st), 0); /* restarts nomad-local: the stream ends */
	double v = before;
	for (int i = 0; i < 200 && v <= before; i++) {
		h_sleep_ms(50);
		v = value_a("poseidon_nomad_event_stream_reconnects_total");
	}
	assert_true(v > before);
}

/* What the refill daemon did shows: its passes, the runners it created and made ready, its
 * reconciles. */
static void test_refill_activity_is_counted(void **state)
{
	(void)state;
	double passes = value_a("poseidon_refill_passes_total");
	assert_true(value_a("poseidon_refill_runner_events_total{event=\"created\"}") >= 3); /* ENV's pool */
	assert_true(value_a("poseidon_refill_runner_events_total{event=\"ready\"}") >= 3);
	assert_true(value_a("poseidon_refill_runner_events_total{event=\"adopted\"}") == 0); /* shown at 0 */
	double v = passes;
	for (int i = 0; i < 50 && v <= passes; i++) {
		h_sleep_ms(100);
		v = value_a("poseidon_refill_passes_total");
	}
	assert_true(v > passes);
	double ok = -1;
	for (int i = 0; i < 100 && (ok = value_a("poseidon_refill_reconciles_total{result=\"ok\"}")) < 1; i++)
		h_sleep_ms(100);
	assert_true(ok >= 1);
}

/* A Redis command that fails is counted: a store pointed at a port where nothing listens fails,
 * and the count reaches /metrics through the real Redis. */
static void test_redis_errors_are_counted(void **state)
{
	(void)state;
	double before = value_a("poseidon_redis_errors_total");
	struct config c;
	struct perr e;
	long long now;
	h_stack_config(&st, &c);
	c.redis.port = h_free_port();
	struct store *dead = store_open(&c);
	assert_non_null(dead);
	assert_int_equal(store_time_ms(dead, &now, &e), -1);
	store_close(dead);
	assert_int_equal(metrics_flush(store, &e), 0);
	assert_settles_at("poseidon_redis_errors_total", before + 1);
}

/* The metric names a file queries: every poseidon_* token, histogram suffixes taken off. */
static int names_in(const char *path, char names[][96], int max)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = fopen(path, "r");
	if (!f)
		fail_msg("%s: cannot open", path);
	int n = 0;
	assert_true(getdelim(&text, &len, '\0', f) > 0);
	fclose(f);
	for (const char *p = strstr(text, "poseidon_"); p && n < max; p = strstr(p, "poseidon_")) {
		size_t k = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_");
		char name[96];
		snprintf(name, sizeof name, "%.*s", (int)k, p);
		static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
		for (size_t s = 0; s < 3; s++) {
			size_t sl = strlen(suffixes[s]), nl = strlen(name);
			if (nl > sl && strcmp(name + nl - sl, suffixes[s]) == 0)
				name[nl - sl] = '\0';
		}
		int seen = 0;
		for (int i = 0; i < n; i++)
			seen |= strcmp(names[i], name) == 0;
		if (!seen)
			snprintf(names[n++], 96, "%s", name);
		p += k;
	}
	free(text);
	return n;
}

/* The Grafana dashboard and the alerting rules query only metrics that exist in /metrics, and
 * the dashboard shows every family there is; promtool (from Debian's prometheus package) accepts
 * the rules and their unit tests. */
static void test_dashboard_and_rules_query_metrics_that_exist(void **state)
{
	(void)state;
	char dash[1024], rules[1024], rtests[1024], names[64][96], cmd[4096];
	snprintf(dash, sizeof dash, "%s/deploy/grafana/poseidon.json", h_src_dir());
	snprintf(rules, sizeof rules, "%s/deploy/prometheus/poseidon-rules.yml", h_src_dir());
	snprintf(rtests, sizeof rtests, "%s/deploy/prometheus/poseidon-rules.test.yml", h_src_dir());
	json_object *d = json_object_from_file(dash);
	if (!d)
		fail_msg("%s is not JSON", dash);
	json_object *panels;
	assert_true(json_object_object_get_ex(d, "panels", &panels) && json_object_array_length(panels) >= 10);
	json_object_put(d);
	char *text = scrape(url_a, 1);
	int missing = 0;
	const char *files[] = {dash, rules};
	for (int f = 0; f < 2; f++) {
		int n = names_in(files[f], names, 64);
		assert_true(n >= (f == 0 ? 10 : 4));
		for (int i = 0; i < n; i++) {
			char type[160];
			snprintf(type, sizeof type, "# TYPE %s ", names[i]);
			if (!strstr(text, type)) {
				fprintf(stderr, "%s queries %s, which /metrics does not have\n", files[f], names[i]);
				missing++;
			}
		}
	}
	/* and the dashboard shows every family */
	int n = names_in(dash, names, 64);
	for (const char *p = strstr(text, "# TYPE "); p; p = strstr(p + 1, "# TYPE ")) {
		char fam[96];
		int shown = 0;
		if (sscanf(p, "# TYPE %95s", fam) != 1)
			continue;
		for (int i = 0; i < n; i++)
			shown |= strcmp(names[i], fam) == 0;
		if (!shown) {
			fprintf(stderr, "the dashboard does not show %s\n", fam);
			missing++;
		}
	}
	free(text);
	assert_int_equal(missing, 0);

	char promtool[1200];
	snprintf(promtool, sizeof promtool, "%s/../tools/promtool", h_bin_dir());
	if (access(promtool, X_OK) != 0)
		snprintf(promtool, sizeof promtool, "promtool");
	snprintf(cmd, sizeof cmd, "command -v %s >/dev/null", promtool);
	if (system(cmd) != 0) {
		printf("promtool not available (make fetches it from Debian's prometheus package): rules not checked\n");
		skip();
	}
	snprintf(cmd, sizeof cmd, "%s check rules %s && %s test rules %s", promtool, rules, promtool, rtests);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_counts_from_all_workers_of_both_fronts_add_up),
	    cmocka_unit_test(test_token_applies_unless_metrics_are_public),
	    cmocka_unit_test(test_claims_and_empty_pools_are_counted),
	    cmocka_unit_test(test_pool_gauges_match_statistics),
	    cmocka_unit_test(test_runner_startup_times_come_from_the_refill_daemon),
	    cmocka_unit_test(test_file_bytes_up_and_down),
	    cmocka_unit_test(test_nomad_errors_are_counted_by_kind),
	    cmocka_unit_test(test_execution_outcomes_from_the_gateway_function),
	    cmocka_unit_test(test_histograms_are_cumulative_and_consistent),
	    cmocka_unit_test(test_refill_pushes_line_protocol_to_influxdb),
	    cmocka_unit_test(test_event_stream_reconnects_are_counted),
	    cmocka_unit_test(test_refill_activity_is_counted),
	    cmocka_unit_test(test_redis_errors_are_counted),
	    cmocka_unit_test(test_dashboard_and_rules_query_metrics_that_exist),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
