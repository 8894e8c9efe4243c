/* deploy/systemd: systemd is not PID 1 on these machines, so the units cannot be started here.
 * What can be run is run: the ExecStart= lines of the units, read from the files, with the
 * install paths pointed at this build, against a real Redis, and with what systemd would hand
 * them (poseidon-api.service receives the listening socket of poseidon-api.socket as fd 0, as
 * StandardInput=socket does). Requests go over FastCGI from a small client in this file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define UNIT_LINE_MAX 2048
#define WORKERS       3

static struct h_redis redis;

static int setup(void **state)
{
	(void)state;
	return h_redis_start(&redis);
}

static int teardown(void **state)
{
	(void)state;
	h_stop_all();
	return 0;
}

/* The value of the first "key=" line of a unit file (continuation lines are not used by ours). */
static int unit_value(const char *unit, const char *key, char *out, size_t cap)
{
	char path[1024], line[UNIT_LINE_MAX];
	snprintf(path, sizeof path, "%s/deploy/systemd/%s", h_src_dir(), unit);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = strlen(key);
	int found = 0;
	while (!found && fgets(line, sizeof line, f))
		if (strncmp(line, key, n) == 0 && line[n] == '=') {
			line[strcspn(line, "\n")] = '\0';
			snprintf(out, cap, "%s", line + n + 1);
			found = 1;
		}
	fclose(f);
	return found;
}

/* ExecStart of unit, with /usr/local/bin/ pointed at this build and ${POSEIDON_API_WORKERS} and
 * /run/poseidon/api.sock replaced; split into argv (no quoting in our units). */
static int exec_start(const char *unit, const char *sock, char *buf, size_t cap, char **argv, int max)
{
	char raw[UNIT_LINE_MAX], workers[8];
	assert_true(unit_value(unit, "ExecStart", raw, sizeof raw));
	snprintf(workers, sizeof workers, "%d", WORKERS);
	size_t o = 0;
	for (const char *p = raw; *p && o + 600 < cap;) {
		const char *rep = NULL;
		size_t skip = 0;
		if (strncmp(p, "/usr/local/bin/", 15) == 0)
			rep = h_bin_dir(), skip = 14; /* keep the '/' */
		else if (strncmp(p, "${POSEIDON_API_WORKERS}", 23) == 0)
			rep = workers, skip = 23;
		else if (sock && strncmp(p, "/run/poseidon/api.sock", 22) == 0)
			rep = sock, skip = 22;
		if (rep) {
			o += (size_t)snprintf(buf + o, cap - o, "%s", rep);
			p += skip;
		} else {
			buf[o++] = *p++;
		}
	}
	buf[o] = '\0';
	int argc = 0;
	for (char *save = NULL, *t = strtok_r(buf, " ", &save); t && argc < max - 1;
	     t = strtok_r(NULL, " ", &save))
		argv[argc++] = t;
	argv[argc] = NULL;
	return argc;
}

static char *const *worker_env(void)
{
	static char port[64];
	static char *env[] = {port, "POSEIDON_REDIS_ADDRESS=127.0.0.1", "POSEIDON_NOMAD_PORT=1",
	                      "POSEIDON_CONFIG=", NULL};
	snprintf(port, sizeof port, "POSEIDON_REDIS_PORT=%d", redis.port);
	return env;
}

/* As systemd starts a service with StandardInput=socket: fd 0 is the listening socket, stdout and
 * stderr go to the journal (here a log file). Own process group, dies with this test. */
static pid_t spawn_on_socket(char *const argv[], int listen_fd, const char *log)
{
	pid_t parent = getpid(), pid = fork();
	if (pid != 0)
		return pid;
	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	dup2(listen_fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	for (char *const *e = worker_env(); *e; e++)
		putenv(*e);
	execv(argv[0], argv);
	_exit(127);
}

/* ---- a minimal FastCGI client (the web server's side) ---------------------------------------- */

static void put_record(char *b, size_t *n, int type, const void *data, size_t len)
{
	unsigned char h[8] = {1, (unsigned char)type, 0, 1, (unsigned char)(len >> 8), (unsigned char)len, 0,
	                      0};
	memcpy(b + *n, h, 8);
	memcpy(b + *n + 8, data, len);
	*n += 8 + len;
}

static void put_param(char *p, size_t *n, const char *k, const char *v)
{
	p[(*n)++] = (char)strlen(k);
	p[(*n)++] = (char)strlen(v);
	memcpy(p + *n, k, strlen(k));
	*n += strlen(k);
	memcpy(p + *n, v, strlen(v));
	*n += strlen(v);
}

/* GET path over FastCGI on the unix socket; the CGI response (headers + body) into out. 0 or -1. */
static int fcgi_get(const char *sock, const char *path, char *out, size_t cap)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char req[4096], params[2048];
	size_t n = 0, pn = 0, o = 0;
	static const unsigned char begin[8] = {0, 1, 0, 0, 0, 0, 0, 0}; /* responder, no keep-conn */
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = {10, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		fprintf(stderr, "fcgi: connect %s: %s\n", sock, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	put_param(params, &pn, "REQUEST_METHOD", "GET");
	put_param(params, &pn, "REQUEST_URI", path);
	put_param(params, &pn, "SCRIPT_NAME", path);
	put_param(params, &pn, "SERVER_PROTOCOL", "HTTP/1.1");
	put_param(params, &pn, "GATEWAY_INTERFACE", "CGI/1.1");
	put_param(params, &pn, "CONTENT_LENGTH", "0");
	put_record(req, &n, 1, begin, 8);
	put_record(req, &n, 4, params, pn);
	put_record(req, &n, 4, "", 0);
	put_record(req, &n, 5, "", 0);
	int rc = write(fd, req, n) == (ssize_t)n ? 0 : -1;
	unsigned char h[8];
	while (rc == 0) {
		if (recv(fd, h, 8, MSG_WAITALL) != 8) {
			fprintf(stderr, "fcgi: %s: no record header (%s)\n", path, strerror(errno));
			rc = -1;
			break;
		}
		size_t len = (size_t)h[4] << 8 | h[5], pad = h[6];
		char body[65536 + 256];
		if (len + pad && recv(fd, body, len + pad, MSG_WAITALL) != (ssize_t)(len + pad)) {
			rc = -1;
			break;
		}
		if (h[1] == 6 && o + len < cap) { /* FCGI_STDOUT */
			memcpy(out + o, body, len);
			o += len;
		}
		if (h[1] == 3) /* FCGI_END_REQUEST */
			break;
	}
	out[o < cap ? o : cap - 1] = '\0';
	close(fd);
	return rc;
}

/* ---- processes --------------------------------------------------------------------------------- */

/* Pids whose parent is ppid and whose command is poseidon-api. */
static int api_children(pid_t ppid, pid_t *out, int max)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int n = 0;
	while (d && (de = readdir(d)) && n < max) {
		char path[300], buf[1024];
		pid_t pid = (pid_t)atoi(de->d_name);
		if (pid <= 0)
			continue;
		snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		size_t len = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[len] = '\0';
		char *close_paren = strrchr(buf, ')');
		int parent = 0;
		char st = 0;
		if (close_paren && sscanf(close_paren + 1, " %c %d", &st, &parent) == 2 && parent == ppid &&
		    st != 'Z' && strstr(buf, "(poseidon-api)"))
			out[n++] = pid;
	}
	if (d)
		closedir(d);
	return n;
}

static int wait_children(pid_t ppid, int want, int timeout_ms)
{
	pid_t kids[32];
	for (long long t0 = h_now_ms(); h_now_ms() - t0 < timeout_ms; h_sleep_ms(50))
		if (api_children(ppid, kids, 32) == want)
			return 0;
	return -1;
}

/* systemd's stop with KillMode=mixed (the API units): SIGTERM to the main process (multiwatch,
 * which passes it on to the workers), then SIGKILL to whatever of the group is left once it has
 * exited. Every worker must have finished by itself: nothing may be left for the SIGKILL. */
static void stop_like_systemd(pid_t main_pid)
{
	int status;
	kill(main_pid, SIGTERM);
	pid_t r = 0;
	for (long long t0 = h_now_ms(); r == 0 && h_now_ms() - t0 < 10000; h_sleep_ms(20))
		r = waitpid(main_pid, &status, WNOHANG);
	if (r != main_pid) {
		kill(-main_pid, SIGKILL); /* TimeoutStopSec passed */
		waitpid(main_pid, &status, 0);
		fail_msg("the service did not stop within 10 s of SIGTERM");
	}
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	for (long long t0 = h_now_ms(); kill(-main_pid, 0) == 0 && h_now_ms() - t0 < 2000;)
		h_sleep_ms(20);
	int left = kill(-main_pid, 0) == 0;
	if (left)
		kill(-main_pid, SIGKILL);
	assert_false(left); /* a worker outlived its supervisor */
}

/* The workers serve, one that dies is replaced, SIGTERM ends them all. */
static void check_supervised_workers(pid_t main_pid, const char *sock)
{
	char resp[8192];
	pid_t kids[32];
	assert_int_equal(fcgi_get(sock, "/api/v1/health", resp, sizeof resp), 0);
	assert_non_null(strstr(resp, "Status: 204"));
	assert_int_equal(wait_children(main_pid, WORKERS, 5000), 0);
	assert_int_equal(fcgi_get(sock, "/api/v1/statistics/execution-environments", resp, sizeof resp), 0);
	assert_non_null(strstr(resp, "Status: 200"));
	assert_non_null(strstr(resp, "\r\n\r\n{}"));
	/* a worker killed hard is replaced, and requests go on being served meanwhile */
	assert_int_equal(api_children(main_pid, kids, 32), WORKERS);
	kill(kids[0], SIGKILL);
	/* kill() returns before the worker is dead: one blocked in accept() may still take a connection
	 * and drop it. Real crashes lose that one request; the test waits until the worker is gone. */
	for (long long t0 = h_now_ms(); h_now_ms() - t0 < 5000; h_sleep_ms(10)) {
		pid_t left[32];
		int n = api_children(main_pid, left, 32), alive = 0;
		for (int i = 0; i < n; i++)
			alive |= left[i] == kids[0];
		if (!alive)
			break;
	}
	for (int i = 0; i < 20; i++) {
		assert_int_equal(fcgi_get(sock, "/api/v1/health", resp, sizeof resp), 0);
		assert_non_null(strstr(resp, "Status: 204"));
	}
	assert_int_equal(wait_children(main_pid, WORKERS, 5000), 0);
	pid_t now[32];
	assert_int_equal(api_children(main_pid, now, 32), WORKERS);
	for (int i = 0; i < WORKERS; i++)
		assert_true(now[i] != kids[0]);
	stop_like_systemd(main_pid);
}

static void test_api_service_runs_workers_on_the_socket_units_fd_0(void **state)
{
	(void)state;
	char buf[UNIT_LINE_MAX * 2], *argv[32], sock[600], log[600], v[256];
	/* the socket unit's socket and the service's handling of it */
	assert_true(unit_value("poseidon-api.socket", "ListenStream", v, sizeof v));
	assert_string_equal(v, "/run/poseidon/api.sock");
	assert_true(unit_value("poseidon-api.service", "StandardInput", v, sizeof v));
	assert_string_equal(v, "socket");
	assert_true(unit_value("poseidon-api.service", "StandardError", v, sizeof v));
	assert_string_equal(v, "journal"); /* not inherited from stdout, which is the socket */
	assert_true(unit_value("poseidon-api.service", "KillMode", v, sizeof v));
	assert_string_equal(v, "mixed"); /* what stop_like_systemd does */
	exec_start("poseidon-api.service", NULL, buf, sizeof buf, argv, 32);
	assert_string_equal(argv[0], "/usr/bin/multiwatch");

	snprintf(sock, sizeof sock, "%s/api.sock", h_tmpdir());
	snprintf(log, sizeof log, "%s/api-service.log", h_tmpdir());
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(lfd, 1024), 0);
	pid_t pid = spawn_on_socket(argv, lfd, log);
	assert_true(pid > 0);
	/* the socket was there before the service: the first request waits in its backlog */
	check_supervised_workers(pid, sock);
	/* systemd keeps the socket across restarts: a second start serves on the same one */
	pid = spawn_on_socket(argv, lfd, log);
	char resp[4096];
	assert_int_equal(fcgi_get(sock, "/api/v1/health", resp, sizeof resp), 0);
	assert_non_null(strstr(resp, "Status: 204"));
	stop_like_systemd(pid);
	close(lfd);
}

static void test_spawnfcgi_service_creates_the_socket_and_runs_workers(void **state)
{
	(void)state;
	char buf[UNIT_LINE_MAX * 2], *argv[32], sock[600], v[64];
	assert_true(unit_value("poseidon-api-spawnfcgi.service", "KillMode", v, sizeof v));
	assert_string_equal(v, "mixed");
	snprintf(sock, sizeof sock, "%s/spawn.sock", h_tmpdir());
	exec_start("poseidon-api-spawnfcgi.service", sock, buf, sizeof buf, argv, 32);
	assert_string_equal(argv[0], "/usr/bin/spawn-fcgi");
	pid_t pid = h_spawn(argv, worker_env(), NULL);
	assert_true(pid > 0);
	for (long long t0 = h_now_ms(); access(sock, F_OK) != 0 && h_now_ms() - t0 < 5000;)
		h_sleep_ms(20);
	struct stat sb;
	assert_int_equal(stat(sock, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0660); /* -M 0660: the web server's group, nobody else */
	/* spawn-fcgi -n execs multiwatch in its own process: the unit's main pid supervises */
	check_supervised_workers(pid, sock);
}

/* Runs cmd (a shell command line) and returns its exit status; its output in out. */
static int run_shell(const char *cmd, char *out, size_t cap)
{
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t n = fread(out, 1, cap - 1, p);
	out[n] = '\0';
	return pclose(p);
}

/* The unit's Environment= lines, then its ExecStartPre= lines in order, as systemd runs them: the
 * one that derives lighttpd's body limit from the workers' configuration (here a file with
 * server.maxbodysize 1000000) and writes it to the environment file the unit reads, then
 * `lighttpd -tt` on lighttpd.conf with all of it (an unset variable fails). */
static void test_lighttpd_service_environment_satisfies_lighttpd_conf(void **state)
{
	(void)state;
	char path[1024], line[UNIT_LINE_MAX], env[8192], cmd[16384], conf[1024], yaml[600], out[4096];
	char pre[4][UNIT_LINE_MAX];
	int npre = 0;
	size_t o = 0;
	snprintf(path, sizeof path, "%s/deploy/systemd/poseidon-lighttpd.service", h_src_dir());
	snprintf(conf, sizeof conf, "%s/lighttpd.conf", h_src_dir());
	snprintf(yaml, sizeof yaml, "%s/lighttpd-unit.yaml", h_tmpdir());
	FILE *y = fopen(yaml, "w");
	assert_non_null(y);
	fputs("server:\n  maxbodysize: 1000000\n", y);
	fclose(y);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	o += (size_t)snprintf(env, sizeof env, "env -i");
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "ExecStartPre=", 13) == 0 && npre < 4)
			snprintf(pre[npre++], sizeof pre[0], "%s", line + 13);
		if (strncmp(line, "Environment=", 12) != 0)
			continue;
		const char *kv = line + 12;
		/* directories and files of an installation, here: this tree and the test's temp dir */
		if (strncmp(kv, "POSEIDON_RUN_DIR=", 17) == 0)
			o += (size_t)snprintf(env + o, sizeof env - o, " POSEIDON_RUN_DIR=%s", h_tmpdir());
		else if (strncmp(kv, "POSEIDON_WWW_DIR=", 17) == 0)
			o += (size_t)snprintf(env + o, sizeof env - o, " POSEIDON_WWW_DIR=%s/deploy/www",
			                      h_src_dir());
		else if (strncmp(kv, "POSEIDON_BIN_DIR=", 17) == 0)
			o += (size_t)snprintf(env + o, sizeof env - o, " POSEIDON_BIN_DIR=%s", h_bin_dir());
		else if (strncmp(kv, "POSEIDON_CONFIG=", 16) == 0)
			o += (size_t)snprintf(env + o, sizeof env - o, " POSEIDON_CONFIG=%s", yaml);
		else
			o += (size_t)snprintf(env + o, sizeof env - o, " '%s'", kv);
	}
	fclose(f);
	int derived = 0, checked = 0;
	for (int i = 0; i < npre; i++) {
		if (strncmp(pre[i], "/bin/sh -c '", 12) == 0) {
			/* the script between the quotes, $$ unescaped as systemd does, the installation's
			 * paths pointed here; the file it writes is the unit's EnvironmentFile= */
			char script[UNIT_LINE_MAX * 2], file[700], envfile[700];
			size_t so = 0;
			snprintf(envfile, sizeof envfile, "%s/front.env", h_tmpdir());
			for (const char *p = pre[i] + 12; *p && *p != '\'' && so + 600 < sizeof script;) {
				if (p[0] == '$' && p[1] == '$')
					script[so++] = '$', p += 2;
				else if (strncmp(p, "/usr/local/bin/", 15) == 0)
					so += (size_t)snprintf(script + so, sizeof script - so, "%s/",
					                       h_bin_dir()),
					    p += 15;
				else if (strncmp(p, "/run/poseidon-lighttpd/front.env", 32) == 0)
					so +=
					    (size_t)snprintf(script + so, sizeof script - so, "%s", envfile),
					    p += 32;
				else
					script[so++] = *p++;
			}
			script[so] = '\0';
			snprintf(file, sizeof file, "%s/exec-start-pre.sh", h_tmpdir());
			FILE *sf = fopen(file, "w");
			assert_non_null(sf);
			fputs(script, sf);
			fclose(sf);
			snprintf(cmd, sizeof cmd, "%s /bin/sh %s 2>&1", env, file);
			if (run_shell(cmd, out, sizeof out) != 0)
				fail_msg("%s\n%s", script, out);
			FILE *ef = fopen(envfile, "r");
			assert_non_null(ef);
			char kv[256] = "";
			assert_non_null(fgets(kv, sizeof kv, ef));
			fclose(ef);
			kv[strcspn(kv, "\n")] = '\0';
			/* 1000000 bytes are 976.6 kB: lighttpd takes 977, never less than the workers */
			assert_string_equal(kv, "POSEIDON_FRONT_MAXBODY_KB=977");
			o += (size_t)snprintf(env + o, sizeof env - o, " %s", kv);
			derived = 1;
		} else if (strncmp(pre[i], "/usr/sbin/lighttpd -tt ", 23) == 0) {
			/* lighttpd -tt: parse and pre-flight the config; an unset variable fails */
			assert_true(derived);
			snprintf(cmd, sizeof cmd, "%s /usr/sbin/lighttpd -tt -f %s 2>&1", env, conf);
			if (run_shell(cmd, out, sizeof out) != 0)
				fail_msg("%s\n%s", cmd, out);
			checked = 1;
		}
	}
	assert_true(derived && checked);
}

/* Every program a unit starts is one a Debian package installs or one this tree builds. */
static void test_units_start_programs_that_exist(void **state)
{
	(void)state;
	static const char *const units[] = {"poseidon-refill.service",   "poseidon-wsgate.service",
	                                    "poseidon-api.service",      "poseidon-api-spawnfcgi.service",
	                                    "poseidon-lighttpd.service", NULL};
	size_t bl = strlen(h_bin_dir());
	for (const char *const *u = units; *u; u++) {
		char buf[UNIT_LINE_MAX * 2], *argv[32], app[1024];
		int argc = exec_start(*u, NULL, buf, sizeof buf, argv, 32);
		assert_true(argc > 0);
		if (access(argv[0], X_OK) != 0)
			fprintf(stderr, "%s: %s is not installed\n", *u, argv[0]);
		for (int i = 0; i < argc; i++) {
			if (i > 0 && strncmp(argv[i], h_bin_dir(), bl) != 0)
				continue;
			/* ours: poseidon-<x> comes from app/<x>/main.c (a program still being written is
			 * skipped) */
			const char *name = strncmp(argv[i], h_bin_dir(), bl) == 0 ? argv[i] + bl + 1 : NULL;
			if (name && strncmp(name, "poseidon-", 9) == 0) {
				snprintf(app, sizeof app, "%s/app/%s/main.c", h_src_dir(), name + 9);
				if (access(app, F_OK) != 0)
					continue;
			}
			assert_int_equal(access(argv[i], X_OK), 0);
		}
	}
}

/* deploy/configuration.example.yaml loads without an error or an unknown key, and every variable
 * deploy/poseidon.env.example names (commented or not) is one the programs or the units read. */
static void test_example_configuration_and_env_file_load(void **state)
{
	(void)state;
	char cmd[2048], out[8192], path[1024], line[512];
	snprintf(cmd, sizeof cmd,
	         "env -i %s/poseidon-api -config %s/deploy/configuration.example.yaml -config-get "
	         "redis.prefix 2>&1",
	         h_bin_dir(), h_src_dir());
	FILE *p = popen(cmd, "r");
	size_t n = fread(out, 1, sizeof out - 1, p);
	out[n] = '\0';
	assert_int_equal(pclose(p), 0);
	assert_string_equal(out, "poseidon:\n"); /* no warning line before it */
	snprintf(path, sizeof path, "%s/deploy/poseidon.env.example", h_src_dir());
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	int vars = 0;
	while (fgets(line, sizeof line, f)) {
		char *v = line[0] == '#' ? line + 1 : line;
		size_t k = strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_");
		if (k < 10 || strncmp(v, "POSEIDON_", 9) != 0 || v[k] != '=')
			continue; /* prose */
		char name[128];
		snprintf(name, sizeof name, "%.*s", (int)k, v);
		vars++;
		if (strcmp(name, "POSEIDON_CONFIG") == 0 || strcmp(name, "POSEIDON_API_WORKERS") == 0 ||
		    strcmp(name, "POSEIDON_FRONT_WRITE_IDLE") == 0)
			continue; /* read by the programs' loader, by the units, by lighttpd.conf */
		/* a configuration variable: the programs accept a value for it (a bad one would fail) */
		snprintf(cmd, sizeof cmd, "%s/poseidon-api -config-reference | grep -q '`%s`'", h_bin_dir(),
		         name);
		if (system(cmd) != 0)
			fprintf(stderr, "poseidon.env.example names %s, which no program reads\n", name);
		assert_int_equal(system(cmd), 0);
	}
	fclose(f);
	assert_true(vars >= 6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_units_start_programs_that_exist),
	    cmocka_unit_test(test_api_service_runs_workers_on_the_socket_units_fd_0),
	    cmocka_unit_test(test_spawnfcgi_service_creates_the_socket_and_runs_workers),
	    cmocka_unit_test(test_lighttpd_service_environment_satisfies_lighttpd_conf),
	    cmocka_unit_test(test_example_configuration_and_env_file_load),
	};
	return cmocka_run_group_tests_name("deploy_systemd", tests, setup, teardown);
}
