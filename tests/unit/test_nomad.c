/* nomad parsers against Nomad's recorded shapes (tests/fixtures/nomad, copied from the contract
 * samples): allocations, job lists, the event stream split at every byte, naming rules; and the
 * headers of the client's requests, as a loopback listener of this test receives them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nomad.h"
#include "nomad_events.h"

static char *slurp(const char *name, size_t *len)
{
	char path[1024];
	const char *src = getenv("POSEIDON_SRC_DIR");
	snprintf(path, sizeof path, "%s/tests/fixtures/nomad/%s", src && *src ? src : ".", name);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	if (len)
		*len = (size_t)n;
	return buf;
}

static void test_allocation_read_response(void **state)
{
	(void)state;
	struct perr e;
	struct nomad_alloc a;
	char *text = slurp("allocation-read-response.json", NULL);
	json_object *o = json_tokener_parse(text);
	free(text);
	assert_int_equal(nomad_alloc_from_json(o, &a, &e), 0);
	assert_string_equal(a.id, "d3c4b5a6-7e8f-4091-a2b3-c4d5e6f7a8b9");
	assert_string_equal(a.job_id, "10-0e5fb0f4-8a1d-11f0-8d3c-0242ac120002");
	assert_string_equal(a.node_id, "7c8b3c2e-5d0a-4e4f-9b52-0f3c6a1d2e85");
	assert_string_equal(a.client_status, "running");
	assert_string_equal(a.desired_status, "run");
	assert_true(a.task_running);
	assert_int_equal(a.restarts, 0);
	assert_int_equal(a.nports, 1);
	assert_int_equal(a.ports[0].exposed_port, 8080);
	assert_string_equal(a.ports[0].host_address, "10.0.2.15:25413");
	assert_true(a.modify_time > 1700000000000000000LL);
	assert_false(nomad_alloc_terminal(&a));
	assert_false(nomad_alloc_oom_killed(&a));
	json_object_put(o);
}

static void test_allocation_lists(void **state)
{
	(void)state;
	struct perr e;
	const char *files[] = {"allocations-list-response.json", "job-allocations-response.json"};
	for (int f = 0; f < 2; f++) {
		char *text = slurp(files[f], NULL);
		json_object *arr = json_tokener_parse(text);
		free(text);
		assert_true(json_object_is_type(arr, json_type_array));
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			struct nomad_alloc a;
			assert_int_equal(nomad_alloc_from_json(json_object_array_get_idx(arr, i), &a, &e), 0);
			assert_true(strlen(a.id) == 36);
			assert_true(a.job_id[0] != '\0');
			assert_true(a.client_status[0] != '\0');
		}
		json_object_put(arr);
	}
	struct nomad_alloc a;
	assert_int_equal(nomad_alloc_from_json(NULL, &a, &e), -1);
}

struct seen {
	int events, allocs, running, oom, dereg, stop;
	char last_alloc_status[16];
};

static int on_event(void *ud, const struct nomad_event *ev)
{
	struct seen *s = ud;
	struct perr e;
	s->events++;
	if (strcmp(ev->topic, "Allocation") == 0) {
		struct nomad_alloc a;
		assert_int_equal(nomad_alloc_from_json(ev->payload, &a, &e), 0);
		assert_string_equal(a.id, ev->key);
		s->allocs++;
		if (strcmp(a.client_status, "running") == 0 && strcmp(a.desired_status, "run") == 0)
			s->running++;
		if (strcmp(a.client_status, "pending") == 0 && a.restarts == 1 && nomad_alloc_oom_killed(&a))
			s->oom++;
		snprintf(s->last_alloc_status, sizeof s->last_alloc_status, "%s", a.client_status);
	}
	if (strcmp(ev->topic, "Job") == 0 && strcmp(ev->type, "JobDeregistered") == 0)
		s->dereg++;
	return s->stop && s->events >= s->stop;
}

static void test_event_stream_whole_and_split_everywhere(void **state)
{
	(void)state;
	size_t len;
	char *text = slurp("event-stream.ndjson", &len);
	struct perr e;
	/* whole */
	struct seen s = {0};
	long long last = 0;
	int stop = 0;
	struct nomad_event_parser *p = nomad_event_parser_new(on_event, &s);
	assert_int_equal(nomad_event_parser_feed(p, text, len, &last, &stop, &e), 21);
	assert_int_equal(nomad_event_parser_heartbeats(p), 6);
	nomad_event_parser_free(p);
	assert_int_equal(s.events, 21);
	assert_int_equal(s.allocs, 8);
	assert_int_equal(s.running, 3); /* 2007 ready, 2014 in-place update, 2032 after the OOM restart */
	assert_int_equal(s.oom, 1);
	assert_int_equal(s.dereg, 1);
	assert_string_equal(s.last_alloc_status, "complete");
	assert_int_equal(last, 2045);

	/* every split point gives the same result */
	for (size_t cut = 1; cut < len; cut += 7) {
		struct seen t = {0};
		long long l = 0;
		p = nomad_event_parser_new(on_event, &t);
		int n = nomad_event_parser_feed(p, text, cut, &l, &stop, &e);
		n += nomad_event_parser_feed(p, text + cut, len - cut, &l, &stop, &e);
		nomad_event_parser_free(p);
		assert_int_equal(n, 21);
		assert_int_equal(t.oom, 1);
		assert_int_equal(l, 2045);
	}
	/* byte by byte */
	struct seen b = {0};
	long long lb = 0;
	p = nomad_event_parser_new(on_event, &b);
	for (size_t i = 0; i < len; i++)
		nomad_event_parser_feed(p, text + i, 1, &lb, &stop, &e);
	nomad_event_parser_free(p);
	assert_int_equal(b.events, 21);

	/* a resumed stream skips the batches handled before it, both of an index shared by two */
	struct seen r = {0};
	long long lr = 2012;
	p = nomad_event_parser_new(on_event, &r);
	nomad_event_parser_seen_before(p, 2012);
	assert_int_equal(nomad_event_parser_feed(p, text, len, &lr, &stop, &e), 11);
	nomad_event_parser_free(p);
	assert_int_equal(r.dereg, 1);
	assert_int_equal(lr, 2045);

	/* the callback can stop the stream */
	struct seen c = {.stop = 3};
	long long lc = 0;
	p = nomad_event_parser_new(on_event, &c);
	nomad_event_parser_feed(p, text, len, &lc, &stop, &e);
	nomad_event_parser_free(p);
	assert_true(stop);
	assert_int_equal(c.events, 3);
	free(text);
}

static void test_event_stream_garbage_ends_it(void **state)
{
	(void)state;
	struct perr e;
	struct seen s = {0};
	long long last = 0;
	int stop = 0;
	struct nomad_event_parser *p = nomad_event_parser_new(on_event, &s);
	assert_int_equal(nomad_event_parser_feed(p, "{}\nrpc error: EOF\n", 18, &last, &stop, &e), -1);
	assert_int_equal(e.kind, PERR_NOMAD_INTERNAL);
	nomad_event_parser_free(p);
}

/* Found by fuzzing (tests/fuzz/fuzz_nomad_events.c): a bare number ends only at the byte after
 * it, so when that byte ('{' here) opened the next chunk the parser consumed nothing of the chunk
 * and threw the rest of it away, events included. Split or whole, the same bytes give the same
 * events. */
static void test_event_stream_split_after_a_bare_value_loses_nothing(void **state)
{
	(void)state;
	static const char line[] = "{\"Index\":9,\"Events\":[{\"Topic\":\"Job\",\"Type\":\"JobDeregistered\","
				   "\"Key\":\"3-x\"}]}\n";
	struct perr e;
	struct seen s = {0};
	long long last = 0;
	int stop = 0;
	struct nomad_event_parser *p = nomad_event_parser_new(on_event, &s);
	assert_int_equal(nomad_event_parser_feed(p, "7", 1, &last, &stop, &e), 0);
	assert_int_equal(nomad_event_parser_feed(p, line, sizeof line - 1, &last, &stop, &e), 1);
	nomad_event_parser_free(p);
	assert_int_equal(s.dereg, 1);
	assert_int_equal(last, 9);
	/* a byte that cannot follow the value is an error whether it came with it or after it */
	p = nomad_event_parser_new(on_event, &s);
	assert_int_equal(nomad_event_parser_feed(p, "1", 1, &last, &stop, &e), 0);
	assert_int_equal(nomad_event_parser_feed(p, "}\n", 2, &last, &stop, &e), -1);
	nomad_event_parser_free(p);
	p = nomad_event_parser_new(on_event, &s);
	assert_int_equal(nomad_event_parser_feed(p, "1}\n", 3, &last, &stop, &e), -1);
	nomad_event_parser_free(p);
}

/* ---- the requests' headers ---- */

#define HEADERS_MAX 8

/* Accepts n connections on loopback, keeps each request's head and answers a registration. */
struct listener {
	int fd, port, n;
	char heads[HEADERS_MAX][4096];
	pthread_t th;
};

static void *listen_run(void *arg)
{
	struct listener *l = arg;
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
				   "Content-Length: 59\r\n\r\n"
				   "{\"EvalID\":\"00000000-0000-4000-8000-000000000000\",\"Index\":1}";
	for (int i = 0; i < l->n && i < HEADERS_MAX; i++) {
		int c = accept(l->fd, NULL, NULL);
		if (c < 0)
			break;
		size_t got = 0;
		char *end = NULL;
		while (!end && got < sizeof l->heads[i] - 1) {
			ssize_t r = recv(c, l->heads[i] + got, sizeof l->heads[i] - 1 - got, 0);
			if (r <= 0)
				break;
			got += (size_t)r;
			l->heads[i][got] = '\0';
			end = strstr(l->heads[i], "\r\n\r\n");
		}
		if (end)
			end[2] = '\0';
		/* the body follows; it is not looked at */
		if (send(c, resp, sizeof resp - 1, MSG_NOSIGNAL) < 0)
			perror("send");
		shutdown(c, SHUT_WR);
		char sink[4096];
		while (recv(c, sink, sizeof sink, 0) > 0)
			;
		close(c);
	}
	return NULL;
}

static void listen_start(struct listener *l, int n)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	memset(l, 0, sizeof *l);
	l->n = n;
	l->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(l->fd >= 0);
	assert_int_equal(bind(l->fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(l->fd, 16), 0);
	assert_int_equal(getsockname(l->fd, (struct sockaddr *)&a, &len), 0);
	l->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&l->th, NULL, listen_run, l), 0);
}

static int has_header(const char *head, const char *line)
{
	for (const char *p = strstr(head, "\r\n"); p; p = strstr(p + 2, "\r\n"))
		if (strncasecmp(p + 2, line, strlen(line)) == 0 && p[2 + strlen(line)] == '\r')
			return 1;
	return 0;
}

/* Job bodies are JSON and say so: curl's default label for a POST body is a form's. */
static void test_job_bodies_are_labelled_json(void **state)
{
	(void)state;
	struct listener l;
	struct perr e;
	listen_start(&l, 3);
	struct nomad_endpoint ep = {.port = l.port};
	snprintf(ep.host, sizeof ep.host, "127.0.0.1");
	snprintf(ep.namespace, sizeof ep.namespace, "default");
	struct nomad *n = nomad_open(&ep);
	assert_non_null(n);
	json_object *job = json_tokener_parse("{\"ID\":\"10-x\",\"Name\":\"10-x\"}");
	char eval[64];
	assert_int_equal(nomad_job_register(n, job, eval, &e), 0);
	json_object *jobs[2] = {job, job};
	int results[2] = {-1, -1};
	assert_int_equal(nomad_jobs_register(n, jobs, 2, 2, results, &e), 0);
	json_object_put(job);
	nomad_close(n);
	pthread_join(l.th, NULL);
	close(l.fd);
	for (int i = 0; i < 3; i++) {
		if (!has_header(l.heads[i], "Content-Type: application/json"))
			fail_msg("request %d without a JSON content type:\n%s", i, l.heads[i]);
		assert_false(strstr(l.heads[i], "x-www-form-urlencoded"));
	}
}

static void test_naming(void **state)
{
	(void)state;
	long long env;
	char id[64];
	nomad_template_job_id(42, id, sizeof id);
	assert_string_equal(id, "template-42");
	assert_true(nomad_is_template_job_id("template-0", &env));
	assert_int_equal(env, 0);
	assert_false(nomad_is_template_job_id("template-x", &env));
	assert_false(nomad_is_template_job_id("templates-1", &env));
	assert_false(nomad_is_template_job_id("template-", &env));
	assert_true(nomad_runner_env("10-0e5fb0f4-8a1d-11f0-8d3c-0242ac120002", &env));
	assert_int_equal(env, 10);
	assert_false(nomad_runner_env("template-10", &env));
	assert_false(nomad_runner_env("10", &env));
	assert_false(nomad_runner_env("10-", &env));
	nomad_new_runner_id(7, id, sizeof id);
	assert_int_equal(strncmp(id, "7-", 2), 0);
	assert_int_equal(strlen(id), 2 + 36);
	assert_int_equal(id[2 + 14], '1'); /* uuid version 1 */
	char id2[64];
	nomad_new_runner_id(7, id2, sizeof id2);
	assert_string_not_equal(id, id2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_allocation_read_response),
		cmocka_unit_test(test_allocation_lists),
		cmocka_unit_test(test_event_stream_whole_and_split_everywhere),
		cmocka_unit_test(test_event_stream_garbage_ends_it),
		cmocka_unit_test(test_event_stream_split_after_a_bare_value_loses_nothing),
		cmocka_unit_test(test_naming),
		cmocka_unit_test(test_job_bodies_are_labelled_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
