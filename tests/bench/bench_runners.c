/* Runner benchmarks (issue 5), each against its baseline in the same run:
 *   1. claims (POST /runners with a ready pool) through lighttpd with wrk, 32 connections, against
 *      a hello-world FastCGI responder behind the same lighttpd.conf and worker count (this
 *      program with --hello); targets: >= 80% of its throughput, p99 < 2 ms;
 *   2. copying 10 MiB in 100 files with PATCH /files against the raw exec of nomad-local carrying
 *      the same tar into the same command; target < 2x;
 *   3. download throughput of a 50 MiB file.
 * Prints figures; nothing is asserted about time. */
#include <fcgiapp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "files.h"
#include "harness.h"
#include "nomad.h"
#include "nomad_exec.h"

#define WORKERS 8
#define SEED_RUNNERS 400000

static int hello(void)
{
	FCGX_Request r;
	static const char body[] = "{\"runnerId\":\"0-00000000-0000-0000-0000-000000000000\",\"mappedPorts\":[]}";
	FCGX_Init();
	FCGX_InitRequest(&r, 0, 0);
	while (FCGX_Accept_r(&r) >= 0) {
		char buf[4096];
		while (FCGX_GetStr(buf, sizeof buf, r.in) > 0)
			;
		FCGX_FPrintF(r.out, "Status: 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			     sizeof body - 1, body);
		FCGX_Finish_r(&r);
	}
	return 0;
}

struct wrk_result {
	double rps, p50_ms, p99_ms;
	long non2xx;
};

static double to_ms(const char *v)
{
	double x = atof(v);
	if (strstr(v, "us"))
		return x / 1000;
	if (strstr(v, "ms"))
		return x;
	return x * 1000; /* s */
}

static int run_wrk(const char *url, struct wrk_result *w)
{
	char script[512], cmd[1024], line[512];
	snprintf(script, sizeof script, "%s/claim.lua", h_tmpdir());
	FILE *f = fopen(script, "w");
	fprintf(f, "wrk.method = \"POST\"\nwrk.body = '{\"executionEnvironmentId\":1}'\n");
	fclose(f);
	snprintf(cmd, sizeof cmd, "wrk -t2 -c32 -d5s --latency -s %s %s 2>&1", script, url);
	FILE *p = popen(cmd, "r");
	memset(w, 0, sizeof *w);
	while (p && fgets(line, sizeof line, p)) {
		char a[64];
		if (sscanf(line, " 50%% %63s", a) == 1)
			w->p50_ms = to_ms(a);
		else if (sscanf(line, " 99%% %63s", a) == 1)
			w->p99_ms = to_ms(a);
		else if (sscanf(line, "Requests/sec: %lf", &w->rps) != 1)
			sscanf(line, " Non-2xx or 3xx responses: %ld", &w->non2xx);
	}
	return p ? pclose(p) : -1;
}

static void bench_claims(char *self)
{
	struct h_stack hw = {0}, api = {0};
	struct h_front_opts o = {.workers = WORKERS};
	char wrap[1024], dir[600], url[256];
	/* the hello-world responder, started by lighttpd exactly as poseidon-api is */
	snprintf(dir, sizeof dir, "%s/hello-bin", h_tmpdir());
	mkdir(dir, 0755);
	snprintf(wrap, sizeof wrap, "%s/poseidon-api", dir);
	FILE *f = fopen(wrap, "w");
	fprintf(f, "#!/bin/sh\nexec %s --hello\n", self);
	fclose(f);
	chmod(wrap, 0755);
	char real[1024];
	snprintf(real, sizeof real, "%s", h_bin_dir());
	setenv("POSEIDON_BIN_DIR", dir, 1);
	int rc = h_stack_start(&hw, &o);
	setenv("POSEIDON_BIN_DIR", real, 1);
	if (rc < 0)
		return;
	/* the service talks to Redis over its unix socket, as docs/operations.md recommends on one host */
	static char sockenv[700];
	if (h_redis_start(&api.redis) < 0)
		return;
	snprintf(sockenv, sizeof sockenv, "POSEIDON_REDIS_ADDRESS=%s/redis.sock", api.redis.dir);
	const char *env[] = {sockenv, NULL};
	o.env = env;
	if (h_stack_start(&api, &o) < 0)
		return;
	/* a big ready pool of synthetic runners, created inside Redis in one script */
	h_redis_cli(&api.redis,
		    "EVAL \"redis.call('HSET', 'poseidon:env:1', 'id', '1', 'prewarmingPoolSize', '1', 'generation', '1') "
		    "redis.call('SADD', 'poseidon:envs', '1') "
		    "for i = 1, tonumber(ARGV[1]) do local id = '1-bench-' .. i "
		    "redis.call('HSET', 'poseidon:runner:' .. id, 'env', '1', 'generation', '1', 'state', 'idle', 'allocId', 'a', 'mappedPorts', '[]') "
		    "redis.call('RPUSH', 'poseidon:pool:1', id) end return 1\" 0 %d",
		    SEED_RUNNERS);
	struct wrk_result base, claims;
	snprintf(url, sizeof url, "%s/runners", hw.base);
	run_wrk(url, &base);
	snprintf(url, sizeof url, "%s/runners", api.base);
	run_wrk(url, &claims);
	long long left = atoll(h_redis_cli(&api.redis, "LLEN poseidon:pool:1"));
	printf("claims through lighttpd, %d workers, wrk 32 connections, 5 s each\n", WORKERS);
	printf("  hello-world FastCGI: %8.0f req/s  p50 %.3f ms  p99 %.3f ms\n", base.rps, base.p50_ms, base.p99_ms);
	printf("  POST /runners:       %8.0f req/s  p50 %.3f ms  p99 %.3f ms  (%ld non-2xx, %lld runners claimed)\n",
	       claims.rps, claims.p50_ms, claims.p99_ms, claims.non2xx, SEED_RUNNERS - left);
	printf("  ratio: %.0f%% of hello-world (target >= 80%%), p99 target < 2 ms\n",
	       base.rps > 0 ? 100.0 * claims.rps / base.rps : 0.0);
	h_stack_stop(&hw);
	h_stack_stop(&api);
}

static ssize_t tar_stdin(void *ud, void *buf, size_t cap)
{
	struct perr e;
	return tar_stream_read(ud, buf, cap, &e);
}

static void bench_files(void)
{
	struct h_stack st = {0};
	struct h_front_opts o = {.workers = WORKERS};
	if (h_redis_start(&st.redis) < 0 || h_stack_start_nomad(&st) < 0 || h_stack_start(&st, &o) < 0 ||
	    h_stack_start_refill(&st, NULL) < 0)
		return;
	char url[512], id[128];
	struct h_resp r;
	snprintf(url, sizeof url, "%s/execution-environments/2", st.base);
	h_http(&r, "PUT", url, "{\"prewarmingPoolSize\":2,\"cpuLimit\":100,\"memoryLimit\":1024,\"image\":\"img\"}", -1, NULL);
	h_resp_free(&r);
	snprintf(url, sizeof url, "%s/runners", st.base);
	for (int i = 0; i < 300; i++) {
		h_http(&r, "POST", url, "{\"executionEnvironmentId\":2}", -1, NULL);
		if (r.status == 200)
			break;
		h_resp_free(&r);
		h_sleep_ms(100);
	}
	sscanf(r.body, "{\"runnerId\":\"%127[^\"]\"", id);
	h_resp_free(&r);
	char alloc[64];
	snprintf(alloc, sizeof alloc, "%s", h_redis_cli(&st.redis, "HGET poseidon:runner:%s allocId", id));

	/* 100 files of about 100 KiB (10 MiB in all), sizes never a multiple of 512 on purpose: tar
	 * records are 512 bytes, and aligned sizes once hid a copy bug */
	enum { FILES = 100, SIZE = 100 * 1024 };
	static struct file_copy copies[FILES];
	static unsigned char data[FILES][SIZE + 1024];
	static char paths[FILES][32];
	size_t sizes[FILES], total = 0;
	for (int i = 0; i < FILES; i++) {
		sizes[i] = SIZE - 512 + (size_t)(i * 7919 % 1021);
		if (sizes[i] % 512 == 0)
			sizes[i]++;
		total += sizes[i];
		for (size_t j = 0; j < sizes[i]; j++)
			data[i][j] = (unsigned char)(i * 31 + j * 7);
		snprintf(paths[i], sizeof paths[i], "bench/f%03d.bin", i);
		copies[i] = (struct file_copy){.path = paths[i], .content = data[i], .len = sizes[i]};
	}
	/* the request body: base64 as CodeOcean sends it */
	static const char *t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t cap = total * 4 / 3 + (size_t)FILES * 80 + 64, n = 0;
	char *body = malloc(cap);
	n += (size_t)snprintf(body + n, cap - n, "{\"copy\":[");
	for (int i = 0; i < FILES; i++) {
		size_t len = sizes[i];
		n += (size_t)snprintf(body + n, cap - n, "%s{\"path\":\"%s\",\"content\":\"", i ? "," : "", paths[i]);
		for (size_t j = 0; j < len; j += 3) {
			unsigned v = (unsigned)data[i][j] << 16 | (j + 1 < len ? (unsigned)data[i][j + 1] << 8 : 0) |
				     (j + 2 < len ? data[i][j + 2] : 0);
			body[n++] = t[v >> 18 & 63];
			body[n++] = t[v >> 12 & 63];
			body[n++] = j + 1 < len ? t[v >> 6 & 63] : '=';
			body[n++] = j + 2 < len ? t[v & 63] : '=';
		}
		n += (size_t)snprintf(body + n, cap - n, "\"}");
	}
	n += (size_t)snprintf(body + n, cap - n, "]}");

	struct config c;
	struct nomad_endpoint ep;
	config_defaults(&c);
	c.nomad.port = st.nomad.port;
	nomad_endpoint_from_config(&ep, &c);
	char *line = cmd_copy_files(NULL, 0);
	const char *argv[] = {"/bin/bash", "-c", line, NULL};
	struct nomad_exec_opts xo = {.alloc_id = alloc, .argv = argv};
	long long raw_best = -1, api_best = -1;
	long api_status = 0;
	for (int round = 0; round < 3; round++) {
		struct perr e;
		struct tar_stream *ts = tar_stream_new(copies, FILES, &e);
		struct nomad_exec_io io = {.read_stdin = tar_stdin, .ud = ts};
		int code;
		long long t0 = h_now_ms();
		nomad_exec_run(&ep, &xo, &io, 60000, &code, NULL, &e);
		long long raw = h_now_ms() - t0;
		tar_stream_free(ts);
		snprintf(url, sizeof url, "%s/runners/%s/files", st.base, id);
		t0 = h_now_ms();
		h_http(&r, "PATCH", url, body, (long)n, NULL);
		long long api = h_now_ms() - t0;
		api_status = r.status;
		h_resp_free(&r);
		if (raw_best < 0 || raw < raw_best)
			raw_best = raw;
		if (api_best < 0 || api < api_best)
			api_best = api;
	}
	free(line);
	free(body);
	printf("copy of %.1f MiB in %d files of unaligned sizes (best of 3)\n", (double)total / 1048576, FILES);
	printf("  raw exec of the same tar:   %lld ms\n", raw_best);
	printf("  PATCH /files (%.1f MB JSON): %lld ms  ratio %.2fx (target < 2x), answer %ld\n", (double)n / 1e6,
	       api_best, raw_best > 0 ? (double)api_best / (double)raw_best : 0.0, api_status);

	/* download of 50 MiB, created inside the runner */
	char *mk = "head -c 52428800 /dev/urandom > /workspace/big.bin";
	const char *argv2[] = {"/bin/bash", "-c", mk, NULL};
	struct nomad_exec_opts mo = {.alloc_id = alloc, .argv = argv2};
	int code;
	struct perr e;
	nomad_exec_run(&ep, &mo, NULL, 60000, &code, NULL, &e);
	snprintf(url, sizeof url, "%s/runners/%s/files/raw?path=big.bin", st.base, id);
	long long t0 = h_now_ms();
	h_http(&r, "GET", url, NULL, -1, NULL);
	long long ms = h_now_ms() - t0;
	printf("download of 50 MiB: %ld, %zu bytes in %lld ms = %.0f MiB/s\n", r.status, r.len, ms,
	       ms > 0 ? 50.0 * 1000 / (double)ms : 0.0);
	h_resp_free(&r);
	h_stack_stop(&st);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--hello") == 0)
		return hello();
	char self[1024];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	self[n > 0 ? n : 0] = '\0';
	bench_claims(self);
	bench_files();
	return 0;
}
