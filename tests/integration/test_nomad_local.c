/* nomad-local against its own wire contract (tests/fixtures/nomad, docs/nomad-api.md): every
 * test starts its own agent on a free loopback port (harness_nomad) and talks to it over HTTP,
 * the event stream and the exec WebSocket exactly as Poseidon's Nomad client would. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "harness_nomad.h"
#include "nomad.h"
#include "nomad_events.h"

#define TIMEOUT_MS 10000

/* A recorded Nomad sample from tests/fixtures/nomad (see its README); a missing one fails the
 * test with its path. */
static char *sample(const char *name)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/tests/fixtures/nomad/%s", h_src_dir(), name);
	FILE *f = fopen(path, "r");
	if (!f)
		fail_msg("fixture %s: %s", path, strerror(errno));
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *s = calloc(1, (size_t)n + 1);
	if (fread(s, 1, (size_t)n, f) != (size_t)n) {
		free(s);
		s = NULL;
	}
	fclose(f);
	return s;
}

static struct h_resp req(struct h_nomad *n, const char *method, const char *path, const char *body)
{
	char url[2048];
	struct h_resp r;
	snprintf(url, sizeof url, "%s%s", n->url, path);
	assert_int_equal(h_http(&r, method, url, body, body ? -1 : 0, h_nomad_headers(n)), 0);
	return r;
}

static void assert_shape(const char *sample_name, const char *ours)
{
	char why[1024];
	char *s = sample(sample_name);
	assert_non_null(s);
	if (h_json_same_shape(s, ours, why, sizeof why) < 0)
		fail_msg("%s: %s", sample_name, why);
	free(s);
}

static void start(struct h_nomad *n) { assert_int_equal(h_nomad_start(n, NULL), 0); }

/* registers a runner-like job and returns its running allocation */
static void run_job(struct h_nomad *n, const char *id, int mem, const char *extra, char alloc[64])
{
	char *body = h_nomad_job(id, mem, extra);
	assert_int_equal(h_nomad_register(n, body, NULL), 200);
	free(body);
	assert_int_equal(h_nomad_wait_running(n, id, alloc, TIMEOUT_MS), 0);
}

/* next event line whose payload matches topic/type (skipping heartbeats and others) */
static json_object *next_event(struct h_stream *s, const char *topic, const char *type, int timeout_ms)
{
	long long end = h_now_ms() + timeout_ms;
	while (h_now_ms() < end) {
		char *line = h_stream_line(s, (int)(end - h_now_ms()));
		if (!line)
			return NULL;
		json_object *o = json_tokener_parse(line), *evs;
		free(line);
		if (o && json_object_object_get_ex(o, "Events", &evs)) {
			for (size_t i = 0; i < json_object_array_length(evs); i++) {
				json_object *e = json_object_array_get_idx(evs, i), *t, *ty;
				json_object_object_get_ex(e, "Topic", &t);
				json_object_object_get_ex(e, "Type", &ty);
				if (strcmp(json_object_get_string(t), topic) == 0 &&
				    (!type || strcmp(json_object_get_string(ty), type) == 0)) {
					json_object *copy = json_object_get(e);
					json_object_put(o);
					return copy;
				}
			}
		}
		json_object_put(o);
	}
	return NULL;
}

static json_object *payload(json_object *e, const char *key)
{
	json_object *p, *v;
	json_object_object_get_ex(e, "Payload", &p);
	return json_object_object_get_ex(p, key, &v) ? v : NULL;
}

static const char *str(json_object *o, const char *key)
{
	json_object *v;
	return o && json_object_object_get_ex(o, key, &v) && v ? json_object_get_string(v) : "";
}

static int process_running(const char *marker)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int found = 0;
	while (d && (de = readdir(d)) && !found) {
		char path[300], buf[512];
		snprintf(path, sizeof path, "/proc/%s/cmdline", de->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		size_t n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		for (size_t i = 0; i < n; i++)
			if (!buf[i])
				buf[i] = ' ';
		buf[n] = '\0';
		found = strstr(buf, marker) != NULL && strstr(buf, "bwrap") == NULL;
	}
	if (d)
		closedir(d);
	return found;
}

static char *runner_job_with_marker(const char *id, const char *marker)
{
	char *body = h_nomad_job(id, 200, "");
	char *p = strstr(body, "\"args\":[\"infinity\"]");
	assert_non_null(p);
	char *out;
	assert_true(asprintf(&out, "%.*s\"args\":[\"%s\"]%s", (int)(p - body), body, marker, p + 19) > 0);
	free(body);
	return out;
}

/* ---- the register flow on the event stream ---- */

static void test_register_sample_job_shows_pending_then_running(void **state)
{
	(void)state;
	struct h_nomad n;
	struct h_stream s;
	start(&n);
	assert_int_equal(h_stream_open(&s, n.port, "/v1/event/stream?index=0&namespace=default&topic=Job%3A%2A&topic=Evaluation%3A%2A&topic=Allocation%3A%2A", NULL), 200);
	char *first = h_stream_line(&s, TIMEOUT_MS);
	assert_string_equal(first, "{}");
	free(first);
	char *body = sample("job-register-request.json");
	char eval[64];
	assert_int_equal(h_nomad_register(&n, body, eval), 200);
	free(body);
	json_object *e = next_event(&s, "Job", "JobRegistered", TIMEOUT_MS);
	assert_non_null(e);
	assert_string_equal(str(payload(e, "Job"), "Status"), "pending");
	json_object_put(e);
	e = next_event(&s, "Evaluation", "JobRegistered", TIMEOUT_MS);
	assert_string_equal(str(payload(e, "Evaluation"), "ID"), eval);
	assert_string_equal(str(payload(e, "Evaluation"), "Status"), "pending");
	json_object_put(e);
	e = next_event(&s, "Allocation", "PlanResult", TIMEOUT_MS);
	assert_string_equal(str(payload(e, "Allocation"), "ClientStatus"), "pending");
	assert_string_equal(str(payload(e, "Allocation"), "DesiredStatus"), "run");
	assert_null(json_object_object_get_ex(payload(e, "Allocation"), "PreviousAllocation", NULL) ? e : NULL);
	json_object_put(e);
	e = next_event(&s, "Evaluation", "EvaluationUpdated", TIMEOUT_MS);
	assert_string_equal(str(payload(e, "Evaluation"), "Status"), "complete");
	assert_false(json_object_object_get_ex(payload(e, "Evaluation"), "FailedTGAllocs", NULL));
	json_object_put(e);
	e = next_event(&s, "Allocation", "AllocationUpdated", TIMEOUT_MS);
	assert_string_equal(str(payload(e, "Allocation"), "ClientStatus"), "pending");
	json_object_put(e);
	e = next_event(&s, "Allocation", "AllocationUpdated", TIMEOUT_MS);
	json_object *a = payload(e, "Allocation"), *ts, *t;
	assert_string_equal(str(a, "ClientStatus"), "running");
	assert_true(json_object_object_get_ex(a, "TaskStates", &ts));
	assert_true(json_object_object_get_ex(ts, "default-task", &t));
	assert_string_equal(str(t, "State"), "running");
	assert_true(strlen(str(t, "StartedAt")) > 10);
	json_object_put(e);
	h_stream_close(&s);
	h_nomad_stop(&n);
	h_nomad_cleanup(&n);
}

/* ---- shapes against every sample ---- */

static void check_events_against_sample(struct h_stream *s, int nlines)
{
	/* index the sample's events by Topic/Type/ClientStatus */
	char *all = sample("event-stream.ndjson");
	assert_non_null(all);
	int checked = 0;
	for (int i = 0; i < nlines; i++) {
		char *line = h_stream_line(s, 2000);
		if (!line)
			break;
		json_object *o = json_tokener_parse(line), *evs;
		if (o && json_object_object_get_ex(o, "Events", &evs)) {
			for (size_t k = 0; k < json_object_array_length(evs); k++) {
				json_object *e = json_object_array_get_idx(evs, k);
				char want[200];
				json_object *pa = payload(e, "Allocation"), *pe = payload(e, "Evaluation");
				snprintf(want, sizeof want, "\"Topic\":\"%s\",\"Type\":\"%s\"", str(e, "Topic"), str(e, "Type"));
				/* find the sample event of the same kind and state */
				for (char *ln = all; ln && *ln;) {
					char *nl = strchr(ln, '\n');
					if (nl)
						*nl = '\0';
					json_object *so = strstr(ln, want) ? json_tokener_parse(ln) : NULL, *sev;
					if (so && json_object_object_get_ex(so, "Events", &sev)) {
						for (size_t q = 0; q < json_object_array_length(sev); q++) {
							json_object *se = json_object_array_get_idx(sev, q);
							if (strcmp(str(se, "Topic"), str(e, "Topic")) ||
							    strcmp(str(se, "Type"), str(e, "Type")))
								continue;
							json_object *spa = payload(se, "Allocation"), *spe = payload(se, "Evaluation");
							if (pa && (strcmp(str(spa, "ClientStatus"), str(pa, "ClientStatus")) ||
								   strcmp(str(spa, "DesiredStatus"), str(pa, "DesiredStatus"))))
								continue;
							if (pe && (strcmp(str(spe, "Status"), str(pe, "Status")) ||
								   strcmp(str(spe, "TriggeredBy"), str(pe, "TriggeredBy"))))
								continue;
							char why[1024];
							const char *a = json_object_to_json_string(se);
							const char *b = json_object_to_json_string(e);
							if (h_json_same_shape(a, b, why, sizeof why) < 0)
								fail_msg("event %s: %s", want, why);
							checked++;
							break;
						}
					}
					json_object_put(so);
					if (nl)
						*nl = '\n';
					ln = nl ? nl + 1 : NULL;
				}
			}
		}
		json_object_put(o);
		free(line);
	}
	free(all);
	assert_true(checked >= 8);
}

/* The number of port mappings in the first stub of an allocation list (0 when it has no
 * AllocatedResources, as Nomad's stubs without resources=true). */
static int listed_ports(const char *body)
{
	json_object *arr = json_tokener_parse(body), *ar = NULL, *sh = NULL, *ports = NULL;
	assert_non_null(arr);
	assert_true(json_object_array_length(arr) > 0);
	json_object *a = json_object_array_get_idx(arr, 0);
	int n = 0;
	if (json_object_object_get_ex(a, "AllocatedResources", &ar) && ar &&
	    json_object_object_get_ex(ar, "Shared", &sh) && json_object_object_get_ex(sh, "Ports", &ports) && ports)
		n = (int)json_object_array_length(ports);
	json_object_put(arr);
	return n;
}

static void test_responses_have_the_samples_shapes(void **state)
{
	(void)state;
	struct h_nomad n;
	struct h_stream s;
	char alloc[64], why[512];
	start(&n);
	assert_int_equal(h_stream_open(&s, n.port, "/v1/event/stream?topic=Job&topic=Evaluation&topic=Allocation", NULL), 200);
	/* the template with a network (ports in AllocatedResources) */
	char *body = sample("job-register-request.json");
	struct h_resp r = req(&n, "PUT", "/v1/jobs", body);
	free(body);
	assert_int_equal(r.status, 200);
	assert_shape("job-register-response.json", r.body);
	h_resp_free(&r);
	assert_int_equal(h_nomad_wait_running(&n, "template-10", alloc, TIMEOUT_MS), 0);
	r = req(&n, "GET", "/v1/job/template-10", NULL);
	assert_shape("job-read-response.json", r.body);
	h_resp_free(&r);
	r = req(&n, "GET", "/v1/jobs?prefix=template", NULL);
	assert_shape("jobs-list-response-template.json", r.body);
	h_resp_free(&r);
	r = req(&n, "GET", "/v1/jobs?prefix=nothing-", NULL);
	assert_string_equal(r.body, "[]");
	h_resp_free(&r);
	r = req(&n, "GET", "/v1/job/template-10/allocations?all=false", NULL);
	assert_shape("job-allocations-response.json", r.body);
	h_resp_free(&r);
	r = req(&n, "GET", "/v1/allocations", NULL);
	assert_shape("allocations-list-response.json", r.body);
	assert_int_equal(listed_ports(r.body), 0);
	h_resp_free(&r);
	/* stubs carry the port mappings only when asked, and a job's list never (Stub(nil)) */
	r = req(&n, "GET", "/v1/allocations?resources=true", NULL);
	assert_int_equal(listed_ports(r.body), 1);
	h_resp_free(&r);
	r = req(&n, "GET", "/v1/job/template-10/allocations?resources=true", NULL);
	assert_int_equal(listed_ports(r.body), 0);
	h_resp_free(&r);
	char path[256];
	snprintf(path, sizeof path, "/v1/allocation/%s", alloc);
	r = req(&n, "GET", path, NULL);
	assert_shape("allocation-read-response.json", r.body);
	json_object *ao = json_tokener_parse(r.body), *ar, *sh, *ports, *p0;
	assert_true(json_object_object_get_ex(ao, "AllocatedResources", &ar));
	assert_true(json_object_object_get_ex(ar, "Shared", &sh));
	assert_true(json_object_object_get_ex(sh, "Ports", &ports));
	p0 = json_object_array_get_idx(ports, 0);
	assert_string_equal(str(p0, "HostIP"), "127.0.0.1");
	assert_int_equal(atoi(str(p0, "To")), 8080);
	int hostport = atoi(str(p0, "Value"));
	assert_true(hostport >= 20000 && hostport < 32000);
	assert_int_equal(h_wait_port(hostport, 2000), 0); /* forwarded into the sandbox */
	json_object_put(ao);
	h_resp_free(&r);
	r = req(&n, "GET", "/v1/node/", NULL);
	h_resp_free(&r);
	r = req(&n, "GET", "/v1/nodes", NULL);
	json_object *nodes = json_tokener_parse(r.body);
	char nodepath[128];
	snprintf(nodepath, sizeof nodepath, "/v1/node/%s", str(json_object_array_get_idx(nodes, 0), "ID"));
	json_object_put(nodes);
	h_resp_free(&r);
	r = req(&n, "GET", nodepath, NULL);
	assert_int_equal(r.status, 200);
	assert_shape("node-read-response.json", r.body);
	h_resp_free(&r);
	/* a runner, claimed: Meta update through a read-modify-write of the whole job */
	run_job(&n, "10-0e5fb0f4-8a1d-11f0-8d3c-0242ac120002", 256,
		"\"Networks\":[{\"Mode\":\"bridge\",\"DynamicPorts\":[{\"Label\":\"8080\",\"To\":8080}]}]", alloc);
	r = req(&n, "GET", "/v1/jobs?prefix=10-", NULL);
	assert_shape("jobs-list-response.json", r.body);
	h_resp_free(&r);
	r = req(&n, "GET", "/v1/job/10-0e5fb0f4-8a1d-11f0-8d3c-0242ac120002", NULL);
	char *claimed = strstr(r.body, "\"used\":\"false\"");
	assert_non_null(claimed);
	memcpy(claimed, "\"used\":\"true\" ", 14);
	char *put;
	assert_true(asprintf(&put, "{\"Job\":%s}", r.body) > 0);
	h_resp_free(&r);
	r = req(&n, "PUT", "/v1/jobs", put);
	free(put);
	assert_int_equal(r.status, 200);
	h_resp_free(&r);
	r = req(&n, "GET", "/v1/job/10-0e5fb0f4-8a1d-11f0-8d3c-0242ac120002", NULL);
	assert_shape("job-read-response-runner.json", r.body);
	assert_non_null(strstr(r.body, "\"Version\":1"));
	h_resp_free(&r);
	r = req(&n, "DELETE", "/v1/job/10-0e5fb0f4-8a1d-11f0-8d3c-0242ac120002?purge=true", NULL);
	assert_shape("job-deregister-response.json", r.body);
	h_resp_free(&r);
	r = req(&n, "DELETE", "/v1/job/no-such-job?purge=true", NULL);
	char *unknown = sample("job-deregister-response-unknown-job.json");
	json_object *x = json_tokener_parse(unknown), *y = json_tokener_parse(r.body);
	assert_true(json_object_equal(x, y));
	json_object_put(x);
	json_object_put(y);
	free(unknown);
	h_resp_free(&r);
	h_sleep_ms(500);
	check_events_against_sample(&s, 40);
	(void)why;
	h_stream_close(&s);
	h_nomad_stop(&n);
	h_nomad_cleanup(&n);
}

/* ---- resuming the event stream ---- */

struct followed {
	int events, registered_b;
	long long lowest, quiet_from;
};

static int on_followed(void *ud, const struct nomad_event *ev)
{
	struct followed *f = ud;
	f->events++;
	if (!f->lowest || ev->index < f->lowest)
		f->lowest = ev->index;
	if (strcmp(ev->topic, "Job") == 0 && strcmp(ev->key, "10-resume-b") == 0)
		f->registered_b = 1;
	f->quiet_from = h_now_ms();
	return 0;
}

static int quiet_for_a_second(void *ud)
{
	struct followed *f = ud;
	return h_now_ms() - f->quiet_from > 1000;
}

/* Nomad starts a stream at the batch whose index was asked for (StartAtClosest), so a client
 * that resumes after batch L asks for L+1 and skips what it already handled: nothing twice. */
static void test_a_resumed_event_stream_delivers_nothing_twice(void **state)
{
	(void)state;
	struct h_nomad n;
	char alloc[64];
	start(&n);
	run_job(&n, "10-resume-a", 40, "", alloc);
	struct nomad_endpoint ep = {.port = n.port};
	snprintf(ep.host, sizeof ep.host, "127.0.0.1");
	snprintf(ep.namespace, sizeof ep.namespace, "default");
	snprintf(ep.token, sizeof ep.token, "%s", n.token);
	static const char *const topics[] = {"Job:*", "Allocation:*", "Evaluation:*", NULL};
	struct perr e;
	long long last = 0;
	struct followed f = {.quiet_from = h_now_ms()};
	struct nomad_stream_opts o = {.topics = topics, .should_stop = quiet_for_a_second};
	assert_int_equal(nomad_events_follow(&ep, &o, on_followed, &f, &last, &e), 0);
	assert_true(f.events > 0);
	assert_true(last > 0);
	/* the wire: asked for index L, the stream starts with batch L itself */
	struct h_stream s;
	char q[128];
	snprintf(q, sizeof q, "/v1/event/stream?index=%lld", last);
	assert_int_equal(h_stream_open(&s, n.port, q, n.token[0] ? n.token : NULL), 200);
	long long first = 0;
	for (long long end = h_now_ms() + 3000; !first && h_now_ms() < end;) {
		char *line = h_stream_line(&s, 1000);
		json_object *lo = line ? json_tokener_parse(line) : NULL, *ix;
		if (lo && json_object_object_get_ex(lo, "Index", &ix))
			first = json_object_get_int64(ix);
		json_object_put(lo);
		free(line);
	}
	h_stream_close(&s);
	assert_int_equal(first, last);
	/* resumed with nothing new: nothing */
	long long before = last;
	struct followed g = {.quiet_from = h_now_ms()};
	o.index = last;
	assert_int_equal(nomad_events_follow(&ep, &o, on_followed, &g, &last, &e), 0);
	if (g.events)
		fail_msg("resumed after index %lld, %d events came again (lowest index %lld)", before, g.events, g.lowest);
	/* resumed after something new: only the new */
	char *body = h_nomad_job("10-resume-b", 40, "");
	assert_int_equal(h_nomad_register(&n, body, NULL), 200);
	free(body);
	struct followed k = {.quiet_from = h_now_ms()};
	o.index = last;
	assert_int_equal(nomad_events_follow(&ep, &o, on_followed, &k, &last, &e), 0);
	assert_true(k.registered_b);
	assert_true(k.lowest > before);
	h_nomad_stop(&n);
	h_nomad_cleanup(&n);
}

/* ---- exec ---- */

static void test_exec_frames_without_tty(void **state)
{
	(void)state;
	struct h_nomad n;
	struct h_exec x;
	char alloc[64];
	start(&n);
	run_job(&n, "10-exec", 200, "", alloc);
	assert_int_equal(h_nomad_exec(&n, alloc, "[\"/bin/bash\",\"-c\",\"echo hi; echo err >&2; exit 3\"]", 0, NULL, 0, &x), 0);
	assert_string_equal(x.out, "hi\n");
	assert_string_equal(x.err, "err\n");
	assert_int_equal(x.exit_code, 3);
	assert_true(x.stdout_closed && x.stderr_closed);
	/* exact frames: data, both closes, exit last; then a TCP close without a close frame */
	assert_non_null(strstr(x.frames, "{\"stdout\":{\"data\":\"aGkK\"}}\n"));
	assert_non_null(strstr(x.frames, "{\"stderr\":{\"data\":\"ZXJyCg==\"}}\n"));
	const char *tail = strstr(x.frames, "{\"exited\":true,\"result\":{\"exit_code\":3}}\n");
	assert_non_null(tail);
	assert_int_equal(strlen(tail), strlen("{\"exited\":true,\"result\":{\"exit_code\":3}}\n"));
	assert_true(strstr(x.frames, "{\"stdout\":{\"close\":true}}") < tail);
	assert_true(strstr(x.frames, "{\"stderr\":{\"close\":true}}") < tail);
	assert_int_equal(x.close_code, 0);
	assert_true(x.tcp_closed);
	h_exec_free(&x);
	/* exit 0 leaves exit_code out */
	assert_int_equal(h_nomad_exec(&n, alloc, "[\"true\"]", 0, NULL, 0, &x), 0);
	assert_non_null(strstr(x.frames, "{\"exited\":true,\"result\":{}}\n"));
	h_exec_free(&x);
	/* stdin reaches the process and its close is EOF */
	assert_int_equal(h_nomad_exec(&n, alloc, "[\"cat\"]", 0, "print(1)\n", 1, &x), 0);
	assert_string_equal(x.out, "print(1)\n");
	assert_int_equal(x.exit_code, 0);
	h_exec_free(&x);
	/* the task's environment with NOMAD_ variables, cwd /workspace */
	assert_int_equal(h_nomad_exec(&n, alloc, "[\"/bin/sh\",\"-c\",\"echo $NOMAD_ALLOC_ID $NOMAD_TASK_NAME; pwd\"]", 0, NULL, 0, &x), 0);
	char want[256];
	snprintf(want, sizeof want, "%s default-task\n/workspace\n", alloc);
	assert_string_equal(x.out, want);
	h_exec_free(&x);
	h_nomad_stop(&n);
	h_nomad_cleanup(&n);
}

static void test_exec_frames_with_tty(void **state)
{
	(void)state;
	struct h_nomad n;
	struct h_exec x;
	char alloc[64];
	start(&n);
	run_job(&n, "10-tty", 200, "", alloc);
	assert_int_equal(h_nomad_exec(&n, alloc, "[\"/bin/bash\",\"-c\",\"echo hi; echo err >&2; exit 3\"]", 1, NULL, 0, &x), 0);
	/* a pty: stderr merged into stdout, CRLF line ends */
	assert_string_equal(x.out, "hi\r\nerr\r\n");
	assert_string_equal(x.err, "");
	assert_int_equal(x.exit_code, 3);
	assert_true(x.stdout_closed && x.stderr_closed);
	assert_non_null(strstr(x.frames, "{\"exited\":true,\"result\":{\"exit_code\":3}}\n"));
	assert_true(x.tcp_closed);
	h_exec_free(&x);
	assert_int_equal(h_nomad_exec(&n, alloc, "[\"/bin/sh\",\"-c\",\"tty >/dev/null && echo isatty; echo $TERM\"]", 1, NULL, 0, &x), 0);
	assert_string_equal(x.out, "isatty\r\nxterm\r\n");
	h_exec_free(&x);
	h_nomad_stop(&n);
	h_nomad_cleanup(&n);
}

static void test_exec_errors_are_nomads(void **state)
{
	(void)state;
	struct h_nomad n;
	struct h_exec x;
	struct h_ws w;
	char alloc[64], body[1024];
	start(&n);
	run_job(&n, "10-err", 200, "", alloc);
	assert_int_equal(h_nomad_exec(&n, "d3c4b5a6-7e8f-4091-a2b3-c4d5e6f7a8b9", "[\"true\"]", 0, NULL, 0, &x), 0);
	assert_int_equal(x.close_code, 1008);
	assert_string_equal(x.close_reason, "Unknown allocation \"d3c4b5a6-7e8f-4091-a2b3-c4d5e6f7a8b9\"");
	h_exec_free(&x);
	assert_int_equal(h_nomad_exec(&n, alloc, "[]", 0, NULL, 0, &x), 0);
	assert_int_equal(x.close_code, 1008);
	assert_string_equal(x.close_reason, "command is not present");
	h_exec_free(&x);
	char path[512];
	snprintf(path, sizeof path, "/v1/client/allocation/%s/exec?task=default-task&tty=false", alloc);
	assert_int_equal(h_ws_connect(&w, n.port, path, NULL, body, sizeof body), 500);
	assert_string_equal(body, "failed to marshal command into json: unexpected end of JSON input");
	h_ws_close(&w);
	snprintf(path, sizeof path, "/v1/client/allocation/%s/exec?command=%%5B%%22true%%22%%5D&task=default-task&tty=x", alloc);
	assert_int_equal(h_ws_connect(&w, n.port, path, NULL, body, sizeof body), 500);
	assert_string_equal(body, "tty value is not a boolean: strconv.ParseBool: parsing \"x\": invalid syntax");
	h_ws_close(&w);
	snprintf(path, sizeof path, "/v1/client/allocation/%s/exec?command=%%5B%%22true%%22%%5D&tty=false", alloc);
	assert_int_equal(h_ws_connect(&w, n.port, path, NULL, body, sizeof body), 101);
	char *p;
	size_t l;
	assert_int_equal(h_ws_recv(&w, 5000, &p, &l), 8);
	assert_string_equal(p + 2, "must provide task name");
	free(p);
	h_ws_close(&w);
	/* a finished allocation */
	struct h_resp r = req(&n, "DELETE", "/v1/job/10-err?purge=true", NULL);
	h_resp_free(&r);
	h_sleep_ms(300);
	assert_int_equal(h_nomad_exec(&n, alloc, "[\"true\"]", 0, NULL, 0, &x), 0);
	assert_int_equal(x.close_code, 1008);
	char want[200];
	snprintf(want, sizeof want, "exec not possible, client status of allocation %s is complete", alloc);
	assert_string_equal(x.close_reason, want);
	h_exec_free(&x);
	h_nomad_stop(&n);
	h_nomad_cleanup(&n);
}

/* ---- the sandbox ---- */

static void test_file_written_as_root_is_read_as_user(void **state)
{
	(void)state;
	struct h_nomad n;
	struct h_exec x;
	char alloc[64];
	start(&n);
	run_job(&n, "10-user", 200, "", alloc);
	assert_int_equal(h_nomad_exec(&n, alloc, "[\"/bin/sh\",\"-c\",\"id -u; echo secret > /workspace/f\"]", 0, NULL, 0, &x), 0);
	assert_string_equal(x.out, "0\n");
	assert_int_equal(x.exit_code, 0);
	h_exec_free(&x);
	assert_int_equal(h_nomad_exec(&n, alloc, "[\"/sbin/setuser\",\"user\",\"/bin/sh\",\"-c\",\"id -un; id -u; cat /workspace/f; touch /workspace/mine && echo wrote; touch /etc/x 2>/dev/null || echo ro\"]", 0, NULL, 0, &x), 0);
	/* an unprivileged uid, the user's name, the root-written file readable, /workspace
	 * writable, the root read-only */
	char name[64];
	int uid = -1;
	char rest[256];
	assert_int_equal(sscanf(x.out, "%63s %d %255[^$]", name, &uid, rest), 3);
	assert_string_equal(name, "user");
	assert_true(uid >= 1000);
	assert_string_equal(rest, "secret\nwrote\nro\n");
	h_exec_free(&x);
	/* the sandbox sees only its own processes */
	assert_int_equal(h_nomad_exec(&n, alloc, "[\"/bin/sh\",\"-c\",\"ls /proc | grep -c '^[0-9]'\"]", 0, NULL, 0, &x), 0);
	assert_true(atoi(x.out) <= 5);
	h_exec_free(&x);
	h_nomad_stop(&n);
	h_nomad_cleanup(&n);
}

/* Programs start as in a container, with every signal at its default and none blocked, even
 * when the agent itself was started with signals ignored and blocked (a shell's `cmd &` ignores
 * SIGINT and SIGQUIT): the task's own process and exec sessions, with and without a tty. */
static void test_programs_start_with_default_signals(void **state)
{
	(void)state;
	struct h_nomad n;
	struct h_exec x;
	char alloc[64];
	struct sigaction ign = {.sa_handler = SIG_IGN}, old_int, old_quit;
	sigset_t block, old_mask;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaction(SIGINT, &ign, &old_int);
	sigaction(SIGQUIT, &ign, &old_quit);
	sigprocmask(SIG_BLOCK, &block, &old_mask);
	start(&n); /* inherits both */
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGQUIT, &old_quit, NULL);
	sigprocmask(SIG_SETMASK, &old_mask, NULL);
	run_job(&n, "10-signals", 200, "", alloc);
	/* every process in the sandbox (the task's sleep, this shell, grep) but bwrap's own init,
	 * which reaps orphans with SIGCHLD blocked, as a container's init may */
	const char *cmd = "[\"/bin/sh\",\"-c\",\"for s in /proc/[0-9]*/status; do grep -q "
			  "'^Name:.bwrap' $s || grep -h -e SigIgn -e SigBlk $s; done | sort | uniq -c\"]";
	/* A process caught between a fork and its exec (glibc blocks every signal there) may show
	 * up in one scan; a program that starts with a wrong disposition or mask shows in every
	 * scan. So: three scans at most, one clean scan passes. */
	for (int tty = 0; tty <= 1; tty++) {
		char last[2048] = "";
		int clean = 0;
		for (int attempt = 0; attempt < 3 && !clean; attempt++) {
			assert_int_equal(h_nomad_exec(&n, alloc, cmd, tty, NULL, 0, &x), 0);
			assert_int_equal(x.exit_code, 0);
			/* SigIgn lines must all be zero, SigBlk lines too: one line each after uniq */
			const char *p = x.out;
			int lines = 0, bad = 0;
			while ((p = strstr(p, "Sig")) != NULL) {
				bad |= strncmp(p, "SigIgn:\t0000000000000000", 24) != 0 &&
				       strncmp(p, "SigBlk:\t0000000000000000", 24) != 0;
				p += 3;
				lines++;
			}
			clean = !bad && lines == 2;
			snprintf(last, sizeof last, "%s", x.out);
			h_exec_free(&x);
		}
		if (!clean)
			fail_msg("tty %d: a process starts with signals ignored or blocked:\n%s", tty, last);
	}
	h_nomad_stop(&n);
	h_nomad_cleanup(&n);
}

static void test_no_network_inside(void **state)
{
	(void)state;
	struct h_nomad n;
	struct h_exec x;
	char alloc[64], cmd[512];
	start(&n);
	run_job(&n, "10-nonet", 200, "", alloc);
	/* only loopback, and the agent's port on the host's loopback is not reachable */
	snprintf(cmd, sizeof cmd,
		 "[\"/bin/bash\",\"-c\",\"grep -c : /proc/net/dev; (echo > /dev/tcp/127.0.0.1/%d) 2>/dev/null && echo reached || echo unreachable\"]",
		 n.port);
	assert_int_equal(h_nomad_exec(&n, alloc, cmd, 0, NULL, 0, &x), 0);
	assert_string_equal(x.out, "1\nunreachable\n");
	h_exec_free(&x);
	h_nomad_stop(&n);
	h_nomad_cleanup(&n);
}

/* A program that closes its terminal on the way out (head does) ends with its own exit code:
 * the pty is not hung up under it (it was, with SIGHUP, in about one run of three). */
static void test_tty_program_that_closes_its_terminal_exits_normally(void **state)
{
	(void)state;
	struct h_nomad n;
	struct h_exec x;
	char alloc[64];
	start(&n);
	run_job(&n, "10-tty-close", 100, "", alloc);
	for (int i = 0; i < 30; i++) {
		assert_int_equal(h_nomad_exec(&n, alloc, "[\"/bin/sh\",\"-c\",\"exec head -n 1\"]", 1, "Hello World!\n", 0, &x), 0);
		assert_int_equal(x.exit_code, 0);
		assert_non_null(x.out);
		assert_string_equal(x.out, "Hello World!\r\nHello World!\r\n");
		h_exec_free(&x);
	}
	h_nomad_stop(&n);
	h_nomad_cleanup(&n);
}

static void test_exec_memory_hog_is_killed_and_the_task_goes_on(void **state)
{
	(void)state;
	struct h_nomad n;
	struct h_exec x;
	char alloc[64];
	start(&n);
	run_job(&n, "10-exec-oom", 40, "", alloc);
	/* the kernel kills the largest process of the allocation's cgroup: the exec'd one (WS-13) */
	assert_int_equal(h_nomad_exec(&n, alloc, "[\"/bin/sh\",\"-c\",\"tail /dev/zero; echo after $?\"]", 0, NULL, 0, &x), 0);
	assert_int_equal(x.exit_code, 0);
	assert_non_null(x.out);
	assert_non_null(strstr(x.out, "after 137"));
	h_exec_free(&x);
	assert_int_equal(h_nomad_exec(&n, alloc, "[\"/bin/sh\",\"-c\",\"exec tail /dev/zero\"]", 0, NULL, 0, &x), 0);
	assert_int_equal(x.exit_code, 137);
	h_exec_free(&x);
	/* the task was not touched */
	char path[128];
	snprintf(path, sizeof path, "/v1/allocation/%s", alloc);
	struct h_resp r = req(&n, "GET", path, NULL);
	assert_int_equal(r.status, 200);
	json_object *o = json_tokener_parse(r.body), *ts, *t;
	h_resp_free(&r);
	assert_string_equal(str(o, "ClientStatus"), "running");
	assert_true(json_object_object_get_ex(o, "TaskStates", &ts) && json_object_object_get_ex(ts, "default-task", &t));
	assert_int_equal(atoi(str(t, "Restarts")), 0);
	json_object_put(o);
	assert_int_equal(h_nomad_exec(&n, alloc, "[\"/bin/true\"]", 0, NULL, 0, &x), 0);
	assert_int_equal(x.exit_code, 0);
	h_exec_free(&x);
	h_nomad_stop(&n);
	h_nomad_cleanup(&n);
}

static void test_memory_hog_is_oom_killed_and_reported(void **state)
{
	(void)state;
	struct h_nomad n;
	struct h_exec x;
	struct h_stream s;
	char alloc[64];
	start(&n);
	/* the task's main process is the hog: the task ends OOM-killed and restarts */
	char *body = h_nomad_job("10-oom", 40, "");
	char *cmd = strstr(body, "\"command\":\"sleep\",\"args\":[\"infinity\"]");
	assert_non_null(cmd);
	static const char hog[] = "\"command\":\"/bin/sh\",\"args\":[\"-c\",\"sleep 2; exec tail /dev/zero\"]";
	size_t oldlen = strlen("\"command\":\"sleep\",\"args\":[\"infinity\"]");
	char *job = NULL;
	assert_true(asprintf(&job, "%.*s%s%s", (int)(cmd - body), body, hog, cmd + oldlen) > 0);
	free(body);
	assert_int_equal(h_nomad_register(&n, job, NULL), 200);
	free(job);
	assert_int_equal(h_nomad_wait_running(&n, "10-oom", alloc, TIMEOUT_MS), 0);
	assert_int_equal(h_stream_open(&s, n.port, "/v1/event/stream?topic=Allocation", NULL), 200);
	/* an exec'd process that goes down with the task reports 128, as Nomad's does */
	assert_int_equal(h_nomad_exec(&n, alloc, "[\"/bin/sleep\",\"30\"]", 0, NULL, 0, &x), 0);
	assert_int_equal(x.exit_code, 128);
	h_exec_free(&x);
	json_object *e = NULL;
	for (;;) {
		e = next_event(&s, "Allocation", "AllocationUpdated", TIMEOUT_MS);
		assert_non_null(e);
		json_object *ts0, *t0;
		/* the stream replays from the oldest event: skip the first start's pending */
		if (strcmp(str(payload(e, "Allocation"), "ClientStatus"), "pending") == 0 &&
		    json_object_object_get_ex(payload(e, "Allocation"), "TaskStates", &ts0) &&
		    json_object_object_get_ex(ts0, "default-task", &t0) && atoi(str(t0, "Restarts")) > 0)
			break;
		json_object_put(e);
	}
	json_object *ts, *t, *evs;
	json_object_object_get_ex(payload(e, "Allocation"), "TaskStates", &ts);
	json_object_object_get_ex(ts, "default-task", &t);
	assert_int_equal(atoi(str(t, "Restarts")), 1);
	json_object_object_get_ex(t, "Events", &evs);
	int oom = 0, restarting = 0;
	for (size_t i = 0; i < json_object_array_length(evs); i++) {
		json_object *ev = json_object_array_get_idx(evs, i), *d;
		json_object_object_get_ex(ev, "Details", &d);
		if (strcmp(str(ev, "Type"), "Terminated") == 0 && strcmp(str(d, "oom_killed"), "true") == 0 &&
		    strcmp(str(d, "exit_code"), "137") == 0)
			oom++;
		if (strcmp(str(ev, "Type"), "Restarting") == 0)
			restarting++;
	}
	assert_int_equal(oom, 1);
	assert_int_equal(restarting, 1);
	json_object_put(e);
	/* restart policy: running again after the 1 s delay */
	e = next_event(&s, "Allocation", "AllocationUpdated", TIMEOUT_MS);
	assert_string_equal(str(payload(e, "Allocation"), "ClientStatus"), "running");
	json_object_put(e);
	h_stream_close(&s);
	h_nomad_stop(&n);
	h_nomad_cleanup(&n);
}

static void test_purge_ends_processes_and_emits_events(void **state)
{
	(void)state;
	struct h_nomad n;
	struct h_stream s;
	char alloc[64];
	start(&n);
	char *body = runner_job_with_marker("10-purge", "86400.4242");
	assert_int_equal(h_nomad_register(&n, body, NULL), 200);
	free(body);
	assert_int_equal(h_nomad_wait_running(&n, "10-purge", alloc, TIMEOUT_MS), 0);
	/* the task's process shows up right around its "running" (a loaded machine may lag) */
	for (int i = 0; i < 40 && !process_running("sleep 86400.4242"); i++)
		h_sleep_ms(50);
	if (!process_running("sleep 86400.4242"))
		system("ps -eo pid,stat,args | grep -v grep | grep 86400 >&2");
	assert_true(process_running("sleep 86400.4242"));
	assert_int_equal(h_stream_open(&s, n.port, "/v1/event/stream?topic=Job&topic=Evaluation&topic=Allocation", NULL), 200);
	h_sleep_ms(100);
	struct h_resp r = req(&n, "DELETE", "/v1/job/10-purge?purge=true", NULL);
	assert_int_equal(r.status, 200);
	h_resp_free(&r);
	json_object *e = next_event(&s, "Job", "JobDeregistered", TIMEOUT_MS);
	assert_non_null(e);
	json_object_put(e);
	e = next_event(&s, "Allocation", "PlanResult", TIMEOUT_MS);
	assert_string_equal(str(payload(e, "Allocation"), "DesiredStatus"), "stop");
	assert_string_equal(str(payload(e, "Allocation"), "DesiredDescription"), "alloc not needed due to job update");
	json_object_put(e);
	e = next_event(&s, "Allocation", "AllocationUpdated", TIMEOUT_MS);
	assert_string_equal(str(payload(e, "Allocation"), "ClientStatus"), "complete");
	json_object_put(e);
	for (int i = 0; i < 40 && process_running("sleep 86400.4242"); i++)
		h_sleep_ms(50);
	assert_false(process_running("sleep 86400.4242"));
	r = req(&n, "GET", "/v1/job/10-purge", NULL);
	assert_int_equal(r.status, 404);
	assert_string_equal(r.body, "job not found");
	h_resp_free(&r);
	h_stream_close(&s);
	h_nomad_stop(&n);
	h_nomad_cleanup(&n);
}

static void test_meta_change_of_config_group_restarts_nothing(void **state)
{
	(void)state;
	struct h_nomad n;
	struct h_exec x;
	char alloc[64], alloc2[64];
	start(&n);
	run_job(&n, "10-meta", 200, "", alloc);
	assert_int_equal(h_nomad_exec(&n, alloc, "[\"/bin/sh\",\"-c\",\"echo kept > /workspace/k\"]", 0, NULL, 0, &x), 0);
	h_exec_free(&x);
	struct h_resp r = req(&n, "GET", "/v1/job/10-meta", NULL);
	char *p = strstr(r.body, "\"used\":\"false\"");
	assert_non_null(p);
	memcpy(p, "\"used\":\"true\" ", 14);
	char *put;
	assert_true(asprintf(&put, "{\"Job\":%s}", r.body) > 0);
	h_resp_free(&r);
	r = req(&n, "PUT", "/v1/jobs", put);
	free(put);
	assert_int_equal(r.status, 200);
	h_resp_free(&r);
	h_sleep_ms(300);
	assert_int_equal(h_nomad_wait_running(&n, "10-meta", alloc2, TIMEOUT_MS), 0);
	assert_string_equal(alloc, alloc2);
	assert_int_equal(h_nomad_exec(&n, alloc, "[\"cat\",\"/workspace/k\"]", 0, NULL, 0, &x), 0);
	assert_string_equal(x.out, "kept\n");
	h_exec_free(&x);
	r = req(&n, "GET", "/v1/job/10-meta/allocations", NULL);
	json_object *arr = json_tokener_parse(r.body), *ts, *t;
	assert_int_equal(json_object_array_length(arr), 1);
	json_object_object_get_ex(json_object_array_get_idx(arr, 0), "TaskStates", &ts);
	json_object_object_get_ex(ts, "default-task", &t);
	assert_int_equal(atoi(str(t, "Restarts")), 0);
	json_object_put(arr);
	h_resp_free(&r);
	h_nomad_stop(&n);
	h_nomad_cleanup(&n);
}

/* PUT /v1/jobs with EnforceIndex registers only over the job as the writer read it, with Nomad's
 * three refusals (500, plain text); a purged job is never created again by a stale writer. */
static void register_enforced(struct h_nomad *n, const char *job_body, unsigned long long index, int want_status,
			      const char *want_text)
{
	json_object *o = json_tokener_parse(job_body);
	assert_non_null(o);
	json_object_object_add(o, "EnforceIndex", json_object_new_boolean(1));
	json_object_object_add(o, "JobModifyIndex", json_object_new_int64((int64_t)index));
	struct h_resp r = req(n, "PUT", "/v1/jobs", json_object_to_json_string(o));
	json_object_put(o);
	if (r.status != want_status || (want_text && strcmp(r.body, want_text) != 0))
		fail_msg("EnforceIndex %llu: %ld %s, expected %d %s", index, r.status, r.body, want_status,
			 want_text ? want_text : "");
	h_resp_free(&r);
}

static unsigned long long modify_index(struct h_nomad *n, const char *id)
{
	char path[128];
	snprintf(path, sizeof path, "/v1/job/%s", id);
	struct h_resp r = req(n, "GET", path, NULL);
	assert_int_equal(r.status, 200);
	json_object *o = json_tokener_parse(r.body), *v;
	assert_true(json_object_object_get_ex(o, "JobModifyIndex", &v));
	unsigned long long m = (unsigned long long)json_object_get_int64(v);
	json_object_put(o);
	h_resp_free(&r);
	return m;
}

static void test_enforce_index_registers_only_over_the_job_as_read(void **state)
{
	(void)state;
	struct h_nomad n;
	char text[256];
	start(&n);
	char *body = h_nomad_job("11-cas", 64, "");
	/* index 0: only while the job does not exist */
	register_enforced(&n, body, 0, 200, NULL);
	unsigned long long m = modify_index(&n, "11-cas");
	register_enforced(&n, body, 0, 500, "Enforcing job modify index 0: job already exists");
	snprintf(text, sizeof text, "Enforcing job modify index %llu: job exists with conflicting job modify index: %llu",
		 m + 7, m);
	register_enforced(&n, body, m + 7, 500, text);
	/* over the index read: accepted, and a change moves the index on */
	char *changed = h_nomad_job("11-cas", 96, "");
	register_enforced(&n, changed, m, 200, NULL);
	unsigned long long m2 = modify_index(&n, "11-cas");
	assert_true(m2 > m);
	snprintf(text, sizeof text, "Enforcing job modify index %llu: job exists with conflicting job modify index: %llu",
		 m, m2);
	register_enforced(&n, body, m, 500, text);
	/* purged: a writer holding the last index read must not bring it back */
	struct h_resp r = req(&n, "DELETE", "/v1/job/11-cas?purge=true", NULL);
	assert_int_equal(r.status, 200);
	h_resp_free(&r);
	snprintf(text, sizeof text, "Enforcing job modify index %llu: job does not exist", m2);
	register_enforced(&n, changed, m2, 500, text);
	r = req(&n, "GET", "/v1/job/11-cas", NULL);
	assert_int_equal(r.status, 404);
	h_resp_free(&r);

	/* our client: nomad_job_register_over says the same */
	struct config cfg;
	struct nomad_endpoint ep;
	config_defaults(&cfg);
	cfg.nomad.port = n.port;
	nomad_endpoint_from_config(&ep, &cfg);
	struct nomad *c = nomad_open(&ep);
	assert_non_null(c);
	json_object *job = json_tokener_parse(changed), *inner;
	assert_true(json_object_object_get_ex(job, "Job", &inner));
	struct perr e;
	assert_int_equal(nomad_job_register_over(c, inner, m2, NULL, &e), 1); /* refused: not an error */
	assert_non_null(strstr(e.msg, "job does not exist"));
	assert_int_equal(nomad_job_register_over(c, inner, 0, NULL, &e), 0);
	assert_int_equal(modify_index(&n, "11-cas") > m2, 1);
	json_object_put(job);
	nomad_close(c);
	free(body);
	free(changed);
	h_nomad_stop(&n);
	h_nomad_cleanup(&n);
}

static void test_restart_finds_job_and_allocation(void **state)
{
	(void)state;
	struct h_nomad n;
	struct h_exec x;
	char alloc[64], alloc2[64], dead[64];
	start(&n);
	run_job(&n, "10-survivor", 200, "", alloc);
	char *body = runner_job_with_marker("10-victim", "86400.5151");
	assert_int_equal(h_nomad_register(&n, body, NULL), 200);
	free(body);
	assert_int_equal(h_nomad_wait_running(&n, "10-victim", dead, TIMEOUT_MS), 0);
	assert_int_equal(h_nomad_exec(&n, alloc, "[\"/bin/sh\",\"-c\",\"echo before > /workspace/b\"]", 0, NULL, 0, &x), 0);
	h_exec_free(&x);
	h_nomad_stop(&n);
	/* the sandboxes outlive the agent; one dies while it is down */
	assert_true(process_running("sleep 86400.5151"));
	system("pkill -KILL -f 'sleep 86400.5151'");
	h_sleep_ms(200);
	assert_int_equal(h_nomad_restart(&n), 0);
	struct h_resp r = req(&n, "GET", "/v1/job/10-survivor", NULL);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"Status\":\"running\""));
	h_resp_free(&r);
	assert_int_equal(h_nomad_wait_running(&n, "10-survivor", alloc2, TIMEOUT_MS), 0);
	assert_string_equal(alloc, alloc2);
	assert_int_equal(h_nomad_exec(&n, alloc, "[\"cat\",\"/workspace/b\"]", 0, NULL, 0, &x), 0);
	assert_string_equal(x.out, "before\n");
	h_exec_free(&x);
	char path[256];
	snprintf(path, sizeof path, "/v1/allocation/%s", dead);
	r = req(&n, "GET", path, NULL);
	assert_non_null(strstr(r.body, "\"ClientStatus\":\"failed\""));
	h_resp_free(&r);
	h_nomad_stop(&n);
	h_nomad_cleanup(&n);
}

/* A numeric field of /proc/<pid>/stat (22 = starttime). */
static unsigned long long stat_field(int pid, int field)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')') + 2;
	for (int i = 3; i < field; i++)
		p = strchr(p, ' ') + 1;
	return strtoull(p, NULL, 10);
}

/* Sandboxes are known by pid and start time, so that a reused pid is never taken for one: the
 * recorded start times are the processes' own (they were 0 once, which made every pid match
 * and made -cleanup wait half a second per sandbox for processes that were long gone). */
static void test_sandboxes_are_recorded_by_pid_and_start_time_and_cleaned_up_fast(void **state)
{
	(void)state;
	struct h_nomad n;
	char alloc[3][64], id[32], path[1200];
	start(&n);
	for (int i = 0; i < 3; i++) {
		snprintf(id, sizeof id, "10-recorded-%d", i);
		run_job(&n, id, 200, "", alloc[i]);
	}
	h_nomad_stop(&n);
	snprintf(path, sizeof path, "%s/allocs/%s.json", n.state, alloc[0]);
	json_object *saved = json_object_from_file(path), *rt, *sb, *v;
	assert_non_null(saved);
	assert_true(json_object_object_get_ex(saved, "Runtime", &rt) && json_object_object_get_ex(rt, "Sandbox", &sb));
	static const char *procs[][2] = {{"BwrapPid", "BwrapStart"}, {"InitPid", "InitStart"}};
	int pid = 0;
	for (int i = 0; i < 2; i++) {
		assert_true(json_object_object_get_ex(sb, procs[i][0], &v));
		pid = json_object_get_int(v);
		assert_true(json_object_object_get_ex(sb, procs[i][1], &v));
		unsigned long long recorded = (unsigned long long)json_object_get_int64(v);
		assert_true(recorded > 0);
		assert_true(recorded == stat_field(pid, 22));
	}
	json_object_put(saved);
	long long t0 = h_now_ms();
	h_nomad_cleanup(&n);
	long long ms = h_now_ms() - t0;
	printf("cleanup of 3 sandboxes: %lld ms\n", ms);
	assert_true(ms < 1000);
	/* the init process is gone (or a zombie waiting for its reaper) */
	char proc[64], st[256] = "";
	snprintf(proc, sizeof proc, "/proc/%d/stat", pid);
	FILE *f = fopen(proc, "r");
	if (f) {
		if (!fgets(st, sizeof st, f))
			st[0] = '\0';
		fclose(f);
	}
	assert_true(!f || (strrchr(st, ')') && strrchr(st, ')')[2] == 'Z'));
}

/* While an agent ends a runner with a huge workspace, its loop keeps answering: the files were
 * once removed from the host's disk by the agent itself, synchronously (a million of them held
 * every API request, exec stream and the event stream for 17 s); now they are in the runner's
 * tmpfs, which the kernel frees with the sandbox. */
struct prober {
	struct h_nomad *n;
	volatile int stop;
	double worst_ms;
	int probes;
};

static void *probe_agent(void *arg)
{
	struct prober *p = arg;
	char url[200];
	snprintf(url, sizeof url, "%s/v1/agent/self", p->n->url);
	while (!p->stop) {
		struct h_resp r;
		if (h_http(&r, "GET", url, NULL, 0, NULL) == 0) {
			if (r.seconds * 1000 > p->worst_ms)
				p->worst_ms = r.seconds * 1000;
			h_resp_free(&r);
		}
		p->probes++;
		h_sleep_ms(20);
	}
	return NULL;
}

static void test_ending_a_runner_with_many_files_does_not_stall_the_agent(void **state)
{
	(void)state;
	struct h_nomad n;
	struct h_exec x;
	char alloc[64];
	start(&n);
	run_job(&n, "10-many-files", 2048, "", alloc);
	assert_int_equal(h_nomad_exec(&n, alloc,
				      "[\"/bin/bash\",\"-c\",\"cd /workspace && seq -f f%07g 400000 | xargs touch && "
				      "ls -f | wc -l\"]",
				      0, NULL, 0, &x),
			 0);
	assert_string_equal(x.out, "400002\n");
	h_exec_free(&x);
	struct prober p = {.n = &n};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, probe_agent, &p), 0);
	h_sleep_ms(200);
	struct h_resp r = req(&n, "DELETE", "/v1/job/10-many-files?purge=true", NULL);
	assert_int_equal(r.status, 200);
	h_resp_free(&r);
	h_sleep_ms(2500);
	p.stop = 1;
	pthread_join(t, NULL);
	printf("agent answers while a runner with 400000 files ends: worst %.0f ms of %d probes\n", p.worst_ms, p.probes);
	fflush(stdout);
	assert_true(p.probes > 10);
	assert_true(p.worst_ms < 1500); /* the removal on the host took 17 s for a million files */
	h_nomad_stop(&n);
	h_nomad_cleanup(&n);
}

/* A tree deeper than PATH_MAX in a runner's workspace goes with the runner: a restarted task
 * starts with an empty workspace, and once the allocation is gone so is its directory on the
 * host (such trees once outlived their allocation on the host for good). */
static void test_deep_trees_go_with_their_runner(void **state)
{
	(void)state;
	struct h_nomad n;
	struct h_exec x;
	char alloc[64], alloc2[64], dir[1200];
	start(&n);
	run_job(&n, "10-deep", 200, "", alloc);
	assert_int_equal(h_nomad_exec(&n, alloc,
				      "[\"/bin/bash\",\"-c\",\"cd /workspace && n=$(printf %0200d 0) && "
				      "for i in $(seq 60); do mkdir $n && cd $n || exit 1; done && pwd | wc -c\"]",
				      0, NULL, 0, &x),
			 0);
	assert_int_equal(x.exit_code, 0);
	assert_true(atoi(x.out) > 12000); /* far beyond PATH_MAX */
	h_exec_free(&x);
	/* the task's own process dies: the restarted task has a fresh workspace */
	assert_int_equal(h_nomad_exec(&n, alloc, "[\"/bin/sh\",\"-c\",\"pkill -KILL -x sleep\"]", 0, NULL, 0, &x), 0);
	h_exec_free(&x);
	for (int i = 0; i < 100; i++) {
		h_sleep_ms(100);
		if (h_nomad_exec(&n, alloc, "[\"/bin/sh\",\"-c\",\"ls -A /workspace | wc -l\"]", 0, NULL, 0, &x) == 0 &&
		    x.exited && x.exit_code == 0 && !strcmp(x.out, "0\n")) {
			h_exec_free(&x);
			break;
		}
		h_exec_free(&x);
		assert_true(i < 99);
	}
	assert_int_equal(h_nomad_wait_running(&n, "10-deep", alloc2, TIMEOUT_MS), 0);
	assert_string_equal(alloc, alloc2);
	struct h_resp r = req(&n, "DELETE", "/v1/job/10-deep?purge=true", NULL);
	h_resp_free(&r);
	snprintf(dir, sizeof dir, "%s/alloc/%s", n.state, alloc);
	for (int i = 0; i < 100 && access(dir, F_OK) == 0; i++)
		h_sleep_ms(100);
	assert_int_equal(access(dir, F_OK), -1);
	h_nomad_stop(&n);
	h_nomad_cleanup(&n);
}

/* An agent runs at most -max-allocations sandboxes (a client that keeps registering jobs cannot
 * exhaust its descriptors): one more is not placed, which the evaluation says as Nomad's does for
 * an exhausted node (FailedTGAllocs), and it is placed once another allocation has ended. */
/* Replaces the first `from` in body (malloc'd) by `to`. */
static char *replaced(char *body, const char *from, const char *to)
{
	char *at = strstr(body, from), *out = NULL;
	assert_non_null(at);
	assert_true(asprintf(&out, "%.*s%s%s", (int)(at - body), body, to, at + strlen(from)) > 0);
	free(body);
	return out;
}

static json_object *evaluation(struct h_nomad *n, const char *id)
{
	char path[128];
	snprintf(path, sizeof path, "/v1/evaluation/%s", id);
	struct h_resp r = req(n, "GET", path, NULL);
	assert_int_equal(r.status, 200);
	json_object *o = json_tokener_parse(r.body);
	h_resp_free(&r);
	assert_non_null(o);
	return o;
}

static long long metric(json_object *eval, const char *group, const char *key, const char *sub)
{
	json_object *f, *g, *v;
	if (!json_object_object_get_ex(eval, "FailedTGAllocs", &f) || !json_object_object_get_ex(f, group, &g) ||
	    !json_object_object_get_ex(g, key, &v))
		return -1;
	if (sub && (!v || !json_object_object_get_ex(v, sub, &v)))
		return -1;
	return json_object_get_int64(v);
}

/* Nomad cannot place a job outside its datacenters or beyond the node's memory: the register
 * answers 200, the evaluation completes with FailedTGAllocs and a blocked evaluation waits for
 * capacity (generic_sched.go createBlockedEval); the job stays pending. */
static void test_placement_failures_are_nomads(void **state)
{
	(void)state;
	struct h_nomad n;
	char eval[64], alloc[64];
	start(&n);
	char *body = replaced(h_nomad_job("10-elsewhere", 40, ""), "\"Datacenters\":[\"dc1\"]",
			      "\"Datacenters\":[\"elsewhere\",\"eu-*\"]");
	assert_int_equal(h_nomad_register(&n, body, eval), 200);
	free(body);
	h_sleep_ms(300);
	json_object *e = evaluation(&n, eval);
	assert_string_equal(str(e, "Status"), "complete");
	assert_int_equal(metric(e, "default-group", "NodesEvaluated", NULL), 0);
	assert_int_equal(metric(e, "default-group", "NodesInPool", NULL), 0);
	char blocked[64];
	snprintf(blocked, sizeof blocked, "%s", str(e, "BlockedEval"));
	json_object_put(e);
	assert_int_equal(strlen(blocked), 36);
	e = evaluation(&n, blocked);
	assert_string_equal(str(e, "Status"), "blocked");
	assert_string_equal(str(e, "PreviousEval"), eval);
	assert_string_equal(str(e, "TriggeredBy"), "queued-allocs");
	assert_string_equal(str(e, "StatusDescription"), "created to place remaining allocations");
	assert_int_equal(metric(e, "default-group", "NodesEvaluated", NULL), 0);
	json_object_put(e);
	struct h_resp r = req(&n, "GET", "/v1/job/10-elsewhere", NULL);
	assert_non_null(strstr(r.body, "\"Status\":\"pending\""));
	h_resp_free(&r);
	r = req(&n, "GET", "/v1/job/10-elsewhere/allocations", NULL);
	assert_string_equal(r.body, "[]");
	h_resp_free(&r);

	/* a pattern that matches the agent's datacenter places */
	body = replaced(h_nomad_job("10-glob", 40, ""), "\"Datacenters\":[\"dc1\"]", "\"Datacenters\":[\"d*\"]");
	assert_int_equal(h_nomad_register(&n, body, NULL), 200);
	free(body);
	assert_int_equal(h_nomad_wait_running(&n, "10-glob", alloc, TIMEOUT_MS), 0);

	/* more memory reserved than the node has: exhausted in the memory dimension */
	char mem[64];
	long long node_mb = (long long)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE) / 1048576;
	snprintf(mem, sizeof mem, "\"MemoryMB\":%lld,", node_mb);
	body = replaced(h_nomad_job("10-huge", (int)node_mb, ""), "\"MemoryMB\":30,", mem);
	assert_int_equal(h_nomad_register(&n, body, eval), 200);
	free(body);
	h_sleep_ms(300);
	e = evaluation(&n, eval);
	assert_string_equal(str(e, "Status"), "complete");
	assert_int_equal(metric(e, "default-group", "NodesEvaluated", NULL), 1);
	assert_int_equal(metric(e, "default-group", "NodesExhausted", NULL), 1);
	assert_int_equal(metric(e, "default-group", "DimensionExhausted", "memory"), 1);
	assert_true(str(e, "BlockedEval")[0]);
	json_object_put(e);

	/* the job moved into the agent's datacenter places; its old blocked evaluation is canceled
	 * once capacity changes (the glob job ending) */
	body = h_nomad_job("10-elsewhere", 40, "");
	assert_int_equal(h_nomad_register(&n, body, NULL), 200);
	free(body);
	assert_int_equal(h_nomad_wait_running(&n, "10-elsewhere", alloc, TIMEOUT_MS), 0);
	r = req(&n, "DELETE", "/v1/job/10-glob?purge=true", NULL);
	h_resp_free(&r);
	long long t0 = h_now_ms();
	const char *status = "";
	for (; h_now_ms() - t0 < 5000; h_sleep_ms(100)) {
		e = evaluation(&n, blocked);
		int canceled = strcmp(str(e, "Status"), "canceled") == 0;
		json_object_put(e);
		if (canceled) {
			status = "canceled";
			break;
		}
	}
	assert_string_equal(status, "canceled");
	h_nomad_stop(&n);
	h_nomad_cleanup(&n);
}

static void test_allocations_beyond_the_bound_wait_for_room(void **state)
{
	(void)state;
	struct h_nomad n;
	static const char *args[] = {"-max-allocations", "2", NULL};
	char alloc[64], eval[64], path[256];
	assert_int_equal(h_nomad_start_args(&n, NULL, NULL, args), 0);
	run_job(&n, "10-room-a", 200, "", alloc);
	run_job(&n, "10-room-b", 200, "", alloc);
	char *body = h_nomad_job("10-room-c", 200, "");
	assert_int_equal(h_nomad_register(&n, body, eval), 200);
	free(body);
	h_sleep_ms(300);
	snprintf(path, sizeof path, "/v1/evaluation/%s", eval);
	struct h_resp r = req(&n, "GET", path, NULL);
	assert_int_equal(r.status, 200);
	json_object *e = json_tokener_parse(r.body), *failed, *metric, *dim;
	h_resp_free(&r);
	assert_non_null(e);
	assert_true(json_object_object_get_ex(e, "FailedTGAllocs", &failed));
	assert_true(json_object_object_get_ex(failed, "default-group", &metric));
	assert_true(json_object_object_get_ex(metric, "DimensionExhausted", &dim));
	assert_string_equal(str(e, "Status"), "complete");
	json_object_put(e);
	r = req(&n, "GET", "/v1/job/10-room-c/allocations", NULL);
	assert_string_equal(r.body, "[]");
	h_resp_free(&r);
	/* room again: the waiting job is placed as soon as the allocation ended (its blocked
	 * evaluation is tried again then, not only at the next GC tick, 10 s) */
	r = req(&n, "DELETE", "/v1/job/10-room-a?purge=true", NULL);
	h_resp_free(&r);
	long long t0 = h_now_ms();
	assert_int_equal(h_nomad_wait_running(&n, "10-room-c", alloc, 15000), 0);
	printf("placed %lld ms after room was made\n", h_now_ms() - t0);
	assert_true(h_now_ms() - t0 < 5000);
	h_nomad_stop(&n);
	h_nomad_cleanup(&n);
}

/* ---- errors, headers, ACLs, namespaces ---- */

static void expect(struct h_nomad *n, const char *method, const char *path, const char *body, long status,
		   const char *text)
{
	struct h_resp r = req(n, method, path, body);
	if (r.status != status || (text && strcmp(r.body, text) != 0))
		fail_msg("%s %s: got %ld '%s', want %ld '%s'", method, path, r.status, r.body, status, text ? text : "*");
	h_resp_free(&r);
}

static void test_bad_input_gets_nomads_codes_and_texts(void **state)
{
	(void)state;
	struct h_nomad n;
	start(&n);
	expect(&n, "PUT", "/v1/jobs", NULL, 400, "Request body is empty");
	expect(&n, "PUT", "/v1/jobs", "{\"Job\":{", 400, "unexpected EOF");
	expect(&n, "PUT", "/v1/jobs", "{\"Job\":{}}", 400, "Job ID hasn't been provided");
	expect(&n, "PUT", "/v1/jobs", "{,}", 400, "invalid character ',' looking for beginning of object key string");
	expect(&n, "PUT", "/v1/jobs", "{}", 400, "Job must be specified");
	expect(&n, "PUT", "/v1/jobs", "[]", 400, "json: cannot unmarshal array into Go value of type api.JobRegisterRequest");
	expect(&n, "PUT", "/v1/jobs", "{\"Job\":{\"ID\":\"x\",\"Priority\":\"high\"}}", 400,
	       "json: cannot unmarshal string into Go struct field Job.Job.Priority of type int");
	expect(&n, "PUT", "/v1/job/other", "{\"Job\":{\"ID\":\"x\"}}", 400, "Job ID does not match name");
	char *body = sample("job-register-request-minimal.json");
	char *m = strstr(body, "\"MemoryMaxMB\": 256");
	assert_non_null(m);
	memcpy(m, "\"MemoryMaxMB\":  20", 18);
	m = strstr(body, "\"CPU\": 20,\n              \"MemoryMB\": 50");
	expect(&n, "PUT", "/v1/jobs", body, 500,
	       "1 error occurred:\n\t* Task group default-group validation failed: 1 error occurred:\n\t* Task "
	       "default-task validation failed: 1 error occurred:\n\t* 1 error occurred:\n\t* MemoryMaxMB value (20) "
	       "should be larger than MemoryMB value (50)\n\n\n\n\n\n\n\n");
	free(body);
	expect(&n, "GET", "/v1/job/nope", NULL, 404, "job not found");
	expect(&n, "GET", "/v1/allocation/d3c4b5a6-7e8f-4091-a2b3-c4d5e6f7a8b9", NULL, 404, "alloc not found");
	expect(&n, "GET", "/v1/node/7c8b3c2e-5d0a-4e4f-9b52-0f3c6a1d2e85", NULL, 404, "node not found");
	expect(&n, "GET", "/v1/job/nope/allocations", NULL, 200, "[]");
	expect(&n, "GET", "/v1/allocations", NULL, 200, "[]");
	expect(&n, "DELETE", "/v1/job/nope?purge=x", NULL, 500,
	       "Failed to parse value of \"purge\" (x) as a bool: strconv.ParseBool: parsing \"x\": invalid syntax");
	expect(&n, "PATCH", "/v1/jobs", NULL, 405, "Invalid method");
	expect(&n, "GET", "/v1/nothing", NULL, 404, "");
	expect(&n, "GET", "/v1/allocation/abc/foo", NULL, 404, "resource not found");
	expect(&n, "GET", "/v1/event/stream?index=x", NULL, 400, "Unable to parse index: strconv.Atoi: parsing \"x\": invalid syntax");
	expect(&n, "GET", "/v1/event/stream?topic=Job:a:b", NULL, 400,
	       "Invalid topic query: error parsing topics: Invalid key value pair for topic, topic: Job:a:b");
	expect(&n, "GET", "/v1/jobs?index=x", NULL, 400, "Invalid index");
	/* oversized bodies are refused, not buffered */
	size_t big = 17u * 1024 * 1024;
	char *huge = malloc(big + 1);
	memset(huge, ' ', big);
	huge[big] = '\0';
	struct h_resp r = req(&n, "PUT", "/v1/jobs", huge);
	assert_int_equal(r.status, 413);
	h_resp_free(&r);
	free(huge);
	/* still alive and well */
	expect(&n, "GET", "/v1/jobs", NULL, 200, "[]");
	h_nomad_stop(&n);
	h_nomad_cleanup(&n);
}

static void test_headers_and_namespaces(void **state)
{
	(void)state;
	struct h_nomad n;
	char v[128], alloc[64];
	start(&n);
	char *body = h_nomad_job("10-ns", 200, "");
	struct h_resp r = req(&n, "PUT", "/v1/jobs?namespace=poseidon", body);
	free(body);
	assert_int_equal(r.status, 200);
	assert_true(h_header(&r, "X-Nomad-Index", v, sizeof v));
	assert_true(atoi(v) > 0);
	assert_true(h_header(&r, "Content-Type", v, sizeof v));
	assert_string_equal(v, "application/json");
	h_resp_free(&r);
	r = req(&n, "GET", "/v1/jobs", NULL);
	assert_string_equal(r.body, "[]");
	assert_true(h_header(&r, "X-Nomad-KnownLeader", v, sizeof v));
	assert_string_equal(v, "true");
	assert_true(h_header(&r, "X-Nomad-LastContact", v, sizeof v));
	h_resp_free(&r);
	r = req(&n, "GET", "/v1/jobs?namespace=poseidon&prefix=10-", NULL);
	assert_non_null(strstr(r.body, "\"Namespace\":\"poseidon\""));
	h_resp_free(&r);
	expect(&n, "GET", "/v1/job/10-ns", NULL, 404, "job not found");
	r = req(&n, "GET", "/v1/job/10-ns/allocations?namespace=poseidon", NULL);
	assert_int_equal(r.status, 200);
	h_resp_free(&r);
	(void)alloc;
	r = req(&n, "GET", "/v1/job/10-ns?namespace=poseidon", NULL);
	assert_int_equal(r.status, 200);
	assert_true(h_header(&r, "Content-Type", v, sizeof v));
	h_resp_free(&r);
	r = req(&n, "GET", "/v1/job/nope", NULL);
	assert_true(h_header(&r, "Content-Type", v, sizeof v));
	assert_string_equal(v, "text/plain; charset=utf-8");
	h_resp_free(&r);
	h_nomad_stop(&n);
	h_nomad_cleanup(&n);
}

static void test_acl_token_is_checked(void **state)
{
	(void)state;
	struct h_nomad n;
	struct h_resp r;
	struct h_stream s;
	struct h_ws w;
	char url[256];
	assert_int_equal(h_nomad_start(&n, "7a1b2c3d-secret"), 0);
	snprintf(url, sizeof url, "%s/v1/jobs", n.url);
	assert_int_equal(h_http(&r, "GET", url, NULL, 0, NULL), 0);
	assert_int_equal(r.status, 403);
	assert_string_equal(r.body, "Permission denied");
	h_resp_free(&r);
	const char *bad[] = {"X-Nomad-Token: wrong", NULL};
	assert_int_equal(h_http(&r, "GET", url, NULL, 0, bad), 0);
	assert_int_equal(r.status, 403);
	assert_string_equal(r.body, "ACL token not found");
	h_resp_free(&r);
	const char *bearer[] = {"Authorization: Bearer 7a1b2c3d-secret", NULL};
	assert_int_equal(h_http(&r, "GET", url, NULL, 0, bearer), 0);
	assert_int_equal(r.status, 200);
	h_resp_free(&r);
	expect(&n, "GET", "/v1/jobs", NULL, 200, "[]");
	assert_int_equal(h_stream_open(&s, n.port, "/v1/event/stream?topic=Job", NULL), 403);
	h_stream_close(&s);
	assert_int_equal(h_stream_open(&s, n.port, "/v1/event/stream?topic=Job", n.token), 200);
	h_stream_close(&s);
	assert_int_equal(h_ws_connect(&w, n.port, "/v1/client/allocation/d3c4b5a6-7e8f-4091-a2b3-c4d5e6f7a8b9/exec?command=%5B%22true%22%5D&task=default-task", NULL, NULL, 0), 101);
	char *p;
	size_t l;
	assert_int_equal(h_ws_recv(&w, 5000, &p, &l), 8);
	assert_int_equal((unsigned char)p[0] << 8 | (unsigned char)p[1], 1011);
	assert_string_equal(p + 2, "Permission denied");
	free(p);
	h_ws_close(&w);
	h_nomad_stop(&n);
	h_nomad_cleanup(&n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_register_sample_job_shows_pending_then_running),
		cmocka_unit_test(test_responses_have_the_samples_shapes),
		cmocka_unit_test(test_exec_frames_without_tty),
		cmocka_unit_test(test_exec_frames_with_tty),
		cmocka_unit_test(test_exec_errors_are_nomads),
		cmocka_unit_test(test_file_written_as_root_is_read_as_user),
		cmocka_unit_test(test_no_network_inside),
		cmocka_unit_test(test_programs_start_with_default_signals),
		cmocka_unit_test(test_tty_program_that_closes_its_terminal_exits_normally),
		cmocka_unit_test(test_exec_memory_hog_is_killed_and_the_task_goes_on),
		cmocka_unit_test(test_memory_hog_is_oom_killed_and_reported),
		cmocka_unit_test(test_a_resumed_event_stream_delivers_nothing_twice),
		cmocka_unit_test(test_purge_ends_processes_and_emits_events),
		cmocka_unit_test(test_meta_change_of_config_group_restarts_nothing),
		cmocka_unit_test(test_enforce_index_registers_only_over_the_job_as_read),
		cmocka_unit_test(test_restart_finds_job_and_allocation),
		cmocka_unit_test(test_ending_a_runner_with_many_files_does_not_stall_the_agent),
		cmocka_unit_test(test_deep_trees_go_with_their_runner),
		cmocka_unit_test(test_allocations_beyond_the_bound_wait_for_room),
		cmocka_unit_test(test_placement_failures_are_nomads),
		cmocka_unit_test(test_sandboxes_are_recorded_by_pid_and_start_time_and_cleaned_up_fast),
		cmocka_unit_test(test_bad_input_gets_nomads_codes_and_texts),
		cmocka_unit_test(test_headers_and_namespaces),
		cmocka_unit_test(test_acl_token_is_checked),
	};
	if (getenv("POSEIDON_TEST_FILTER")) /* e.g. "*placement*" */
		cmocka_set_test_filter(getenv("POSEIDON_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
