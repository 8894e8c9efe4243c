/* make install / make uninstall (issue 17), and the Debian packages of make deb.
 *
 * The group runs `make install DESTDIR=<tmp> PREFIX=/usr/local` in the source tree with the
 * programs already built (O= names the build directory the tests were given, so nothing is
 * rebuilt), then works only from the DESTDIR: every installed program answers -version and -help,
 * the installed example configuration loads without a warning, the units name installed paths,
 * the installed poseidon-api serves a FastCGI request (cgi-fcgi, libfcgi-bin, on 127.0.0.1), the
 * man pages render with their sections; finally make uninstall leaves nothing behind. A second
 * install to another prefix checks that every path in units, sites and man pages is rewritten
 * and that a changed configuration survives install and uninstall.
 *
 * The packages' checks, and their dpkg -i / dpkg -P in a throwaway root, run when
 * POSEIDON_TEST_DEB_DIR names the directory make deb wrote (make test-deb); make test skips them,
 * since building the packages takes about a minute.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define OUT_MAX   (256 * 1024)
#define CMD_MAX   4096
#define NPROGRAMS 5

static const char *const programs[NPROGRAMS] = {"poseidon-api", "poseidon-refill", "poseidon-wsgate",
                                                "poseidon-admin", "nomad-local"};
static const char *const man_sections[] = {"NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "ENVIRONMENT",
                                           "FILES", "SIGNALS", "EXIT STATUS", NULL};

static char src[PATH_MAX], bin[PATH_MAX], obj[PATH_MAX]; /* obj: the O= of the build */
static char dest[PATH_MAX];                               /* the DESTDIR of the group */
static char out[OUT_MAX];

/* Runs a shell command; its stdout and stderr (merged) land in out. Returns the exit status, or
 * -1 when it did not exit normally. */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	char cmd[CMD_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(cmd, sizeof cmd - 8, fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < sizeof cmd - 8);
	snprintf(cmd + n, sizeof cmd - (size_t)n, " 2>&1");
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t len = fread(out, 1, sizeof out - 1, p);
	out[len] = '\0';
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* make TARGET with the build directory of these tests, without the outer make's flags (its
 * jobserver and variables are not ours). */
static int make(const char *target, const char *destdir, const char *vars)
{
	return run("cd '%s' && env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make --no-print-directory %s O='%s' "
	           "DESTDIR='%s' %s",
	           src, target, obj, destdir, vars);
}

static int exists(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	char *buf = calloc(1, OUT_MAX);
	size_t n = buf ? fread(buf, 1, OUT_MAX - 1, f) : 0;
	(void)n;
	fclose(f);
	return buf;
}

static int count(const char *text, const char *needle)
{
	int n = 0;
	for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

static int setup(void **state)
{
	(void)state;
	if (!realpath(h_src_dir(), src) || !realpath(h_bin_dir(), bin))
		return -1;
	/* O= as the Makefile knows it: relative to the tree when inside it (make names the library
	 * after O, so an absolute spelling of the same directory would rebuild it) */
	size_t ls = strlen(src), lb = strlen(bin);
	if (lb > ls + 5 && strncmp(bin, src, ls) == 0 && bin[ls] == '/' && strcmp(bin + lb - 4, "/bin") == 0)
		snprintf(obj, sizeof obj, "%.*s", (int)(lb - ls - 5), bin + ls + 1);
	else if (lb > 4 && strcmp(bin + lb - 4, "/bin") == 0)
		snprintf(obj, sizeof obj, "%.*s", (int)(lb - 4), bin);
	else
		return -1;
	snprintf(dest, sizeof dest, "%s/dest", h_tmpdir());
	return mkdir(dest, 0755);
}

static int teardown(void **state)
{
	(void)state;
	h_stop_all();
	return 0;
}

/* ---- make install, then everything from the DESTDIR ------------------------------------------ */

static void test_make_install_puts_everything_under_destdir_without_rebuilding(void **state)
{
	(void)state;
	int rc = make("install", dest, "PREFIX=/usr/local");
	if (rc != 0)
		print_message("%s\n", out);
	assert_int_equal(rc, 0);
	/* the programs were built already: install must not compile or link anything (it does when
	 * a tracked file changed since make all: the version string changes with it) */
	if (strstr(out, "  CC ") || strstr(out, "  LD "))
		fail_msg("make install rebuilt programs:\n%s", out);
	static const char *const files[] = {
	    "usr/local/bin/poseidon-api", "usr/local/bin/poseidon-refill", "usr/local/bin/poseidon-wsgate",
	    "usr/local/bin/poseidon-admin", "usr/local/bin/nomad-local",
	    "usr/local/share/man/man1/poseidon-api.1", "usr/local/share/man/man1/nomad-local.1",
	    "usr/local/lib/systemd/system/poseidon-refill.service",
	    "usr/local/lib/systemd/system/poseidon-api.socket", "usr/local/lib/systemd/system/poseidon.target",
	    "usr/local/share/poseidon/lighttpd.conf", "usr/local/share/poseidon/nginx/poseidon.conf",
	    "usr/local/share/poseidon/apache/poseidon.conf", "usr/local/share/poseidon/www/status/index.html",
	    "usr/local/share/poseidon/www/errors/413.html", "usr/local/share/poseidon/template-job.json",
	    "usr/local/share/doc/poseidon/operations.md",
	    "usr/local/share/doc/poseidon/examples/configuration.example.yaml",
	    "usr/local/share/doc/poseidon/examples/poseidon.env.example",
	    "usr/local/etc/poseidon/configuration.yaml", "usr/local/etc/poseidon/poseidon.env", NULL};
	for (int i = 0; files[i]; i++) {
		char p[PATH_MAX + 200];
		snprintf(p, sizeof p, "%s/%s", dest, files[i]);
		if (!exists(p))
			print_message("missing: %s\n", p);
		assert_true(exists(p));
	}
	/* one unit per file in deploy/systemd, one man page per program */
	assert_int_equal(run("ls '%s/deploy/systemd' | wc -l", src), 0);
	long units = atol(out);
	assert_int_equal(run("ls '%s/usr/local/lib/systemd/system' | wc -l", dest), 0);
	assert_int_equal(atol(out), units);
	assert_int_equal(run("ls '%s/usr/local/share/man/man1' | wc -l", dest), 0);
	assert_int_equal(atol(out), NPROGRAMS);
	/* the configuration may hold secrets */
	char conf[PATH_MAX + 100];
	struct stat sb;
	snprintf(conf, sizeof conf, "%s/usr/local/etc/poseidon/configuration.yaml", dest);
	assert_int_equal(stat(conf, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0640);
}

static void test_installed_programs_answer_version_and_help(void **state)
{
	(void)state;
	for (int i = 0; i < NPROGRAMS; i++) {
		char want[256];
		/* the installed program is the build's: the same version line */
		assert_int_equal(run("'%s/%s' -version", bin, programs[i]), 0);
		snprintf(want, sizeof want, "%s", out);
		assert_true(strncmp(want, programs[i], strlen(programs[i])) == 0 && want[strlen(programs[i])] == ' ');
		assert_int_equal(run("'%s/usr/local/bin/%s' -version", dest, programs[i]), 0);
		assert_string_equal(out, want);
		assert_int_equal(run("'%s/usr/local/bin/%s' -help", dest, programs[i]), 0);
		static const char *const parts[] = {"Usage: ", "Options:\n", "Environment:\n", "Files:\n",
		                                    "Signals:\n", "Exit status:\n", NULL};
		for (int j = 0; parts[j]; j++) {
			if (!strstr(out, parts[j]))
				print_message("%s -help lacks %s\n", programs[i], parts[j]);
			assert_non_null(strstr(out, parts[j]));
		}
		/* help goes to stdout: nothing of it on stderr */
		assert_int_equal(run("'%s/usr/local/bin/%s' -help 2>&1 >/dev/null | wc -c", dest, programs[i]), 0);
		assert_int_equal(atol(out), 0);
	}
}

static void test_installed_example_configuration_loads_without_warnings(void **state)
{
	(void)state;
	char conf[PATH_MAX + 100];
	snprintf(conf, sizeof conf, "%s/usr/local/etc/poseidon/configuration.yaml", dest);
	/* stdout alone: an unknown key in the example would add a warning on stderr */
	assert_int_equal(run("env -u POSEIDON_CONFIG '%s/usr/local/bin/poseidon-api' -config '%s' "
	                     "-config-get server.port 2>'%s/config-get.err'",
	                     dest, conf, h_tmpdir()),
	                 0);
	assert_string_equal(out, "7200\n");
	assert_int_equal(run("cat '%s/config-get.err'", h_tmpdir()), 0);
	assert_string_equal(out, "");
	/* the file is what the programs read */
	assert_int_equal(run("env -u POSEIDON_CONFIG '%s/usr/local/bin/poseidon-admin' -config '%s' config", dest,
	                     conf),
	                 0);
	char want[PATH_MAX + 200];
	snprintf(want, sizeof want, "# effective configuration: defaults < %s <", conf);
	assert_non_null(strstr(out, want));
	assert_non_null(strstr(out, "\nredis.prefix: \"poseidon:\"\n"));
	/* and a file that is not there is an error */
	assert_int_equal(run("'%s/usr/local/bin/poseidon-api' -config '%s.missing' -config-get server.port", dest,
	                     conf),
	                 2);
}

/* Every path below /usr/local or /etc in text, read at path: the ones that are ours must exist
 * under root (the DESTDIR), and none may be left in the default layout's /etc/poseidon. Returns
 * how many were checked. */
static int check_paths(const char *root, const char *path, const char *prefix, const char *etc)
{
	char *text = slurp(path);
	assert_non_null(text);
	int checked = 0;
	size_t lp = strlen(prefix), le = strlen(etc);
	for (char *p = text; *p; p++) {
		if (p != text && (p[-1] == '/' || (p[-1] >= 'a' && p[-1] <= 'z')))
			continue; /* inside another path or word */
		int ours = (strncmp(p, prefix, lp) == 0 && p[lp] == '/') || (strncmp(p, etc, le) == 0 && p[le] == '/');
		if (!ours) {
			/* the default layout must be gone when another was asked for */
			if (strcmp(etc, "/etc/poseidon") != 0 && strncmp(p, "/etc/poseidon", 13) == 0)
				fail_msg("%s still names /etc/poseidon", path);
			if (strcmp(prefix, "/usr/local") != 0 && strncmp(p, "/usr/local/", 11) == 0)
				fail_msg("%s still names %.40s", path, p);
			continue;
		}
		size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/-");
		char file[PATH_MAX], full[2 * PATH_MAX];
		snprintf(file, sizeof file, "%.*s", (int)n, p);
		while (strlen(file) > 1 && file[strlen(file) - 1] == '/')
			file[strlen(file) - 1] = '\0';
		snprintf(full, sizeof full, "%s%s", root, file);
		if (!exists(full))
			fail_msg("%s names %s, which was not installed", path, file);
		checked++;
		p += n - 1;
	}
	free(text);
	return checked;
}

static void test_installed_units_point_at_installed_paths(void **state)
{
	(void)state;
	char dir[PATH_MAX + 100], path[2 * PATH_MAX];
	snprintf(dir, sizeof dir, "%s/usr/local/lib/systemd/system", dest);
	assert_int_equal(run("ls '%s'", dir), 0);
	int units = 0, checked = 0;
	for (char *save = NULL, *u = strtok_r(out, "\n", &save); u; u = strtok_r(NULL, "\n", &save)) {
		snprintf(path, sizeof path, "%s/%s", dir, u);
		checked += check_paths(dest, path, "/usr/local", "/usr/local/etc/poseidon");
		units++;
	}
	assert_int_equal(units, 7);
	assert_true(checked >= 20);
	/* the lines that matter, spelled out */
	snprintf(path, sizeof path, "%s/poseidon-refill.service", dir);
	char *t = slurp(path);
	assert_non_null(t);
	assert_non_null(strstr(t, "\nExecStart=/usr/local/bin/poseidon-refill\n"));
	assert_non_null(strstr(t, "\nEnvironment=POSEIDON_CONFIG=/usr/local/etc/poseidon/configuration.yaml\n"));
	assert_non_null(strstr(t, "\nEnvironmentFile=-/usr/local/etc/poseidon/poseidon.env\n"));
	free(t);
	snprintf(path, sizeof path, "%s/poseidon-lighttpd.service", dir);
	t = slurp(path);
	assert_non_null(t);
	assert_non_null(strstr(t, "\nExecStart=/usr/sbin/lighttpd -D -f /usr/local/share/poseidon/lighttpd.conf\n"));
	assert_non_null(strstr(t, "\nEnvironment=POSEIDON_WWW_DIR=/usr/local/share/poseidon/www\n"));
	free(t);
	/* the sites' status page root too */
	snprintf(path, sizeof path, "%s/usr/local/share/poseidon/nginx/poseidon.conf", dest);
	assert_true(check_paths(dest, path, "/usr/local", "/usr/local/etc/poseidon") >= 1);
	snprintf(path, sizeof path, "%s/usr/local/share/poseidon/apache/poseidon.conf", dest);
	assert_true(check_paths(dest, path, "/usr/local", "/usr/local/etc/poseidon") >= 1);
}

static void test_installed_worker_answers_a_fastcgi_request(void **state)
{
	(void)state;
	assert_int_equal(run("command -v cgi-fcgi"), 0); /* libfcgi-bin: make deps installs it */
	char exe[PATH_MAX + 100], listen_on[64], conf[PATH_MAX + 100], env_conf[PATH_MAX + 200], redis[64];
	int port = h_free_port();
	snprintf(exe, sizeof exe, "%s/usr/local/bin/poseidon-api", dest);
	snprintf(listen_on, sizeof listen_on, "127.0.0.1:%d", port);
	snprintf(conf, sizeof conf, "%s/usr/local/etc/poseidon/configuration.yaml", dest);
	snprintf(env_conf, sizeof env_conf, "POSEIDON_CONFIG=%s", conf);
	/* /version needs neither Redis nor Nomad; the metrics thread gets a closed port, not a Redis
	 * someone may run on 6379 */
	snprintf(redis, sizeof redis, "POSEIDON_REDIS_PORT=%d", h_free_port());
	char *const argv[] = {exe, "-listen", listen_on, NULL};
	char *const env[] = {env_conf, redis, "POSEIDON_SENTRY_RELEASE=", NULL};
	pid_t pid = h_spawn(argv, env, NULL);
	assert_true(pid > 0);
	assert_int_equal(h_wait_port(port, 10000), 0);
	assert_int_equal(run("env -i REQUEST_METHOD=GET REQUEST_URI=/api/v1/version SCRIPT_NAME=/api/v1/version "
	                     "SERVER_PROTOCOL=HTTP/1.1 HTTP_HOST=127.0.0.1 cgi-fcgi -bind -connect %s </dev/null",
	                     listen_on),
	                 0);
	char response[4096];
	snprintf(response, sizeof response, "%s", out);
	/* the body is the version the program reports */
	assert_int_equal(run("'%s' -version", exe), 0);
	char *version = strchr(out, ' ');
	assert_non_null(version);
	version[strcspn(version, "\n")] = '\0';
	char *body = strstr(response, "\r\n\r\n");
	if (!body || strncmp(response, "Status: 200 OK\r\n", 16) != 0)
		fail_msg("unexpected answer: %s", response);
	assert_non_null(strstr(body + 4, version + 1));
	/* SIGTERM ends it with 0, as the man page says */
	assert_int_equal(h_stop(pid), 0);
}

static void test_installed_man_pages_render_with_every_section(void **state)
{
	(void)state;
	for (int i = 0; i < NPROGRAMS; i++) {
		char page[PATH_MAX + 100];
		snprintf(page, sizeof page, "%s/usr/local/share/man/man1/%s.1", dest, programs[i]);
		/* groff's warnings on stderr: a broken page shows there */
		assert_int_equal(run("MANWIDTH=100 MANPAGER=cat PAGER=cat man --warnings -l '%s' 2>'%s/man.err'", page,
		                     h_tmpdir()),
		                 0);
		for (int j = 0; man_sections[j]; j++) {
			char line[64];
			snprintf(line, sizeof line, "\n%s\n", man_sections[j]);
			if (!strstr(out, line))
				fail_msg("%s: no section %s", programs[i], man_sections[j]);
		}
		/* the NAME line is the program's summary, not help2man's "manual page for" */
		assert_null(strstr(out, "manual page for"));
		/* the page names the installed configuration, not the default layout's */
		if (strncmp(programs[i], "poseidon-", 9) == 0)
			assert_non_null(strstr(out, "/usr/local/etc/poseidon/configuration.yaml"));
		assert_int_equal(run("cat '%s/man.err'", h_tmpdir()), 0);
		if (out[0])
			fail_msg("%s: man warns: %s", programs[i], out);
	}
}

static void test_make_uninstall_leaves_nothing(void **state)
{
	(void)state;
	assert_int_equal(make("uninstall", dest, "PREFIX=/usr/local"), 0);
	assert_int_equal(run("find '%s' -mindepth 1", dest), 0);
	if (out[0])
		fail_msg("left after uninstall:\n%s", out);
	/* a second uninstall has nothing to do and does not fail */
	assert_int_equal(make("uninstall", dest, "PREFIX=/usr/local"), 0);
}

/* ---- another prefix: every path rewritten, a changed configuration kept ---------------------- */

static void test_other_prefix_rewrites_paths_and_keeps_a_changed_configuration(void **state)
{
	(void)state;
	char root[PATH_MAX], path[2 * PATH_MAX];
	const char *vars = "PREFIX=/opt/poseidon sysconfdir=/etc/opt/poseidon";
	snprintf(root, sizeof root, "%s/opt-dest", h_tmpdir());
	assert_int_equal(mkdir(root, 0755), 0);
	assert_int_equal(make("install", root, vars), 0);
	static const char *const texts[] = {
	    "lib/systemd/system/poseidon-api.service", "lib/systemd/system/poseidon-api-spawnfcgi.service",
	    "lib/systemd/system/poseidon-lighttpd.service", "lib/systemd/system/poseidon-refill.service",
	    "lib/systemd/system/poseidon-wsgate.service", "share/poseidon/nginx/poseidon.conf",
	    "share/poseidon/apache/poseidon.conf", "share/man/man1/poseidon-api.1",
	    "share/man/man1/poseidon-refill.1", NULL};
	int checked = 0;
	for (int i = 0; texts[i]; i++) {
		snprintf(path, sizeof path, "%s/opt/poseidon/%s", root, texts[i]);
		checked += check_paths(root, path, "/opt/poseidon", "/etc/opt/poseidon/poseidon");
	}
	assert_true(checked >= 20);
	/* an operator's change survives a second install and the uninstall */
	char conf[PATH_MAX + 100];
	snprintf(conf, sizeof conf, "%s/etc/opt/poseidon/poseidon/configuration.yaml", root);
	FILE *f = fopen(conf, "a");
	assert_non_null(f);
	fputs("# changed by the operator\n", f);
	fclose(f);
	assert_int_equal(make("install", root, vars), 0);
	assert_non_null(strstr(out, "KEEP"));
	char *t = slurp(conf);
	assert_non_null(t);
	assert_non_null(strstr(t, "# changed by the operator\n"));
	free(t);
	assert_int_equal(make("uninstall", root, vars), 0);
	assert_int_equal(run("cd '%s' && find . -mindepth 1 | sort", root), 0);
	assert_string_equal(out, "./etc\n./etc/opt\n./etc/opt/poseidon\n./etc/opt/poseidon/poseidon\n"
	                         "./etc/opt/poseidon/poseidon/configuration.yaml\n");
}

/* ---- the Debian packages (make test-deb) ----------------------------------------------------- */

static const char *deb_dir(void)
{
	const char *d = getenv("POSEIDON_TEST_DEB_DIR");
	return d && *d ? d : NULL;
}

static void deb_path(char *buf, size_t cap, const char *package, const char *version)
{
	char arch[64];
	assert_int_equal(run("dpkg --print-architecture"), 0);
	snprintf(arch, sizeof arch, "%.*s", (int)strcspn(out, "\n"), out);
	snprintf(buf, cap, "%s/%s_%s_%s.deb", deb_dir(), package, version, arch);
}

static void assert_contains_lines(const char *text, const char *const *lines, const char *what)
{
	for (int i = 0; lines[i]; i++)
		if (!strstr(text, lines[i]))
			fail_msg("%s lacks %s", what, lines[i]);
}

static void test_deb_packages_hold_what_they_should(void **state)
{
	(void)state;
	if (!deb_dir())
		skip(); /* make test-deb sets it after make deb */
	char version[128], poseidon[PATH_MAX], nomad[PATH_MAX];
	assert_int_equal(run("dpkg-parsechangelog -l '%s/debian/changelog' -S Version", src), 0);
	snprintf(version, sizeof version, "%.*s", (int)strcspn(out, "\n"), out);
	deb_path(poseidon, sizeof poseidon, "poseidon", version);
	deb_path(nomad, sizeof nomad, "nomad-local", version);
	assert_true(exists(poseidon));
	assert_true(exists(nomad));

	/* control fields */
	assert_int_equal(run("dpkg-deb -f '%s' Package Version Architecture", poseidon), 0);
	char want[512];
	snprintf(want, sizeof want, "Package: poseidon\nVersion: %s\nArchitecture: amd64\n", version);
	assert_string_equal(out, want);
	assert_int_equal(run("dpkg-deb -f '%s' Depends", poseidon), 0);
	static const char *const poseidon_deps[] = {"adduser", "libcurl4", "libfcgi0ldbl", "libhiredis",
	                                            "libjson-c5", "libwebsockets", "libyaml-0-2", "libarchive13",
	                                            "libuuid1", NULL};
	assert_contains_lines(out, poseidon_deps, "poseidon's Depends");
	assert_null(strstr(out, "libseccomp")); /* nomad-local's alone */
	assert_int_equal(run("dpkg-deb -f '%s' Package Version Depends", nomad), 0);
	static const char *const nomad_deps[] = {"Package: nomad-local\n", "bubblewrap", "libseccomp2", "libcap-ng0",
	                                         "libjson-c5", NULL};
	assert_contains_lines(out, nomad_deps, "nomad-local's control");
	assert_null(strstr(out, "libfcgi"));

	/* contents */
	assert_int_equal(run("dpkg-deb -c '%s' | awk '{print $6}'", poseidon), 0);
	static const char *const poseidon_files[] = {
	    "./usr/bin/poseidon-api\n", "./usr/bin/poseidon-refill\n", "./usr/bin/poseidon-wsgate\n",
	    "./usr/bin/poseidon-admin\n", "./usr/share/man/man1/poseidon-api.1.gz\n",
	    "./usr/share/man/man1/poseidon-refill.1.gz\n", "./usr/share/man/man1/poseidon-wsgate.1.gz\n",
	    "./usr/share/man/man1/poseidon-admin.1.gz\n", "./lib/systemd/system/poseidon-api.service\n",
	    "./lib/systemd/system/poseidon-api.socket\n", "./lib/systemd/system/poseidon-api-spawnfcgi.service\n",
	    "./lib/systemd/system/poseidon-lighttpd.service\n", "./lib/systemd/system/poseidon-refill.service\n",
	    "./lib/systemd/system/poseidon-wsgate.service\n", "./lib/systemd/system/poseidon.target\n",
	    "./usr/share/poseidon/lighttpd.conf\n", "./usr/share/poseidon/nginx/poseidon.conf\n",
	    "./usr/share/poseidon/apache/poseidon.conf\n", "./usr/share/poseidon/www/status/index.html\n",
	    "./usr/share/poseidon/template-job.json\n", "./etc/poseidon/configuration.yaml\n",
	    "./etc/poseidon/poseidon.env\n", "./usr/share/doc/poseidon/operations.md\n",
	    "./usr/share/doc/poseidon/copyright\n", "./usr/share/doc/poseidon/examples/configuration.example.yaml\n",
	    NULL};
	assert_contains_lines(out, poseidon_files, "poseidon's contents");
	assert_null(strstr(out, "/usr/bin/nomad-local"));
	assert_null(strstr(out, "/man1/nomad-local"));
	assert_null(strstr(out, ".installed-dirs"));
	assert_int_equal(run("dpkg-deb -c '%s' | awk '{print $6}'", nomad), 0);
	static const char *const nomad_files[] = {"./usr/bin/nomad-local\n", "./usr/share/man/man1/nomad-local.1.gz\n",
	                                          NULL};
	assert_contains_lines(out, nomad_files, "nomad-local's contents");
	assert_null(strstr(out, "poseidon-api"));

	/* conffiles, the system user, units neither enabled nor started */
	assert_int_equal(run("dpkg-deb -I '%s' conffiles", poseidon), 0);
	assert_string_equal(out, "/etc/poseidon/configuration.yaml\n/etc/poseidon/poseidon.env\n");
	assert_int_equal(run("dpkg-deb -I '%s' postinst", poseidon), 0);
	assert_non_null(strstr(out, "adduser --system"));
	assert_non_null(strstr(out, "dpkg-statoverride --update --add root poseidon 0640"));
	assert_null(strstr(out, "deb-systemd-invoke")); /* nothing started */
	/* enabled only where the operator had enabled it before (an upgrade), never on a first
	 * install: every "was-enabled" stands inside "if deb-systemd-helper debian-installed" */
	int guarded = count(out, "if deb-systemd-helper debian-installed "), enables = count(out, " was-enabled ");
	assert_int_equal(enables, 7);
	assert_int_equal(guarded, enables);

	/* what is inside works: units on Debian's paths, the programs run */
	char x[PATH_MAX + 100];
	snprintf(x, sizeof x, "%s/deb-x", h_tmpdir());
	assert_int_equal(run("dpkg-deb -x '%s' '%s' && dpkg-deb -x '%s' '%s'", poseidon, x, nomad, x), 0);
	char unit[2 * PATH_MAX];
	snprintf(unit, sizeof unit, "%s/lib/systemd/system/poseidon-refill.service", x);
	char *t = slurp(unit);
	assert_non_null(t);
	assert_non_null(strstr(t, "\nExecStart=/usr/bin/poseidon-refill\n"));
	assert_non_null(strstr(t, "\nEnvironment=POSEIDON_CONFIG=/etc/poseidon/configuration.yaml\n"));
	assert_non_null(strstr(t, "Documentation=file:/usr/share/doc/poseidon/operations.md\n"));
	free(t);
	assert_int_equal(run("grep -rl /usr/local '%s/lib/systemd/system' '%s/usr/share/poseidon' || true", x, x), 0);
	assert_string_equal(out, "");
	for (int i = 0; i < NPROGRAMS; i++) {
		assert_int_equal(run("'%s/usr/bin/%s' -version", x, programs[i]), 0);
		assert_true(strncmp(out, programs[i], strlen(programs[i])) == 0);
	}

	/* lintian: no errors */
	assert_int_equal(run("lintian '%s' '%s'", poseidon, nomad), 0);
	for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		if (strncmp(l, "E: ", 3) == 0)
			fail_msg("lintian: %s", l);
}

/* dpkg -i and dpkg -P of both packages in a throwaway root: an overlay of this machine's root
 * file system in a mount namespace of its own, so that nothing of it reaches the machine (the
 * namespace and its mounts end with the script). Needs root and overlayfs; skips without them. */
static const char sandbox_script[] =
    "set -eu\n"
    "d=$1; shift\n"
    "mount -t tmpfs tmpfs \"$d\" || exit 77\n"
    "mkdir \"$d/u\" \"$d/w\" \"$d/m\"\n"
    "mount -t overlay overlay -o lowerdir=/,upperdir=\"$d/u\",workdir=\"$d/w\" \"$d/m\" || exit 77\n"
    "mount --bind /proc \"$d/m/proc\"\n"
    "mount --bind /dev \"$d/m/dev\"\n"
    "mkdir -p \"$d/m/tmp/debs\"\n"
    "cp \"$@\" \"$d/m/tmp/debs/\"\n"
    "exec chroot \"$d/m\" sh -c '\n"
    "  echo \"== user: $(getent passwd poseidon | cut -d: -f1,6,7)\"\n"
    "  dpkg -i /tmp/debs/*.deb >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; exit 1; }\n"
    "  echo \"== user: $(getent passwd poseidon | cut -d: -f1,6,7)\"\n"
    "  echo \"== conf: $(stat -c \"%U:%G %a\" /etc/poseidon/configuration.yaml /etc/poseidon/poseidon.env | tr \"\\n\" \" \")\"\n"
    "  echo \"== enabled: $(find /etc/systemd/system -name \"poseidon*\" | wc -l)\"\n"
    "  echo \"== version: $(poseidon-api -version) $(nomad-local -version)\"\n"
    "  echo \"== port: $(poseidon-api -config-get redis.port)\"\n"
    "  echo \"== man: $(man -w poseidon-refill)\"\n"
    "  dpkg -P poseidon nomad-local >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; exit 1; }\n"
    "  echo \"== left: $(ls -d /etc/poseidon /usr/share/poseidon /usr/bin/poseidon-api 2>/dev/null | wc -l)\"\n"
    "  echo \"== overrides: $(dpkg-statoverride --list | grep -c poseidon || true)\"\n"
    "'\n";

static void test_deb_installs_and_purges_in_a_throwaway_root(void **state)
{
	(void)state;
	if (!deb_dir() || geteuid() != 0)
		skip();
	char version[128], poseidon[PATH_MAX], nomad[PATH_MAX], script[PATH_MAX], dir[PATH_MAX];
	assert_int_equal(run("dpkg-parsechangelog -l '%s/debian/changelog' -S Version", src), 0);
	snprintf(version, sizeof version, "%.*s", (int)strcspn(out, "\n"), out);
	deb_path(poseidon, sizeof poseidon, "poseidon", version);
	deb_path(nomad, sizeof nomad, "nomad-local", version);
	snprintf(script, sizeof script, "%s/deb-sandbox.sh", h_tmpdir());
	snprintf(dir, sizeof dir, "%s/deb-sandbox", h_tmpdir());
	FILE *f = fopen(script, "w");
	assert_non_null(f);
	fputs(sandbox_script, f);
	fclose(f);
	assert_int_equal(mkdir(dir, 0700), 0);
	if (run("unshare -m true") != 0)
		skip(); /* no mount namespaces here (a container without CAP_SYS_ADMIN) */
	int rc = run("PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C unshare -m --propagation private sh '%s' '%s' '%s' '%s'",
	             script, dir, poseidon, nomad);
	if (rc == 77)
		skip(); /* no tmpfs or overlayfs mounts here */
	if (rc != 0)
		fail_msg("dpkg in the throwaway root failed (%d):\n%s", rc, out);
	/* no poseidon user before (else the check below proves nothing), a system user after */
	assert_non_null(strstr(out, "== user: \n== user: poseidon:/nonexistent:/usr/sbin/nologin\n"));
	assert_non_null(strstr(out, "== conf: root:poseidon 640 root:poseidon 640 \n"));
	assert_non_null(strstr(out, "== enabled: 0\n"));       /* no unit enabled */
	assert_non_null(strstr(out, "== version: poseidon-api ")); /* the programs run from /usr/bin */
	assert_non_null(strstr(out, " nomad-local "));
	assert_non_null(strstr(out, "== port: 6379\n"));          /* with /etc/poseidon's configuration */
	assert_non_null(strstr(out, "== man: /usr/share/man/man1/poseidon-refill.1.gz\n"));
	assert_non_null(strstr(out, "== left: 0\n"));              /* purged: files, */
	assert_non_null(strstr(out, "== overrides: 0\n"));         /* and statoverrides gone */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_make_install_puts_everything_under_destdir_without_rebuilding),
	    cmocka_unit_test(test_installed_programs_answer_version_and_help),
	    cmocka_unit_test(test_installed_example_configuration_loads_without_warnings),
	    cmocka_unit_test(test_installed_units_point_at_installed_paths),
	    cmocka_unit_test(test_installed_worker_answers_a_fastcgi_request),
	    cmocka_unit_test(test_installed_man_pages_render_with_every_section),
	    cmocka_unit_test(test_make_uninstall_leaves_nothing),
	    cmocka_unit_test(test_other_prefix_rewrites_paths_and_keeps_a_changed_configuration),
	    cmocka_unit_test(test_deb_packages_hold_what_they_should),
	    cmocka_unit_test(test_deb_installs_and_purges_in_a_throwaway_root),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
