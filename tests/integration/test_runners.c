/* Runners and their files through the real stack (issue 5; docs/api.md RUN-1..12,
 * FIL-1..25): Redis, nomad-local, lighttpd with workers, poseidon-refill. File contents are read
 * back with the download route (commands run by learners are the gateway's tests). A second stack
 * without Nomad checks claims under concurrency and under workers killed mid-claim. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <signal.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "store.h"

#define ENV 3

static struct h_stack st;

static int setup(void **state)
{
	(void)state;
	static const char *refill_env[] = {"POSEIDON_RECONCILE_INTERVAL=5", "POSEIDON_REFILL_TICKMS=100", NULL};
	struct h_front_opts o = {.workers = 4};
	if (h_redis_start(&st.redis) < 0 || h_stack_start_nomad(&st) < 0 || h_stack_start(&st, &o) < 0 ||
	    h_stack_start_refill(&st, refill_env) < 0)
		return -1;
	char url[256];
	struct h_resp r;
	snprintf(url, sizeof url, "%s/execution-environments/%d", st.base, ENV);
	if (h_http(&r, "PUT", url, "{\"prewarmingPoolSize\":4,\"cpuLimit\":50,\"memoryLimit\":256,\"image\":\"img\"}", -1, NULL) <
		    0 ||
	    r.status != 201)
		return -1;
	h_resp_free(&r);
	for (int i = 0; i < 300 && atoi(h_redis_cli(&st.redis, "LLEN poseidon:pool:%d", ENV)) < 4; i++)
		h_sleep_ms(100);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	h_stack_stop(&st);
	return h_sanitizer_reports(st.rundir) == 0 ? 0 : -1;
}

static long call(const char *method, const char *path, const char *body, long len, struct h_resp *r)
{
	char url[1024];
	snprintf(url, sizeof url, "%s%s", st.base, path);
	assert_int_equal(h_http(r, method, url, body, len, NULL), 0);
	return r->status;
}

static long status(const char *method, const char *path, const char *body)
{
	struct h_resp r;
	long s = call(method, path, body, -1, &r);
	h_resp_free(&r);
	return s;
}

/* Claims a runner of ENV (waiting for the pool if needed). */
static void claim(char id[128], long long timeout)
{
	char body[128];
	struct h_resp r;
	snprintf(body, sizeof body, "{\"executionEnvironmentId\":%d,\"inactivityTimeout\":%lld}", ENV, timeout);
	for (int i = 0; i < 200; i++) {
		if (call("POST", "/runners", body, -1, &r) == 200)
			break;
		h_resp_free(&r);
		h_sleep_ms(100);
	}
	assert_int_equal(r.status, 200);
	assert_int_equal(sscanf(r.body, "{\"runnerId\":\"%127[^\"]\"", id), 1);
	h_resp_free(&r);
}

static char *b64(const void *data, size_t len)
{
	static const char *t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *d = data;
	char *out = malloc(4 * ((len + 2) / 3) + 1), *o = out;
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)d[i] << 16 | (i + 1 < len ? (unsigned)d[i + 1] << 8 : 0) | (i + 2 < len ? d[i + 2] : 0);
		*o++ = t[v >> 18 & 63];
		*o++ = t[v >> 12 & 63];
		*o++ = i + 1 < len ? t[v >> 6 & 63] : '=';
		*o++ = i + 2 < len ? t[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

static long copy_one(const char *runner, const char *path, const char *content)
{
	char url[256], *enc = b64(content, strlen(content));
	size_t cap = strlen(enc) + strlen(path) + 64;
	char *body = malloc(cap);
	snprintf(body, cap, "{\"copy\":[{\"path\":\"%s\",\"content\":\"%s\"}]}", path, enc);
	snprintf(url, sizeof url, "/runners/%s/files", runner);
	long s = status("PATCH", url, body);
	free(enc);
	free(body);
	return s;
}

/* GET /files/raw; returns the status, body in *out (caller frees). */
static long download(const char *runner, const char *path_q, int privileged, struct h_resp *r)
{
	char url[1024];
	snprintf(url, sizeof url, "/runners/%s/files/raw?path=%s%s", runner, path_q,
		 privileged ? "&privilegedExecution=true" : "");
	return call("GET", url, NULL, -1, r);
}

static void assert_content(const char *runner, const char *path_q, const char *expected)
{
	struct h_resp r;
	assert_int_equal(download(runner, path_q, 0, &r), 200);
	assert_int_equal(r.len, strlen(expected));
	assert_memory_equal(r.body, expected, r.len);
	h_resp_free(&r);
}

static void test_claim_and_delete(void **state)
{
	(void)state;
	char id[128], path[256];
	claim(id, 0);
	assert_int_equal(strncmp(id, "3-", 2), 0); /* RUN-1: <env>-<uuid> */
	snprintf(path, sizeof path, "/runners/%s", id);
	assert_int_equal(status("DELETE", path, NULL), 204); /* RUN-5 */
	assert_int_equal(status("DELETE", path, NULL), 410); /* RUN-6 */
	assert_int_equal(status("DELETE", "/runners/n0n-3x1st1ng-1d", NULL), 410); /* RUN-7 */
	/* the job is gone from Nomad and the pool refills */
	assert_string_equal(h_redis_cli(&st.redis, "EXISTS poseidon:runner:%s", id), "0");
	assert_int_equal(status("POST", "/runners", "{\"executionEnvironmentId\":9999}"), 404); /* RUN-3 */
	assert_int_equal(status("POST", "/runners", ""), 400);					/* RUN-2 */
}

static void test_unknown_runner_is_410_on_every_route(void **state)
{
	(void)state;
	const char *routes[][2] = {{"GET", "/runners/n0n-3x1st1ng-1d/files"},
				   {"PATCH", "/runners/n0n-3x1st1ng-1d/files"},
				   {"GET", "/runners/n0n-3x1st1ng-1d/files/raw?path=x"},
				   {"POST", "/runners/n0n-3x1st1ng-1d/execute"},
				   {"DELETE", "/runners/n0n-3x1st1ng-1d"},
				   {"GET", "/runners/..%2F..%2Fetc/files"}};
	for (size_t i = 0; i < sizeof routes / sizeof *routes; i++) {
		struct h_resp r;
		const char *body = strcmp(routes[i][0], "GET") == 0 || strcmp(routes[i][0], "DELETE") == 0 ? NULL : "{}";
		assert_int_equal(call(routes[i][0], routes[i][1], body, -1, &r), 410);
		assert_non_null(strstr(r.body, "no runner found"));
		h_resp_free(&r);
	}
	/* RUN-10: a 1 MB body to an unknown runner receives a clean 410 */
	char *big = malloc(1 << 20);
	memset(big, 'x', 1 << 20);
	memcpy(big, "{\"copy\":[],\"pad\":\"", 18);
	memcpy(big + (1 << 20) - 3, "\"}", 3);
	struct h_resp r;
	assert_int_equal(call("PATCH", "/runners/n0n-3x1st1ng-1d/files", big, (1 << 20) - 1, &r), 410);
	h_resp_free(&r);
	/* the runner is looked up before the body is judged: a command over the length limit, or a
	 * body that is no JSON at all, to an unknown runner is 410 as in the reference, not 400 */
	memcpy(big, "{\"command\":\"", 12);
	assert_int_equal(call("POST", "/runners/n0n-3x1st1ng-1d/execute", big, (1 << 20) - 1, &r), 410);
	assert_non_null(strstr(r.body, "no runner found"));
	h_resp_free(&r);
	assert_int_equal(call("POST", "/runners/n0n-3x1st1ng-1d/execute", "not json", -1, &r), 410);
	h_resp_free(&r);
	assert_int_equal(call("PATCH", "/runners/n0n-3x1st1ng-1d/files", "{\"copy\":7}", -1, &r), 410);
	h_resp_free(&r);
	free(big);
}

static void test_inactivity_timeout_destroys_runner(void **state)
{
	(void)state;
	char id[128], path[256], id2[128];
	claim(id, 2);
	snprintf(path, sizeof path, "/runners/%s/files", id);
	h_sleep_ms(1200);
	assert_int_equal(status("GET", path, NULL), 200); /* an activity: pushes the deadline */
	h_sleep_ms(1200);
	assert_int_equal(status("GET", path, NULL), 200); /* still alive thanks to it */
	h_sleep_ms(2500);
	snprintf(path, sizeof path, "/runners/%s/execute", id);
	assert_int_equal(status("POST", path, "{\"command\":\"true\"}"), 410); /* RUN-11 */
	/* the reaper destroyed it in Redis and Nomad */
	for (int i = 0; i < 50 && strcmp(h_redis_cli(&st.redis, "EXISTS poseidon:runner:%s", id), "1") == 0; i++)
		h_sleep_ms(100);
	assert_string_equal(h_redis_cli(&st.redis, "EXISTS poseidon:runner:%s", id), "0");
	/* RUN-12: a negative timeout expires at once */
	claim(id2, -1);
	snprintf(path, sizeof path, "/runners/%s/files", id2);
	assert_int_equal(status("GET", path, NULL), 410);
}

static void test_copy_read_delete(void **state)
{
	(void)state;
	char id[128], path[256];
	struct h_resp r;
	claim(id, 0);
	snprintf(path, sizeof path, "/runners/%s/files", id);
	/* FIL-12: a fresh runner lists nothing */
	assert_int_equal(call("GET", path, NULL, -1, &r), 200);
	assert_string_equal(r.body, "{\"files\":[]}");
	h_resp_free(&r);
	/* FIL-1 */
	assert_int_equal(copy_one(id, "test.txt", "Hello, Codemoon!"), 204);
	assert_content(id, "test.txt", "Hello, Codemoon!");
	/* FIL-22: headers */
	assert_int_equal(download(id, "test.txt", 0, &r), 200);
	char h[256];
	assert_true(h_header(&r, "Content-Length", h, sizeof h));
	assert_string_equal(h, "16");
	assert_true(h_header(&r, "Content-Disposition", h, sizeof h));
	assert_string_equal(h, "attachment; filename=\"test.txt\"");
	h_resp_free(&r);
	/* FIL-2: relative and absolute paths, parents created */
	assert_int_equal(status("PATCH", path,
				"{\"copy\":[{\"path\":\"relative/file/path.txt\",\"content\":\"UmVsYXRpdmUgZmlsZSBjb250ZW50\"},"
				"{\"path\":\"/tmp/absolute/file/path.txt\",\"content\":\"QWJzb2x1dGUgZmlsZSBjb250ZW50\"}]}"),
			 204);
	assert_content(id, "relative/file/path.txt", "Relative file content");
	assert_content(id, "%2Ftmp%2Fabsolute%2Ffile%2Fpath.txt", "Absolute file content");
	/* FIL-3: delete */
	assert_int_equal(status("PATCH", path, "{\"delete\":[\"test.txt\"]}"), 204);
	assert_int_equal(download(id, "test.txt", 0, &r), 424); /* FIL-21 */
	assert_non_null(strstr(r.body, "file not found or insufficient permissions"));
	h_resp_free(&r);
	/* FIL-4: delete happens before copy */
	assert_int_equal(status("PATCH", path,
				"{\"delete\":[\"test.txt\"],\"copy\":[{\"path\":\"test.txt\",\"content\":\"SGVsbG8sIENvZGVtb29uIQ==\"}]}"),
			 204);
	assert_content(id, "test.txt", "Hello, Codemoon!");
	/* FIL-9, FIL-5, FIL-11 */
	assert_int_equal(status("PATCH", path, "{}"), 204);
	assert_int_equal(status("PATCH", path, ""), 400);
	assert_int_equal(status("PATCH", path, "{\"copy\":[{\"path\":\"x\",\"content\":\"not base64!\"}]}"), 400);
	/* FIL-11: dot-slash-star globs, everything else is literal (a name with a space and a quote) */
	assert_int_equal(copy_one(id, "it's a file", "q"), 204);
	assert_content(id, "it%27s%20a%20file", "q");
	assert_int_equal(status("PATCH", path, "{\"delete\":[\"it's a file\"]}"), 204);
	assert_int_equal(download(id, "it%27s%20a%20file", 0, &r), 424);
	h_resp_free(&r);
	assert_int_equal(copy_one(id, "*", "star"), 204);
	assert_int_equal(status("PATCH", path, "{\"delete\":[\"*\"]}"), 204); /* literal: only the file named * */
	assert_content(id, "test.txt", "Hello, Codemoon!");
	assert_int_equal(status("PATCH", path, "{\"delete\":[\"./*\"]}"), 204);
	assert_int_equal(call("GET", path, NULL, -1, &r), 200);
	assert_string_equal(r.body, "{\"files\":[]}");
	h_resp_free(&r);
}

static void test_partial_failure_writes_the_rest(void **state)
{
	(void)state;
	char id[128], path[256];
	struct h_resp r;
	claim(id, 0);
	snprintf(path, sizeof path, "/runners/%s/files", id);
	/* FIL-7 */
	assert_int_equal(call("PATCH", path,
			      "{\"copy\":[{\"path\":\"/proc/1/environ\",\"content\":\"SGVsbG8sIENvZGVtb29uIQ==\"},"
			      "{\"path\":\"test.txt\",\"content\":\"TmV3IGNvbnRlbnQ=\"}]}",
			      -1, &r),
			 500);
	assert_non_null(strstr(r.body, "Cannot open"));
	assert_non_null(strstr(r.body, "\"errorCode\":\"UNKNOWN\""));
	h_resp_free(&r);
	assert_content(id, "test.txt", "New content");
}

static void test_listing(void **state)
{
	(void)state;
	char id[128], path[512];
	struct h_resp r;
	claim(id, 0);
	/* FIL-13, FIL-8 (owner, modes) */
	assert_int_equal(status("PATCH", (snprintf(path, sizeof path, "/runners/%s/files", id), path),
				"{\"copy\":[{\"path\":\"protectedFolder/\"},{\"path\":\"protectedFolder/test.txt\",\"content\":\"TmV3IGNvbnRlbnQ=\"},"
				"{\"path\":\"test.txt\",\"content\":\"\"}]}"),
			 204);
	assert_int_equal(call("GET", path, NULL, -1, &r), 200);
	assert_non_null(strstr(r.body, "{\"name\":\"./test.txt\",\"entryType\":\"-\",\"size\":0,"));
	assert_non_null(strstr(r.body, "\"permissions\":\"rwxr--r--\",\"owner\":\"root\",\"group\":\"root\"}"));
	assert_non_null(strstr(r.body, "{\"name\":\"./protectedFolder\",\"entryType\":\"d\","));
	assert_non_null(strstr(r.body, "\"permissions\":\"rwxrwxrwt\""));
	assert_non_null(strstr(r.body, "{\"name\":\"./protectedFolder/test.txt\",\"entryType\":\"-\",\"size\":11,"));
	char ct[64];
	assert_true(h_header(&r, "Content-Type", ct, sizeof ct));
	assert_string_equal(ct, "application/json");
	h_resp_free(&r);
	/* FIL-16: recursive=false gives bare names */
	snprintf(path, sizeof path, "/runners/%s/files?path=.%%2F&recursive=false", id);
	assert_int_equal(call("GET", path, NULL, -1, &r), 200);
	assert_non_null(strstr(r.body, "{\"name\":\"test.txt\""));
	assert_null(strstr(r.body, "protectedFolder/test.txt"));
	h_resp_free(&r);
	/* FIL-14, FIL-15, FIL-20: links */
	snprintf(path, sizeof path, "/runners/%s/files?path=%%2Fproc%%2Fself%%2Fcwd", id);
	assert_int_equal(call("GET", path, NULL, -1, &r), 200);
	assert_non_null(strstr(r.body, "{\"name\":\"/proc/self/cwd\",\"entryType\":\"l\",\"linkTarget\":\"/workspace\""));
	h_resp_free(&r);
	snprintf(path, sizeof path, "/runners/%s/files?path=%%2Fproc%%2F1%%2Fcwd", id);
	assert_int_equal(call("GET", path, NULL, -1, &r), 200);
	assert_non_null(strstr(r.body, "{\"name\":\"/proc/1/cwd\",\"entryType\":\"l\",\"size\""));
	h_resp_free(&r);
	snprintf(path, sizeof path, "/runners/%s/files?path=%%2Fproc%%2F1%%2Fcwd&privilegedExecution=true", id);
	assert_int_equal(call("GET", path, NULL, -1, &r), 200);
	assert_non_null(strstr(r.body, "\"linkTarget\":\"/workspace\""));
	h_resp_free(&r);
	/* FIL-19: a missing path is 424 (the spec's answer) */
	snprintf(path, sizeof path, "/runners/%s/files?path=nope", id);
	assert_int_equal(call("GET", path, NULL, -1, &r), 424);
	assert_non_null(strstr(r.body, "file not found or insufficient permissions"));
	h_resp_free(&r);
}

/* The peak memory (VmHWM, KiB) of each FastCGI worker lighttpd runs, into hwm; returns how many. */
static int worker_peaks(long long hwm[16], int pids[16])
{
	char p[128], buf[512];
	snprintf(p, sizeof p, "/proc/%d/task/%d/children", (int)st.lighttpd, (int)st.lighttpd);
	FILE *f = fopen(p, "r");
	int n = 0, pid;
	while (f && n < 16 && fscanf(f, "%d", &pid) == 1) {
		snprintf(p, sizeof p, "/proc/%d/status", pid);
		FILE *s = fopen(p, "r");
		hwm[n] = 0;
		while (s && fgets(buf, sizeof buf, s))
			if (!strncmp(buf, "VmHWM:", 6))
				hwm[n] = atoll(buf + 6);
		if (s)
			fclose(s);
		pids[n++] = pid;
	}
	if (f)
		fclose(f);
	return n;
}

/* A listing of many files is streamed as ls goes: no worker holds it whole (300 k files once
 * made a worker grow to 563 MB and stay there). */
static void test_listing_of_many_files_keeps_the_worker_small(void **state)
{
	(void)state;
	enum { FILES = 120000 };
	char id[128], path[256], alloc[64];
	claim(id, 0);
	snprintf(alloc, sizeof alloc, "%s", h_redis_cli(&st.redis, "HGET poseidon:runner:%s allocId", id));
	char cmd[256];
	snprintf(cmd, sizeof cmd, "[\"/bin/bash\",\"-c\",\"cd /workspace && seq -f f%%06g %d | xargs touch\"]", FILES);
	struct h_exec x;
	assert_int_equal(h_nomad_exec(&st.nomad, alloc, cmd, 0, NULL, 0, &x), 0);
	assert_int_equal(x.exit_code, 0);
	h_exec_free(&x);
	long long before[16], after[16];
	int pids[16], pids2[16];
	int n = worker_peaks(before, pids);
	assert_true(n > 0);
	struct h_resp r;
	snprintf(path, sizeof path, "/runners/%s/files?path=%%2Fworkspace&recursive=false", id);
	assert_int_equal(call("GET", path, NULL, -1, &r), 200);
	/* every entry, in valid JSON */
	json_object *o = json_tokener_parse(r.body), *files;
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "files", &files));
	assert_int_equal(json_object_array_length(files), FILES);
	json_object_put(o);
	printf("listing of %d files: %zu bytes in %.2f s\n", FILES, r.len, r.seconds);
	h_resp_free(&r);
	assert_int_equal(worker_peaks(after, pids2), n);
	for (int i = 0; i < n; i++) {
		assert_int_equal(pids[i], pids2[i]);
#ifndef __SANITIZE_ADDRESS__
		/* (under ASan every freed entry waits in its quarantine, up to 256 MiB: the peak says
		 * nothing about what the worker holds) */
		if (after[i] - before[i] > 64 * 1024)
			fail_msg("worker %d grew from %lld to %lld KiB for the listing", pids[i], before[i], after[i]);
#endif
	}
	snprintf(path, sizeof path, "/runners/%s", id);
	assert_int_equal(status("DELETE", path, NULL), 204);
}

static void test_download_edges(void **state)
{
	(void)state;
	char id[128];
	struct h_resp r;
	claim(id, 0);
	/* FIL-23 / FIL-25: unreadable as user, readable when privileged; no path = missing */
	assert_int_equal(download(id, "%2Fproc%2F1%2Fenviron", 0, &r), 424);
	char h[64];
	assert_false(h_header(&r, "Content-Disposition", h, sizeof h));
	h_resp_free(&r);
	assert_int_equal(download(id, "%2Fetc%2Fos-release", 1, &r), 200);
	h_resp_free(&r);
	assert_int_equal(status("GET", (snprintf(h, sizeof h, "/runners/%s/files/raw", id), h), NULL), 424);
	/* a quote in the name cannot break the header */
	assert_int_equal(copy_one(id, "a\\\"b.txt", "x"), 204);
	assert_int_equal(download(id, "a%22b.txt", 0, &r), 200);
	char disp[256];
	assert_true(h_header(&r, "Content-Disposition", disp, sizeof disp));
	assert_string_equal(disp, "attachment; filename=\"a\\\"b.txt\"");
	h_resp_free(&r);
}

/* Percent-encodes s for a query value. */
static void qenc(const char *s, char *out, size_t cap)
{
	size_t o = 0;
	for (; *s && o + 4 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, cap - o, "%%%02X", c);
	}
	out[o] = '\0';
}

static long call_big(const char *method, const char *path, const char *body, struct h_resp *r)
{
	size_t cap = strlen(st.base) + strlen(path) + 1;
	char *url = malloc(cap);
	snprintf(url, cap, "%s%s", st.base, path);
	assert_int_equal(h_http(r, method, url, body, body ? -1 : 0, NULL), 0);
	free(url);
	return r->status;
}

/* Paths whose command line is longer than an exec request can carry (quotes, spaces and UTF-8,
 * every byte of which is escaped three times over on the way): listed, read and deleted all
 * the same (the line goes on stdin, the delete list too). */
static void test_long_escaped_paths_are_listed_read_and_deleted(void **state)
{
	(void)state;
	char id[128], dir[1200] = "deep", file[1300], q[4200], url[4600], *body = malloc(64 * 1300);
	struct h_resp r;
	claim(id, 0);
	for (int i = 0; i < 6; i++) {
		size_t n = strlen(dir);
		n += (size_t)snprintf(dir + n, sizeof dir - n, "/%d", i);
		for (int k = 0; k < 20; k++)
			n += (size_t)snprintf(dir + n, sizeof dir - n, "\xc3\xa4'\xc3\xb6 "); /* ä'ö and a space */
	}
	snprintf(file, sizeof file, "%s/f i'l\xc3\xa9.txt", dir);
	assert_true(strlen(file) > 700);
	snprintf(url, sizeof url, "/runners/%s/files", id);
	snprintf(body, 64 * 1300, "{\"copy\":[{\"path\":\"%s\",\"content\":\"bG9uZw==\"}]}", file);
	assert_int_equal(call_big("PATCH", url, body, &r), 204);
	h_resp_free(&r);
	qenc(dir, q, sizeof q);
	snprintf(url, sizeof url, "/runners/%s/files?recursive=false&path=%s", id, q);
	if (call_big("GET", url, NULL, &r) != 200)
		fail_msg("listing a %zu-byte directory: %ld %s", strlen(dir), r.status, r.body ? r.body : "");
	assert_non_null(strstr(r.body, "f i'l\xc3\xa9.txt\",\"entryType\":\"-\",\"size\":4,"));
	h_resp_free(&r);
	qenc(file, q, sizeof q);
	snprintf(url, sizeof url, "/runners/%s/files/raw?path=%s", id, q);
	assert_int_equal(call_big("GET", url, NULL, &r), 200);
	assert_int_equal(r.len, 4);
	assert_memory_equal(r.body, "long", 4);
	h_resp_free(&r);
	/* a delete list of 40 such paths, the file among them */
	size_t n = (size_t)snprintf(body, 64 * 1300, "{\"delete\":[\"%s\"", file);
	for (int i = 0; i < 39; i++)
		n += (size_t)snprintf(body + n, 64 * 1300 - n, ",\"%s/gone %d\"", dir, i);
	snprintf(body + n, 64 * 1300 - n, "]}");
	snprintf(url, sizeof url, "/runners/%s/files", id);
	assert_int_equal(call_big("PATCH", url, body, &r), 204);
	h_resp_free(&r);
	qenc(file, q, sizeof q);
	snprintf(url, sizeof url, "/runners/%s/files/raw?path=%s", id, q);
	assert_int_equal(call_big("GET", url, NULL, &r), 424);
	h_resp_free(&r);
	free(body);
}

static void test_20_mib_round_trip_is_byte_exact(void **state)
{
	(void)state;
	char id[128], path[256];
	size_t n = 20u << 20;
	unsigned char *data = malloc(n);
	unsigned x = 12345;
	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		data[i] = (unsigned char)(x >> 16);
	}
	claim(id, 0);
	char *enc = b64(data, n);
	size_t cap = strlen(enc) + 64;
	char *body = malloc(cap);
	snprintf(body, cap, "{\"copy\":[{\"path\":\"big.bin\",\"content\":\"%s\"}]}", enc);
	free(enc);
	snprintf(path, sizeof path, "/runners/%s/files", id);
	long long t0 = h_now_ms();
	assert_int_equal(status("PATCH", path, body), 204);
	long long up = h_now_ms() - t0;
	free(body);
	struct h_resp r;
	t0 = h_now_ms();
	assert_int_equal(download(id, "big.bin", 0, &r), 200);
	long long down = h_now_ms() - t0;
	assert_int_equal(r.len, n);
	assert_memory_equal(r.body, data, n);
	h_resp_free(&r);
	free(data);
	printf("    20 MiB: upload %lld ms, download %lld ms\n", up, down);
}

/* ---- claims under concurrency, without Nomad ---- */

static struct h_stack bare;

static void seed(struct store *s, long long env, int n)
{
	struct perr e;
	struct environment ev = {.id = env, .ports_null = 1};
	int created;
	assert_int_equal(store_env_put(s, &ev, &created, NULL, &e), 0);
	for (int i = 0; i < n; i++) {
		char id[64];
		snprintf(id, sizeof id, "%lld-synthetic-%04d", env, i);
		assert_int_equal(store_runner_add_starting(s, env, 1, id, &e), 1);
		assert_int_equal(store_runner_ready(s, id, "alloc", "node", NULL, 0, &e), 1);
	}
}

/* Sends n claims at once (curl multi); counts 200s into ids, NOMAD_OVERLOADs into *overload. */
static int storm(int n, char (*ids)[64], int *overload, pid_t kill_group)
{
	CURLM *m = curl_multi_init();
	CURL **h = calloc((size_t)n, sizeof *h);
	char **bodies = calloc((size_t)n, sizeof *bodies);
	size_t *lens = calloc((size_t)n, sizeof *lens);
	char url[256];
	int ok = 0, running, killed = 0;
	snprintf(url, sizeof url, "%s/runners", bare.base);
	struct curl_slist *hl = curl_slist_append(NULL, "Expect:");
	for (int i = 0; i < n; i++) {
		FILE *f = open_memstream(&bodies[i], &lens[i]);
		h[i] = curl_easy_init();
		curl_easy_setopt(h[i], CURLOPT_URL, url);
		curl_easy_setopt(h[i], CURLOPT_POSTFIELDS, "{\"executionEnvironmentId\":50}");
		curl_easy_setopt(h[i], CURLOPT_HTTPHEADER, hl);
		curl_easy_setopt(h[i], CURLOPT_WRITEDATA, f);
		curl_easy_setopt(h[i], CURLOPT_PRIVATE, f);
		curl_easy_setopt(h[i], CURLOPT_TIMEOUT, 30L);
		curl_multi_add_handle(m, h[i]);
	}
	do {
		curl_multi_perform(m, &running);
		curl_multi_poll(m, NULL, 0, 10, NULL);
		if (kill_group > 0 && killed < 5 && running < n - 20 * (killed + 1)) {
			/* SIGKILL one worker in the middle of the storm; lighttpd starts another */
			char cmd[128];
			snprintf(cmd, sizeof cmd, "pkill -KILL -n -g %d -f poseidon-api", (int)kill_group);
			if (system(cmd) == 0)
				killed++;
		}
	} while (running);
	*overload = 0;
	for (int i = 0; i < n; i++) {
		long st_ = 0;
		FILE *f;
		curl_easy_getinfo(h[i], CURLINFO_RESPONSE_CODE, &st_);
		curl_easy_getinfo(h[i], CURLINFO_PRIVATE, (char **)&f);
		fclose(f);
		if (st_ == 200 && sscanf(bodies[i], "{\"runnerId\":\"%63[^\"]\"", ids[ok]) == 1)
			ok++;
		else if (st_ == 500 && strstr(bodies[i], "NOMAD_OVERLOAD"))
			(*overload)++;
		curl_multi_remove_handle(m, h[i]);
		curl_easy_cleanup(h[i]);
		free(bodies[i]);
	}
	curl_slist_free_all(hl);
	curl_multi_cleanup(m);
	free(h);
	free(bodies);
	free(lens);
	return ok;
}

static void test_200_concurrent_claims_are_distinct(void **state)
{
	(void)state;
	struct h_front_opts o = {.workers = 8};
	assert_int_equal(h_stack_start(&bare, &o), 0);
	struct store *s = h_stack_store(&bare);
	seed(s, 50, 200);
	static char ids[201][64];
	int overload;
	int ok = storm(201, ids, &overload, 0);
	assert_int_equal(ok, 200);
	assert_int_equal(overload, 1);
	for (int i = 0; i < ok; i++)
		for (int j = i + 1; j < ok; j++)
			assert_string_not_equal(ids[i], ids[j]);
	store_close(s);
}

static void test_killed_workers_lose_no_runner(void **state)
{
	(void)state;
	struct store *s = h_stack_store(&bare);
	h_redis_cli(&bare.redis, "FLUSHALL");
	seed(s, 50, 300);
	static char ids[300][64];
	int overload;
	int ok = storm(300, ids, &overload, bare.lighttpd);
	long long idle = atoll(h_redis_cli(&bare.redis, "LLEN poseidon:pool:50"));
	long long used = atoll(h_redis_cli(&bare.redis, "SCARD poseidon:used:50"));
	printf("    storm with killed workers: %d answered, %lld idle, %lld used\n", ok, idle, used);
	/* every runner is in exactly one place: nothing lost, nothing twice */
	assert_int_equal(idle + used, 300);
	assert_true(used >= ok);
	for (int i = 0; i < ok; i++) {
		assert_string_equal(h_redis_cli(&bare.redis, "SISMEMBER poseidon:used:50 %s", ids[i]), "1");
		assert_string_equal(h_redis_cli(&bare.redis, "LPOS poseidon:pool:50 %s", ids[i]), "");
	}
	store_close(s);
	h_stack_stop(&bare);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_claim_and_delete),
		cmocka_unit_test(test_unknown_runner_is_410_on_every_route),
		cmocka_unit_test(test_inactivity_timeout_destroys_runner),
		cmocka_unit_test(test_copy_read_delete),
		cmocka_unit_test(test_partial_failure_writes_the_rest),
		cmocka_unit_test(test_listing),
		cmocka_unit_test(test_listing_of_many_files_keeps_the_worker_small),
		cmocka_unit_test(test_download_edges),
		cmocka_unit_test(test_long_escaped_paths_are_listed_read_and_deleted),
		cmocka_unit_test(test_20_mib_round_trip_is_byte_exact),
		cmocka_unit_test(test_200_concurrent_claims_are_distinct),
		cmocka_unit_test(test_killed_workers_lose_no_runner),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
