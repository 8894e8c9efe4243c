/* harness: see harness.h. Children are tracked in a small table; h_stop_all runs at exit and
 * on SIGINT/SIGTERM/SIGABRT. Each child is a process-group leader so that stopping it also
 * stops what it spawned (lighttpd's FastCGI workers, multiwatch's workers, nginx's and Apache's
 * own worker processes). */
#include "harness.h"
#include "contract.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CHILDREN 64

static char tmpdir[256];
static pid_t children[MAX_CHILDREN];
static pid_t owner_pid;

long long h_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void h_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	remove(path);
	return 0;
}

static void cleanup(void)
{
	if (getpid() != owner_pid)
		return;
	h_stop_all();
	if (tmpdir[0] && !getenv("POSEIDON_TEST_KEEP"))
		nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void on_signal(int sig)
{
	cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

const char *h_tmpdir(void)
{
	if (tmpdir[0])
		return tmpdir;
	owner_pid = getpid();
	snprintf(tmpdir, sizeof tmpdir, "/tmp/poseidon-test-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		exit(1);
	}
	chmod(tmpdir, 0755);
	/* orphans of our children (lighttpd's workers when it exits first) are reparented to us,
	 * so h_stop can wait for them to finish, e.g. a sanitizer's leak check */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	atexit(cleanup);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGABRT, on_signal);
	signal(SIGSEGV, on_signal);
	signal(SIGPIPE, SIG_IGN);
	return tmpdir;
}

const char *h_bin_dir(void)
{
	const char *d = getenv("POSEIDON_BIN_DIR");
	return d && *d ? d : "build/bin";
}

const char *h_src_dir(void)
{
	const char *d = getenv("POSEIDON_SRC_DIR");
	return d && *d ? d : ".";
}

int h_free_port(void)
{
	/* Bind to port 0 and take what the kernel picked; keep away from recently handed ports. */
	static int handed[256];
	static int nhanded;
	for (int tries = 0; tries < 100; tries++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		socklen_t len = sizeof a;
		if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
		    getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		close(fd);
		int port = ntohs(a.sin_port), seen = 0;
		for (int i = 0; i < nhanded; i++)
			seen |= handed[i] == port;
		if (seen)
			continue;
		handed[nhanded++ % 256] = port;
		return port;
	}
	return -1;
}

static void track(pid_t pid)
{
	for (int i = 0; i < MAX_CHILDREN; i++)
		if (!children[i]) {
			children[i] = pid;
			return;
		}
}

static void untrack(pid_t pid)
{
	for (int i = 0; i < MAX_CHILDREN; i++)
		if (children[i] == pid)
			children[i] = 0;
}

pid_t h_spawn(char *const argv[], char *const extra_env[], const char *logfile)
{
	char logpath[PATH_MAX];
	const char *base = strrchr(argv[0], '/');
	base = base ? base + 1 : argv[0];
	if (!logfile) {
		snprintf(logpath, sizeof logpath, "%s/%s.log", h_tmpdir(), base);
		logfile = logpath;
	}
	h_tmpdir();
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		int fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		int nul = open("/dev/null", O_RDONLY);
		if (nul >= 0) {
			dup2(nul, 0);
			close(nul);
		}
		for (char *const *e = extra_env; e && *e; e++)
			putenv(*e);
		signal(SIGPIPE, SIG_DFL);
		execv(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid);
	track(pid);
	return pid;
}

static int wait_timeout(pid_t pid, int ms, int *status)
{
	long long end = h_now_ms() + ms;
	while (h_now_ms() < end) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid || (r < 0 && errno == ECHILD))
			return 0;
		h_sleep_ms(10);
	}
	return -1;
}

int h_stop(pid_t pid)
{
	int status = 0;
	if (pid <= 0)
		return -1;
	kill(-pid, SIGTERM);
	kill(pid, SIGTERM);
	if (wait_timeout(pid, 5000, &status) < 0) {
		kill(-pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	/* the rest of the group (workers) receives up to 5 s to exit on its own, then SIGKILL */
	for (long long end = h_now_ms() + 5000; h_now_ms() < end;) {
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (kill(-pid, 0) < 0 && errno == ESRCH)
			break;
		h_sleep_ms(10);
	}
	kill(-pid, SIGKILL);
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	untrack(pid);
	return status;
}

void h_kill(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	untrack(pid);
}

void h_stop_all(void)
{
	for (int i = MAX_CHILDREN - 1; i >= 0; i--)
		if (children[i])
			h_stop(children[i]);
}

int h_wait_port(int port, int timeout_ms)
{
	long long end = h_now_ms() + timeout_ms;
	do {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a = {.sin_family = AF_INET,
		                        .sin_port = htons((uint16_t)port),
		                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
		close(fd);
		if (ok)
			return 0;
		h_sleep_ms(20);
	} while (h_now_ms() < end);
	return -1;
}

int h_redis_start(struct h_redis *r)
{
	memset(r, 0, sizeof *r);
	r->port = h_free_port();
	snprintf(r->dir, sizeof r->dir, "%s/redis-%d", h_tmpdir(), r->port);
	mkdir(r->dir, 0755);
	return h_redis_restart(r);
}

int h_redis_restart(struct h_redis *r)
{
	char port[16], logfile[PATH_MAX];
	if (r->pid > 0)
		h_stop(r->pid);
	snprintf(port, sizeof port, "%d", r->port);
	snprintf(logfile, sizeof logfile, "%s/redis-%d.log", h_tmpdir(), r->port);
	char sock[600];
	snprintf(sock, sizeof sock, "%s/redis.sock", r->dir);
	char *argv[] = {"/usr/bin/redis-server",
	                "--bind",
	                "127.0.0.1",
	                "--port",
	                port,
	                "--unixsocket",
	                sock,
	                "--unixsocketperm",
	                "700",
	                "--dir",
	                r->dir,
	                "--appendonly",
	                "yes",
	                "--save",
	                "",
	                "--daemonize",
	                "no",
	                "--protected-mode",
	                "yes",
	                NULL};
	r->pid = h_spawn(argv, NULL, logfile);
	if (r->pid < 0 || h_wait_port(r->port, 10000) < 0) {
		fprintf(stderr, "harness: redis-server did not start (see %s)\n", logfile);
		return -1;
	}
	return 0;
}

const char *h_redis_cli(const struct h_redis *r, const char *fmt, ...)
{
	static char out[65536];
	char args[4096], cmd[4200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof args, fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof cmd, "redis-cli -h 127.0.0.1 -p %d %s 2>&1", r->port, args);
	FILE *p = popen(cmd, "r");
	size_t n = p ? fread(out, 1, sizeof out - 1, p) : 0;
	if (p)
		pclose(p);
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
		n--;
	out[n] = '\0';
	return out;
}

/* ---- the front: lighttpd, or nginx / Apache with workers under spawn-fcgi ---- */

static enum h_front_server resolve_front(enum h_front_server server)
{
	if (server != H_FRONT_DEFAULT)
		return server;
	const char *e = getenv("POSEIDON_TEST_FRONT");
	if (!e || !*e || strcmp(e, "lighttpd") == 0)
		return H_FRONT_LIGHTTPD;
	if (strcmp(e, "nginx") == 0)
		return H_FRONT_NGINX;
	if (strcmp(e, "apache") == 0)
		return H_FRONT_APACHE;
	return H_FRONT_DEFAULT; /* unknown: h_stack_start refuses it */
}

const char *h_front_name(enum h_front_server server)
{
	switch (resolve_front(server)) {
	case H_FRONT_LIGHTTPD: return "lighttpd";
	case H_FRONT_NGINX: return "nginx";
	case H_FRONT_APACHE: return "apache";
	case H_FRONT_DEFAULT: break;
	}
	return "unknown";
}

/* The unprivileged user the web server's workers run as when we are root (its master stays
 * root, as in production); NULL when not root (everything runs as us). */
static const char *web_user(void)
{
	return geteuid() == 0 && getpwnam("www-data") ? "www-data" : NULL;
}

/* Value of KEY in a NULL-terminated "K=V" list, or NULL. */
static const char *env_value(char *const *env, const char *key)
{
	size_t n = strlen(key);
	for (; env && *env; env++)
		if (strncmp(*env, key, n) == 0 && (*env)[n] == '=')
			return *env + n + 1;
	return NULL;
}

/* Waits until the unix socket at path accepts a connection; 0, or -1 on timeout. */
static int wait_unix(const char *path, int timeout_ms)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof a.sun_path)
		return -1;
	memcpy(a.sun_path, path, strlen(path) + 1);
	long long end = h_now_ms() + timeout_ms;
	do {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
		if (fd >= 0)
			close(fd);
		if (ok)
			return 0;
		h_sleep_ms(20);
	} while (h_now_ms() < end);
	return -1;
}

/* Starts the workers as poseidon-api-spawnfcgi.service does: spawn-fcgi creates the socket and
 * execs multiwatch on it, which forks POSEIDON_API_WORKERS workers. Their count and directory
 * come from s->workers_env, which is also their environment. */
static int start_workers(struct h_stack *s)
{
	char sock[600], forks[64], bin[PATH_MAX], logfile[PATH_MAX];
	const char *n = env_value(s->workers_env, "POSEIDON_API_WORKERS");
	const char *dir = env_value(s->workers_env, "POSEIDON_BIN_DIR");
	const char *user = web_user();
	char *argv[24];
	int a = 0;
	snprintf(sock, sizeof sock, "%s/api.sock", s->rundir);
	snprintf(forks, sizeof forks, "--forks=%s", n ? n : "2");
	snprintf(bin, sizeof bin, "%s/poseidon-api", dir ? dir : h_bin_dir());
	snprintf(logfile, sizeof logfile, "%s/workers.log", s->rundir);
	unlink(sock);
	argv[a++] = "/usr/bin/spawn-fcgi";
	argv[a++] = "-n";
	argv[a++] = "-s";
	argv[a++] = sock;
	argv[a++] = "-M";
	argv[a++] = "0660";
	if (user) { /* the socket belongs to the web server's user, as the socket unit's does */
		argv[a++] = "-U";
		argv[a++] = (char *)user;
		argv[a++] = "-G";
		argv[a++] = (char *)user;
	}
	argv[a++] = "--";
	argv[a++] = "/usr/bin/multiwatch";
	argv[a++] = forks;
	argv[a++] = "--signal=TERM";
	argv[a++] = "--";
	argv[a++] = bin;
	argv[a] = NULL;
	s->workers = h_spawn(argv, s->workers_env, logfile);
	if (s->workers < 0 || wait_unix(sock, 10000) < 0) {
		fprintf(stderr, "harness: spawn-fcgi/multiwatch workers did not start (see %s)\n", logfile);
		return -1;
	}
	return 0;
}

void h_stack_stop_workers(struct h_stack *s)
{
	int status;
	if (s->workers <= 0)
		return;
	/* KillMode=mixed: SIGTERM to multiwatch alone, which passes it on and restarts nobody;
	 * a group-wide SIGTERM races with multiwatch replacing a worker that just exited */
	kill(s->workers, SIGTERM);
	wait_timeout(s->workers, 10000, &status);
	h_stop(s->workers); /* whatever is left of the group */
	s->workers = 0;
}

int h_stack_restart_workers(struct h_stack *s)
{
	if (!s->workers_env)
		return -1;
	h_stack_stop_workers(s);
	return start_workers(s);
}

/* Copies text to out with each `from` replaced by `to`, on lines that are not comments only.
 * Returns how many were replaced. */
static int replace_in_directives(FILE *out, const char *text, const char *from, const char *to)
{
	int count = 0;
	size_t fl = strlen(from);
	for (const char *line = text; *line;) {
		const char *eol = strchr(line, '\n');
		const char *next = eol ? eol + 1 : line + strlen(line);
		const char *p = line + strspn(line, " \t");
		if (*p == '#') {
			fwrite(line, 1, (size_t)(next - line), out);
			line = next;
			continue;
		}
		for (p = line; p < next;) {
			const char *hit = memmem(p, (size_t)(next - p), from, fl);
			if (!hit) {
				fwrite(p, 1, (size_t)(next - p), out);
				break;
			}
			fwrite(p, 1, (size_t)(hit - p), out);
			fputs(to, out);
			count++;
			p = hit + fl;
		}
		line = next;
	}
	return count;
}

/* The whole file at path, NUL-terminated (caller frees), or NULL. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *text = NULL;
	size_t len = 0;
	FILE *m = f ? open_memstream(&text, &len) : NULL;
	char buf[8192];
	size_t n;
	while (m && (n = fread(buf, 1, sizeof buf, f)) > 0)
		fwrite(buf, 1, n, m);
	if (m)
		fclose(m);
	if (f)
		fclose(f);
	return text;
}

/* deploy/nginx/poseidon.conf with the values its header documents replaced by the stack's; each
 * must be there as a directive (a site that moved on would otherwise be tested with an operator's
 * default). 0 or -1. */
static int write_nginx_site(const struct h_stack *s, const char *path)
{
	enum { N = 6 };
	char src[PATH_MAX], to[N][700];
	const char *from[N] = {"listen 7200;",
	                       "unix:/run/poseidon/api.sock",
	                       "127.0.0.1:7201",
	                       "/usr/local/share/poseidon/www",
	                       "client_max_body_size 64m;",
	                       "send_timeout 60s;"};
	snprintf(src, sizeof src, "%s/deploy/nginx/poseidon.conf", h_src_dir());
	snprintf(to[0], sizeof to[0], "listen 127.0.0.1:%d;", s->port);
	snprintf(to[1], sizeof to[1], "unix:%s/api.sock", s->rundir);
	snprintf(to[2], sizeof to[2], "127.0.0.1:%d", s->wsgate_port);
	snprintf(to[3], sizeof to[3], "%s/deploy/www", h_src_dir());
	snprintf(to[4], sizeof to[4], "client_max_body_size %lld;", s->maxbody);
	snprintf(to[5], sizeof to[5], "send_timeout %ds;", s->write_idle);
	char *text = slurp(src);
	if (!text) {
		fprintf(stderr, "harness: cannot read %s\n", src);
		return -1;
	}
	for (int i = 0; i < N; i++) {
		char *next = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&next, &len);
		int count = m ? replace_in_directives(m, text, from[i], to[i]) : 0;
		if (m)
			fclose(m);
		free(text);
		text = next;
		if (!count || !text) {
			fprintf(stderr, "harness: %s no longer has \"%s\" in a directive\n", src, from[i]);
			free(text);
			return -1;
		}
	}
	FILE *f = fopen(path, "w");
	int rc = f && fputs(text, f) >= 0 ? 0 : -1;
	if (f && fclose(f) != 0)
		rc = -1;
	free(text);
	return rc;
}

/* nginx's main context around a site file, everything it writes kept in dir. 0 or -1. */
static int write_nginx_main(const char *conf, const char *dir, const char *site)
{
	FILE *f = fopen(conf, "w");
	if (!f)
		return -1;
	const char *user = web_user();
	fprintf(f, "# the main context around deploy/nginx/poseidon.conf for one test stack (harness.c)\n");
	if (user)
		fprintf(f, "user %s %s;\n", user, user);
	fprintf(f,
	        "worker_processes 2;\n"
	        "pid %1$s/nginx.pid;\n"
	        "error_log %1$s/nginx.log notice;\n"
	        "events { worker_connections 1024; }\n"
	        "http {\n"
	        "\taccess_log %1$s/nginx-access.log;\n"
	        "\tclient_body_temp_path %1$s/nginx-body;\n"
	        "\tfastcgi_temp_path %1$s/nginx-fastcgi;\n"
	        "\tproxy_temp_path %1$s/nginx-proxy;\n"
	        "\tuwsgi_temp_path %1$s/nginx-uwsgi;\n"
	        "\tscgi_temp_path %1$s/nginx-scgi;\n"
	        "\tinclude %2$s;\n"
	        "}\n",
	        dir, site);
	return fclose(f) == 0 ? 0 : -1;
}

static int start_nginx(struct h_stack *s)
{
	char site[600], conf[600], log[600], prefix[600];
	snprintf(site, sizeof site, "%s/nginx-site.conf", s->rundir);
	snprintf(conf, sizeof conf, "%s/nginx.conf", s->rundir);
	snprintf(log, sizeof log, "%s/nginx.log", s->rundir);
	snprintf(prefix, sizeof prefix, "%s/", s->rundir);
	if (write_nginx_site(s, site) < 0 || write_nginx_main(conf, s->rundir, site) < 0)
		return -1;
	char *argv[] = {"/usr/sbin/nginx", "-g", "daemon off;", "-e", log, "-p", prefix, "-c", conf, NULL};
	s->lighttpd = h_spawn(argv, NULL, log);
	return s->lighttpd < 0 ? -1 : 0;
}

/* Apache's main context: Debian's apache2.conf depends on variables only apache2ctl sets, so
 * the modules the site names are loaded here. With s, the site's settings are Defines for the
 * stack (before the Include); without, the site runs on its own defaults. 0 or -1. */
static int write_apache_main(const char *conf, const char *dir, const struct h_stack *s)
{
	static const char *modules[] = {"mpm_event", "authz_core", "proxy", "proxy_fcgi", "proxy_http",
	                                "headers",   "mime",       "dir",   "rewrite",    NULL};
	FILE *f = fopen(conf, "w");
	if (!f)
		return -1;
	const char *user = web_user();
	fprintf(f,
	        "# the main context around deploy/apache/poseidon.conf for one test stack (harness.c)\n"
	        "ServerRoot %1$s\n"
	        "DefaultRuntimeDir %1$s\n"
	        "PidFile %1$s/apache.pid\n"
	        "ErrorLog %1$s/apache.log\n"
	        "LogLevel warn\n"
	        "ServerName 127.0.0.1\n"
	        "Mutex file:%1$s default\n"
	        "TypesConfig /dev/null\n",
	        dir);
	if (user)
		fprintf(f, "User %s\nGroup %s\n", user, user);
	for (const char **m = modules; *m; m++)
		fprintf(f, "LoadModule %s_module /usr/lib/apache2/modules/mod_%s.so\n", *m, *m);
	if (s)
		fprintf(f,
		        "Define POSEIDON_PORT %1$d\n"
		        "Define POSEIDON_LISTEN 127.0.0.1:%1$d\n"
		        "Define POSEIDON_API_SOCKET %2$s/api.sock\n"
		        "Define POSEIDON_WSGATE 127.0.0.1:%3$d\n"
		        "Define POSEIDON_WWW %4$s/deploy/www\n"
		        "Define POSEIDON_MAXBODY %5$lld\n"
		        "Define POSEIDON_TIMEOUT %6$d\n",
		        s->port, s->rundir, s->wsgate_port, h_src_dir(), s->maxbody, s->write_idle);
	fprintf(f, "Include %s/deploy/apache/poseidon.conf\n", h_src_dir());
	return fclose(f) == 0 ? 0 : -1;
}

static int start_apache(struct h_stack *s)
{
	char conf[600], logfile[600];
	snprintf(conf, sizeof conf, "%s/apache.conf", s->rundir);
	snprintf(logfile, sizeof logfile, "%s/apache.log", s->rundir);
	if (write_apache_main(conf, s->rundir, s) < 0)
		return -1;
	char *argv[] = {"/usr/sbin/apache2", "-DFOREGROUND", "-f", conf, NULL};
	s->lighttpd = h_spawn(argv, NULL, logfile);
	return s->lighttpd < 0 ? -1 : 0;
}

int h_front_check_site(enum h_front_server server, char *out, size_t cap)
{
	char dir[600], conf[700], site[PATH_MAX], cmd[3000];
	enum h_front_server which = resolve_front(server);
	static int checks;
	snprintf(dir, sizeof dir, "%s/site-check-%d", h_tmpdir(), ++checks);
	mkdir(dir, 0755);
	if (which == H_FRONT_NGINX) {
		snprintf(conf, sizeof conf, "%s/nginx.conf", dir);
		snprintf(site, sizeof site, "%s/deploy/nginx/poseidon.conf", h_src_dir());
		if (write_nginx_main(conf, dir, site) < 0)
			return -1;
		snprintf(cmd, sizeof cmd, "/usr/sbin/nginx -t -e %s/nginx.log -p %s/ -c %s 2>&1", dir, dir,
		         conf);
	} else if (which == H_FRONT_APACHE) {
		snprintf(conf, sizeof conf, "%s/apache.conf", dir);
		if (write_apache_main(conf, dir, NULL) < 0)
			return -1;
		snprintf(cmd, sizeof cmd, "/usr/sbin/apache2 -t -f %s 2>&1", conf);
	} else {
		snprintf(out, cap,
		         "lighttpd.conf needs its POSEIDON_* variables (test_deploy_systemd runs -tt)");
		return -1;
	}
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	size_t n = fread(out, 1, cap - 1, p);
	out[n] = '\0';
	int status = pclose(p);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void free_workers_env(struct h_stack *s)
{
	for (char **e = s->workers_env; e && *e; e++)
		free(*e);
	free(s->workers_env);
	s->workers_env = NULL;
}

int h_stack_start(struct h_stack *s, const struct h_front_opts *o)
{
	static const struct h_front_opts none;
	char *env[64];
	int n = 0;
	if (!o)
		o = &none;
	s->server = resolve_front(o->server);
	if (s->server == H_FRONT_DEFAULT) {
		fprintf(stderr, "harness: POSEIDON_TEST_FRONT=%s: not lighttpd, nginx or apache\n",
		        getenv("POSEIDON_TEST_FRONT"));
		return -1;
	}
	/* a second start is a new front: the workers of the previous one go */
	h_stack_stop_workers(s);
	free_workers_env(s);
	if (!s->redis.port && h_redis_start(&s->redis) < 0)
		return -1;
	s->port = h_free_port();
	if (!s->wsgate_port)
		s->wsgate_port = h_free_port();
	snprintf(s->base, sizeof s->base, "http://127.0.0.1:%d/api/v1", s->port);
	snprintf(s->rundir, sizeof s->rundir, "%s/front-%d", h_tmpdir(), s->port);
	mkdir(s->rundir, 0755);

#define ENV(...) (asprintf(&env[n++], __VA_ARGS__) < 0 ? (void)0 : (void)0)
	ENV("POSEIDON_SERVER_ADDRESS=127.0.0.1");
	ENV("POSEIDON_SERVER_PORT=%d", s->port);
	ENV("POSEIDON_RUN_DIR=%s", s->rundir);
	ENV("POSEIDON_WWW_DIR=%s/deploy/www", h_src_dir());
	ENV("POSEIDON_API_WORKERS=%d", o->workers ? o->workers : 2);
	ENV("POSEIDON_WSGATE_PORT=%d", s->wsgate_port);
	ENV("POSEIDON_REDIS_PORT=%d", s->redis.port);
	if (s->nomad.port)
		ENV("POSEIDON_NOMAD_PORT=%d", s->nomad.port);
	ENV("POSEIDON_REDIS_ADDRESS=127.0.0.1");
	ENV("POSEIDON_SERVER_TOKEN=%s", o->token ? o->token : "");
	ENV("POSEIDON_CONFIG=");
	/* sanitizer reports of the workers land where the tests can find them */
	ENV("ASAN_OPTIONS=log_path=%s/sanitizer:detect_leaks=1", s->rundir);
	ENV("UBSAN_OPTIONS=log_path=%s/sanitizer:print_stacktrace=1", s->rundir);
	if (o->valgrind) {
		/* lighttpd (and multiwatch) exec the worker directly: point them at a wrapper that
		 * runs it under valgrind */
		char wrapdir[600], wrap[700];
		snprintf(wrapdir, sizeof wrapdir, "%s/vgbin", s->rundir);
		mkdir(wrapdir, 0755);
		snprintf(wrap, sizeof wrap, "%s/poseidon-api", wrapdir);
		FILE *f = fopen(wrap, "w");
		if (!f)
			return -1;
		fprintf(f,
		        "#!/bin/sh\nexec valgrind --leak-check=full --show-leak-kinds=definite,indirect "
		        "--errors-for-leak-kinds=definite,indirect --error-exitcode=99 "
		        "--log-file=%s/valgrind-%%p.log %s/poseidon-api \"$@\"\n",
		        s->rundir, h_bin_dir());
		fclose(f);
		chmod(wrap, 0755);
		ENV("POSEIDON_BIN_DIR=%s", wrapdir);
	} else {
		ENV("POSEIDON_BIN_DIR=%s", h_bin_dir());
	}
	ENV("POSEIDON_FRONT_WRITE_IDLE=60");
	for (const char *const *e = o->env; e && *e && n < 58; e++)
		ENV("%s", *e);
	env[n] = NULL;
	/* The front's body limit is the workers' server.maxbodysize, read from this environment as
	 * they read it (deploy/run.sh and the unit ask `poseidon-api -config-get`); lighttpd counts
	 * in kB. Its request bodies are spooled inside the run directory, where tests can see them. */
	struct config c;
	struct perr e;
	config_defaults(&c);
	config_apply_env(&c, env, &e);
	s->maxbody = c.server.maxbodysize;
	const char *idle = "60";
	for (int i = 0; i < n; i++) /* the last one counts, as for putenv */
		if (strncmp(env[i], "POSEIDON_FRONT_WRITE_IDLE=", 26) == 0)
			idle = env[i] + 26;
	s->write_idle = atoi(idle);
	long long kb = (s->maxbody + 1023) / 1024;
	ENV("POSEIDON_FRONT_MAXBODY_KB=%lld", kb > 4294967295LL ? 4294967295LL : kb);
	ENV("POSEIDON_FRONT_TEMP_DIR=%s/tmp", s->rundir);
	env[n] = NULL;
	char temp_dir[600];
	snprintf(temp_dir, sizeof temp_dir, "%s/tmp", s->rundir);
	mkdir(temp_dir, 0700);
#undef ENV

	if (s->server != H_FRONT_LIGHTTPD) {
		/* the workers keep their environment for h_stack_restart_workers */
		s->workers_env = calloc((size_t)n + 1, sizeof *s->workers_env);
		if (!s->workers_env) {
			for (int i = 0; i < n; i++)
				free(env[i]);
			return -1;
		}
		memcpy(s->workers_env, env, (size_t)n * sizeof *env);
		if (start_workers(s) < 0)
			return -1;
		int rc = s->server == H_FRONT_NGINX ? start_nginx(s) : start_apache(s);
		if (rc < 0 || h_wait_port(s->port, 10000) < 0) {
			fprintf(stderr, "harness: %s did not start (see %s/%s.log)\n",
			        h_front_name(s->server), s->rundir, h_front_name(s->server));
			return -1;
		}
		return 0;
	}

	char conf[PATH_MAX], logfile[PATH_MAX];
	snprintf(conf, sizeof conf, "%s/lighttpd.conf", h_src_dir());
	snprintf(logfile, sizeof logfile, "%s/lighttpd.log", s->rundir);
	char *argv[] = {"/usr/sbin/lighttpd", "-D", "-f", conf, NULL};
	s->lighttpd = h_spawn(argv, env, logfile);
	for (int i = 0; i < n; i++)
		free(env[i]);
	if (s->lighttpd < 0 || h_wait_port(s->port, 10000) < 0) {
		fprintf(stderr, "harness: lighttpd did not start (see %s)\n", logfile);
		return -1;
	}
	return 0;
}

char *const *h_stack_env(const struct h_stack *s)
{
	static char redis[64], nomad[64], addr[64], ns[64];
	static char *env[8];
	snprintf(redis, sizeof redis, "POSEIDON_REDIS_PORT=%d", s->redis.port);
	snprintf(addr, sizeof addr, "POSEIDON_REDIS_ADDRESS=127.0.0.1");
	snprintf(nomad, sizeof nomad, "POSEIDON_NOMAD_PORT=%d", s->nomad.port ? s->nomad.port : 1);
	snprintf(ns, sizeof ns, "POSEIDON_NOMAD_ADDRESS=127.0.0.1");
	env[0] = redis, env[1] = addr, env[2] = nomad, env[3] = ns,
	env[4] = "POSEIDON_CONFIG=", env[5] = NULL;
	return env;
}

int h_stack_start_nomad(struct h_stack *s)
{
	if (s->nomad.port)
		return h_nomad_restart(&s->nomad);
	return h_nomad_start(&s->nomad, NULL);
}

pid_t h_stack_start_refill(struct h_stack *s, const char *const *env)
{
	char bin[PATH_MAX], logfile[PATH_MAX];
	char *all[32];
	int n = 0;
	for (char *const *e = h_stack_env(s); *e; e++)
		all[n++] = *e;
	for (const char *const *e = env; e && *e && n < 30; e++)
		all[n++] = (char *)*e;
	all[n] = NULL;
	snprintf(bin, sizeof bin, "%s/poseidon-refill", h_bin_dir());
	snprintf(logfile, sizeof logfile, "%s/refill-%d.log", h_tmpdir(), s->redis.port);
	char *argv[] = {bin, NULL};
	pid_t pid = h_spawn(argv, all, logfile);
	if (!s->refill)
		s->refill = pid;
	return pid;
}

void h_stack_stop(struct h_stack *s)
{
	if (s->refill > 0)
		h_stop(s->refill);
	s->refill = 0;
	if (s->lighttpd > 0)
		h_stop(s->lighttpd);
	s->lighttpd = 0;
	h_stack_stop_workers(s);
	free_workers_env(s);
	if (s->nomad.port) {
		if (s->nomad.pid > 0)
			h_nomad_stop(&s->nomad);
		h_nomad_cleanup(&s->nomad);
	}
	if (s->redis.pid > 0)
		h_stop(s->redis.pid);
	s->redis.pid = 0;
}

int h_sanitizer_reports(const char *dir)
{
	char cmd[1200];
	snprintf(cmd, sizeof cmd,
	         "for f in %s/sanitizer.*; do [ -f \"$f\" ] && cat \"$f\" >&2 && echo x; done", dir);
	FILE *p = popen(cmd, "r");
	int n = 0, c;
	while (p && (c = fgetc(p)) != EOF)
		n += c == 'x';
	if (p)
		pclose(p);
	return n;
}

struct buf {
	char *p;
	size_t len, cap;
};

/* Grows by doubling: ASan's realloc always copies, so growing a 20 MiB body by curl's 16 KiB
 * pieces copied gigabytes and ran out of time. */
static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct buf *b = ud;
	size_t n = size * nmemb;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *q = realloc(b->p, cap);
		if (!q)
			return 0;
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, ptr, n);
	b->len += n;
	b->p[b->len] = '\0';
	return n;
}

int h_http(struct h_resp *r, const char *method, const char *url, const char *body, long len,
           const char *const *headers)
{
	struct buf b = {0}, h = {0};
	struct curl_slist *hl = NULL;
	memset(r, 0, sizeof *r);
	CURL *c = curl_easy_init();
	if (!c)
		return -1;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
		                 (curl_off_t)(len < 0 ? (long)strlen(body) : len));
	}
	hl = curl_slist_append(hl, "Expect:");
	for (const char *const *p = headers; p && *p; p++)
		hl = curl_slist_append(hl, *p);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	CURLcode rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &r->seconds);
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	r->body = b.p ? b.p : calloc(1, 1);
	r->len = b.len;
	r->headers = h.p ? h.p : calloc(1, 1);
	if (rc != CURLE_OK) {
		fprintf(stderr, "harness: %s %s: %s\n", method, url, curl_easy_strerror(rc));
		return -1;
	}
	contract_http(method, url, r->status, r->headers, r->body, r->len);
	return 0;
}

void h_resp_free(struct h_resp *r)
{
	free(r->body);
	free(r->headers);
	r->body = r->headers = NULL;
}

char *h_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *data = NULL;
	size_t n = 0, cap = 0;
	if (!f)
		return NULL;
	for (;;) {
		if (n + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 65536;
			char *p = realloc(data, cap);
			if (!p) {
				free(data);
				fclose(f);
				return NULL;
			}
			data = p;
		}
		size_t got = fread(data + n, 1, cap - n - 1, f);
		n += got;
		if (got == 0)
			break;
	}
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		free(data);
		return NULL;
	}
	data[n] = '\0';
	if (len)
		*len = n;
	return data;
}

int h_header(const struct h_resp *r, const char *name, char *out, size_t cap)
{
	size_t n = strlen(name);
	for (const char *line = r->headers; line && *line;) {
		const char *end = strstr(line, "\r\n");
		size_t l = end ? (size_t)(end - line) : strlen(line);
		if (l > n && strncasecmp(line, name, n) == 0 && line[n] == ':') {
			const char *v = line + n + 1;
			while (*v == ' ')
				v++;
			size_t vl = (size_t)(line + l - v);
			if (vl >= cap)
				vl = cap - 1;
			memcpy(out, v, vl);
			out[vl] = '\0';
			return 1;
		}
		line = end ? end + 2 : NULL;
	}
	return 0;
}

/* ---- poseidon-wsgate ---- */

pid_t h_stack_start_wsgate(struct h_stack *s)
{
	return h_stack_start_wsgate_with(s, NULL, NULL);
}

pid_t h_stack_start_wsgate_with(struct h_stack *s, const char *const *env, const char *const *args)
{
	static int started;
	char bin[PATH_MAX], logfile[PATH_MAX], port[64], asan[700], ubsan[700];
	char *all[40], *argv[24];
	int n = 0, a = 0;
	if (!s->wsgate_port)
		s->wsgate_port = h_free_port();
	const char *dir = s->rundir[0] ? s->rundir : h_tmpdir();
	snprintf(port, sizeof port, "POSEIDON_WSGATE_PORT=%d", s->wsgate_port);
	snprintf(asan, sizeof asan, "ASAN_OPTIONS=log_path=%s/sanitizer:detect_leaks=1", dir);
	snprintf(ubsan, sizeof ubsan, "UBSAN_OPTIONS=log_path=%s/sanitizer:print_stacktrace=1", dir);
	for (char *const *e = h_stack_env(s); *e; e++)
		all[n++] = *e;
	all[n++] = port;
	all[n++] = "POSEIDON_WSGATE_ADDRESS=127.0.0.1";
	all[n++] = asan;
	all[n++] = ubsan;
	for (const char *const *e = env; e && *e && n < 38; e++)
		all[n++] = (char *)*e;
	all[n] = NULL;
	snprintf(bin, sizeof bin, "%s/poseidon-wsgate", h_bin_dir());
	argv[a++] = bin;
	for (const char *const *p = args; p && *p && a < 22; p++)
		argv[a++] = (char *)*p;
	argv[a] = NULL;
	snprintf(logfile, sizeof logfile, "%s/wsgate-%d-%d.log", h_tmpdir(), s->wsgate_port, ++started);
	pid_t pid = h_spawn(argv, all, logfile);
	if (pid < 0 || h_wait_port(s->wsgate_port, 10000) < 0) {
		fprintf(stderr, "harness: poseidon-wsgate did not start (see %s)\n", logfile);
		return -1;
	}
	return pid;
}

int h_wait_pool(const struct h_redis *r, long long env, int n, int timeout_ms)
{
	for (long long end = h_now_ms() + timeout_ms;; h_sleep_ms(100)) {
		if (atoi(h_redis_cli(r, "LLEN poseidon:pool:%lld", env)) >= n)
			return 0;
		if (h_now_ms() >= end)
			return -1;
	}
}

long long h_redis_int(const struct h_redis *r, const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	return atoll(h_redis_cli(r, "%s", cmd));
}

long h_api(const struct h_stack *s, const char *method, const char *path, const char *body, char *out, size_t cap)
{
	char url[1024];
	struct h_resp r;
	snprintf(url, sizeof url, "%s%s", s->base, path);
	if (h_http(&r, method, url, body, -1, NULL) < 0)
		return -1;
	if (out)
		snprintf(out, cap, "%s", r.body);
	long status = r.status;
	h_resp_free(&r);
	return status;
}

void h_stack_config(const struct h_stack *s, struct config *c)
{
	config_defaults(c);
	c->redis.port = s->redis.port;
	c->nomad.port = s->nomad.port;
}

struct store *h_stack_store(const struct h_stack *s)
{
	struct config c;
	h_stack_config(s, &c);
	return store_open(&c);
}

char *h_base64(const void *data, size_t len)
{
	size_t cap = 4 * ((len + 2) / 3) + 8; /* lws wants room beyond the last quantum */
	char *out = malloc(cap);
	if (out && lws_b64_encode_string(data, (int)len, out, (int)cap) < 0) {
		free(out);
		return NULL;
	}
	return out;
}

long h_copy_file(const struct h_stack *s, const char *runner, const char *path, const void *data, size_t len)
{
	char *enc = h_base64(data, len), p[512];
	size_t cap = (enc ? strlen(enc) : 0) + strlen(path) + 64;
	char *body = malloc(cap);
	long status = -1;
	if (enc && body) {
		snprintf(body, cap, "{\"copy\":[{\"path\":\"%s\",\"content\":\"%s\"}]}", path, enc);
		snprintf(p, sizeof p, "/runners/%s/files", runner);
		status = h_api(s, "PATCH", p, body, NULL, 0);
	}
	free(enc);
	free(body);
	return status;
}

int h_openapi_mismatch(const struct h_resp *r, char *why, size_t cap)
{
	char path[4096], ct[128] = "";
	size_t n = 0;
	snprintf(path, sizeof path, "%s/api/openapi.yaml", h_src_dir());
	char *want = h_read_file(path, &n);
	int bad = 1;
	if (!want)
		snprintf(why, cap, "cannot read %s", path);
	else if (r->status != 200)
		snprintf(why, cap, "%ld %.200s", r->status, r->body ? r->body : "");
	else if (!h_header(r, "Content-Type", ct, sizeof ct) || strcmp(ct, "application/yaml") != 0)
		snprintf(why, cap, "Content-Type '%s'", ct);
	else if (r->len != n || memcmp(r->body, want, n) != 0)
		snprintf(why, cap, "%zu bytes that are not the %zu of %s", r->len, n, path);
	else
		bad = 0;
	free(want);
	return bad;
}
