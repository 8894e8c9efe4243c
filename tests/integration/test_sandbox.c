/* nomad-local's sandbox against hostile learner code: each test is one promise of
 * docs/nomad-local.md ("The sandbox") checked from inside a runner, the way a program there would
 * try it. One agent (with -disk-mb 64) and two runner jobs, A and B, serve every test (group
 * setup). Every probe is harmless when the protection is missing: a kernel knob is written back
 * with the value just read, refused calls are ones whose success would only affect the caller,
 * the disk writer and the fork bomb are bounded by size, count and time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "harness.h"
#include "harness_nomad.h"

#define TIMEOUT_MS    10000
#define DISK_MB       64
#define RUNNER_MEM_MB 512
/* Docker's default capabilities (moby oci/caps/defaults.go): CHOWN, DAC_OVERRIDE, FSETID,
 * FOWNER, MKNOD, NET_RAW, SETGID, SETUID, SETFCAP, SETPCAP, NET_BIND_SERVICE, SYS_CHROOT, KILL,
 * AUDIT_WRITE */
#define DOCKER_CAPS       0xa80425fbULL
#define CAP_SYS_ADMIN_BIT (1ULL << 21)

/* A script on stdin, run by bash as root (what an exec runs as by default) or as the
 * unprivileged user through /sbin/setuser: no JSON quoting in the scripts. */
#define SH_ROOT "[\"/bin/bash\",\"-c\",\"s=$(cat); eval \\\"$s\\\"\"]"
#define SH_USER "[\"/sbin/setuser\",\"user\",\"/bin/bash\",\"-c\",\"s=$(cat); eval \\\"$s\\\"\"]"

static struct {
	struct h_nomad n;
	char a[64], b[64]; /* the allocations of runner A and runner B */
} g;

/* ---- helpers ---- */

static int run_job(const char *id, char alloc[64])
{
	char *body = h_nomad_job(id, RUNNER_MEM_MB, "");
	int st = body ? h_nomad_register(&g.n, body, NULL) : -1;
	free(body);
	if (st != 200)
		return -1;
	return h_nomad_wait_running(&g.n, id, alloc, TIMEOUT_MS);
}

/* What a script printed on stdout (truncated to fit) and its exit code. Nothing to free, so a
 * failing assertion leaks nothing. */
struct res {
	int exit_code;
	char out[32768];
};

/* Runs the script in the allocation; the session must end with an exit frame. */
static void sh(const char *alloc, int as_user, struct res *r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void sh(const char *alloc, int as_user, struct res *r, const char *fmt, ...)
{
	char *script = NULL, frames[2048];
	struct h_exec x;
	va_list ap;
	va_start(ap, fmt);
	assert_true(vasprintf(&script, fmt, ap) > 0);
	va_end(ap);
	int rc = h_nomad_exec(&g.n, alloc, as_user ? SH_USER : SH_ROOT, 0, script, 1, &x);
	free(script);
	int exited = x.exited, close_code = x.close_code;
	snprintf(r->out, sizeof r->out, "%s", x.out ? x.out : "");
	snprintf(frames, sizeof frames, "close %d %s; frames: %s", x.close_code, x.close_reason,
	         x.frames ? x.frames : "");
	r->exit_code = x.exit_code;
	h_exec_free(&x);
	if (rc != 0 || !exited)
		fail_msg("exec in %s did not end with an exit frame (rc %d, close %d): %s", alloc, rc,
		         close_code, frames);
}

/* The hex value of "key:\t..." in /proc/<pid>/status text; 0 when found. */
static int status_hex(const char *text, const char *key, unsigned long long *v)
{
	char pat[64];
	snprintf(pat, sizeof pat, "%s:\t", key);
	const char *p = strstr(text, pat);
	if (!p)
		return -1;
	char *end;
	*v = strtoull(p + strlen(pat), &end, 16);
	return end == p + strlen(pat) ? -1 : 0;
}

static int status_int(const char *text, const char *key, long *v)
{
	char pat[64];
	snprintf(pat, sizeof pat, "\n%s:\t", key);
	const char *p = strstr(text, pat);
	if (!p)
		return -1;
	*v = strtol(p + strlen(pat), NULL, 10);
	return 0;
}

/* Appends to why what of the capability sets in text breaks the rules: bounding, permitted and
 * effective within Docker's set and without CAP_SYS_ADMIN; inheritable and ambient empty (or,
 * when inh_amb_docker, within Docker's set). */
static void check_caps(const char *who, const char *text, int inh_amb_docker, char *why, size_t cap)
{
	static const char *sets[] = {"CapBnd", "CapPrm", "CapEff", "CapInh", "CapAmb"};
	for (int i = 0; i < 5; i++) {
		unsigned long long v;
		size_t l = strlen(why);
		if (status_hex(text, sets[i], &v) < 0) {
			snprintf(why + l, cap - l, "%s: no %s line; ", who, sets[i]);
			continue;
		}
		int inh_amb = i >= 3;
		if (inh_amb && !inh_amb_docker && v != 0)
			snprintf(why + l, cap - l, "%s: %s %016llx, not 0; ", who, sets[i], v);
		else if (v & ~DOCKER_CAPS)
			snprintf(why + l, cap - l,
			         "%s: %s %016llx has bits outside Docker's %016llx (%016llx)%s; ", who,
			         sets[i], v, DOCKER_CAPS, v & ~DOCKER_CAPS,
			         v & CAP_SYS_ADMIN_BIT ? ", CAP_SYS_ADMIN among them" : "");
	}
}

/* Number of processes of this host whose command line (NULs as spaces) contains marker. */
static int host_procs(const char *marker)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int n = 0;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		char path[300], buf[4096];
		snprintf(path, sizeof path, "/proc/%s/cmdline", de->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		size_t len = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		for (size_t i = 0; i < len; i++)
			if (!buf[i])
				buf[i] = ' ';
		buf[len] = '\0';
		if (strstr(buf, marker) && !strstr(buf, "bwrap"))
			n++;
	}
	if (d)
		closedir(d);
	return n;
}

static long long du_bytes;
static int du_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path, (void)flag, (void)ftw;
	du_bytes += (long long)st->st_blocks * 512;
	return 0;
}

/* What the files under dir take on disk (du), in bytes. */
static long long du(const char *dir)
{
	du_bytes = 0;
	nftw(dir, du_entry, 32, FTW_PHYS);
	return du_bytes;
}

static long long fs_free(const char *dir)
{
	struct statvfs v;
	assert_int_equal(statvfs(dir, &v), 0);
	return (long long)v.f_bavail * (long long)v.f_frsize;
}

/* ---- setup ---- */

static int setup(void **state)
{
	(void)state;
	static char mb[16];
	snprintf(mb, sizeof mb, "%d", DISK_MB);
	static const char *extra[] = {"-disk-mb", mb, NULL}; /* kept for restarts */
	if (h_nomad_start_args(&g.n, NULL, NULL, extra) < 0)
		return -1;
	if (run_job("sandbox-a", g.a) < 0 || run_job("sandbox-b", g.b) < 0) {
		fprintf(stderr, "test_sandbox: runner jobs not running (see %s)\n", g.n.log);
		return -1;
	}
	return 0;
}

/* Before each test: both runners run (a test that failed may have had one restarted). */
static int runners_up(void **state)
{
	(void)state;
	if (h_nomad_wait_running(&g.n, "sandbox-a", g.a, TIMEOUT_MS) < 0 ||
	    h_nomad_wait_running(&g.n, "sandbox-b", g.b, TIMEOUT_MS) < 0) {
		fprintf(stderr, "test_sandbox: a runner is not running (see %s)\n", g.n.log);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	h_nomad_stop(&g.n);
	h_nomad_cleanup(&g.n);
	return 0;
}

/* ---- 1. capabilities of exec sessions ---- */

/* A privileged exec (root, the default) holds at most Docker's capabilities, none inheritable or
 * ambient; the unprivileged user (through /sbin/setuser) holds none, has no_new_privs, and a
 * setuid-root program gives it nothing back: neither one of /usr (su) nor one that root made in
 * the runner's /workspace, because every mount is nosuid. */
static void test_exec_capabilities_are_dockers_and_user_has_none(void **state)
{
	(void)state;
	struct res x;
	char why[4096] = "";
	sh(g.a, 0, &x, "id -u; grep -E '^(Cap|NoNewPrivs)' /proc/self/status");
	assert_int_equal(x.exit_code, 0);
	assert_int_equal(atoi(x.out), 0);
	check_caps("root exec", x.out, 0, why, sizeof why);

	/* root makes a setuid-root copy of id (inside the runner's own tmpfs) for the user to try */
	sh(g.a, 0, &x,
	   "cp /usr/bin/id /workspace/suid-id && chmod 4755 /workspace/suid-id && stat -c %%a%%U "
	   "/workspace/suid-id");
	assert_int_equal(x.exit_code, 0);
	assert_string_equal(x.out, "4755root\n");
	sh(g.a, 1, &x,
	   "grep -E '^(Cap|NoNewPrivs)' /proc/self/status\n"
	   "echo \"suid-id euid=$(/workspace/suid-id -u) user=$(id -u)\"\n"
	   "su -c 'id -u' root </dev/null >/tmp/su.out 2>&1; echo \"su rc=$? out=$(head -c 200 /tmp/su.out | "
	   "tr '\\n' ' ')\"\n"
	   "echo mountinfo:; cat /proc/self/mountinfo");
	assert_int_equal(x.exit_code, 0);
	const char *out = x.out;
	unsigned long long v;
	long nnp = -1;
	size_t l;
	for (int i = 0; i < 3; i++) {
		static const char *zero[] = {"CapPrm", "CapEff", "CapAmb"};
		l = strlen(why);
		if (status_hex(out, zero[i], &v) < 0 || v != 0)
			snprintf(why + l, sizeof why - l, "user exec: %s not 0; ", zero[i]);
	}
	l = strlen(why);
	if (status_hex(out, "CapBnd", &v) < 0 || (v & ~DOCKER_CAPS))
		snprintf(why + l, sizeof why - l, "user exec: CapBnd outside Docker's set; ");
	l = strlen(why);
	if (status_int(out, "NoNewPrivs", &nnp) < 0 || nnp != 1)
		snprintf(why + l, sizeof why - l, "user exec: NoNewPrivs %ld, not 1; ", nnp);
	l = strlen(why);
	unsigned euid = 0, user = 0;
	const char *se = strstr(out, "suid-id euid=");
	if (!se || sscanf(se, "suid-id euid=%u user=%u", &euid, &user) != 2 || euid == 0 || euid != user)
		snprintf(why + l, sizeof why - l,
		         "a setuid-root program in /workspace did not run as the user; ");
	const char *su = strstr(out, "su rc=");
	l = strlen(why);
	if (!su || strncmp(su, "su rc=0", 7) == 0 || strstr(su, "out=0 "))
		snprintf(why + l, sizeof why - l, "su gave the user root; ");
	/* every mount nosuid, /, /usr, /workspace and /tmp among them */
	const char *mi = strstr(out, "mountinfo:\n");
	assert_non_null(mi);
	int seen = 0, mounts = 0;
	char *copy = strdup(mi + 11), *save = NULL;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char mp[1024], opts[1024];
		if (sscanf(line, "%*s %*s %*s %*s %1023s %1023s", mp, opts) != 2)
			continue;
		mounts++;
		if (!strstr(opts, "nosuid")) {
			l = strlen(why);
			snprintf(why + l, sizeof why - l, "mount %s without nosuid (%s); ", mp, opts);
		}
		static const char *must[] = {"/", "/usr", "/workspace", "/tmp"};
		for (int i = 0; i < 4; i++)
			if (strcmp(mp, must[i]) == 0)
				seen |= 1 << i;
	}
	free(copy);
	l = strlen(why);
	if (seen != 15)
		snprintf(why + l, sizeof why - l,
		         "mountinfo lacks one of / /usr /workspace /tmp (%d mounts); ", mounts);
	if (why[0])
		fail_msg("%s\noutput:\n%s", why, out);
	sh(g.a, 0, &x, "rm -f /workspace/suid-id /tmp/su.out");
}

/* ---- 2. the task's own process ---- */

static void task_status(const char *alloc, struct res *x)
{
	sh(alloc, 0, x,
	   "for p in /proc/[0-9]*; do\n"
	   "  if [ \"$(tr '\\0' ' ' < $p/cmdline 2>/dev/null)\" = 'sleep infinity ' ]; then\n"
	   "    echo \"pid ${p#/proc/}\"; grep -E '^(Uid|Cap|NoNewPrivs|Seccomp)' $p/status\n"
	   "  fi\n"
	   "done");
	assert_int_equal(x->exit_code, 0);
	char *p = strstr(x->out, "pid ");
	if (!p || strstr(p + 1, "pid "))
		fail_msg("not exactly one `sleep infinity` in the runner:\n%s", x->out);
}

/* The job's command (`sleep infinity`, found in the runner's /proc) is bound like an exec:
 * bounding, permitted and effective sets within Docker's, no CAP_SYS_ADMIN, inheritable and
 * ambient within Docker's set. */
static void test_task_process_has_dockers_capability_bounds(void **state)
{
	(void)state;
	struct res x;
	char why[2048] = "";
	task_status(g.a, &x);
	check_caps("task process", x.out, 1, why, sizeof why);
	if (why[0])
		fail_msg("%s\nthe task's status:\n%s", why, x.out);
}

/* ---- 3. /proc, mounts, namespaces, seccomp ---- */

/* The kernel's knobs are read-only (a value written back as read fails with EROFS/EACCES and
 * the host's value stays), host internals in /proc are masked or absent, mount and unshare are
 * refused, and every process of the runner (exec as root, as the user, the task) is under a
 * seccomp filter. */
static void test_proc_is_read_only_and_masked_mount_and_unshare_refused(void **state)
{
	(void)state;
	struct res x;
	char why[4096] = "";
	size_t l;
	static const char *knobs[] = {"/proc/sys/vm/swappiness", "/proc/sys/kernel/core_pattern", NULL};
	char *before[2] = {NULL, NULL};
	for (int i = 0; knobs[i]; i++) {
		FILE *f = fopen(knobs[i], "r");
		char buf[512] = "";
		if (f) {
			if (!fgets(buf, sizeof buf, f))
				buf[0] = '\0';
			fclose(f);
		}
		before[i] = strdup(buf);
	}
	sh(g.a, 0, &x,
	   "for f in /proc/sys/vm/swappiness /proc/sys/kernel/core_pattern; do\n"
	   "  [ -e $f ] || { echo \"knob $f absent\"; continue; }\n"
	   "  v=$(cat $f); e=$( { printf '%%s\\n' \"$v\" > $f; } 2>&1 ); echo \"knob $f rc=$? err=$e\"\n"
	   "done\n"
	   "for f in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug /proc/latency_stats "
	   "/proc/timer_stats; do\n"
	   "  if [ -e $f ]; then echo \"masked $f bytes=$(head -c 4096 $f 2>/dev/null | wc -c)\"; else echo "
	   "\"masked $f absent\"; fi\n"
	   "done\n"
	   "mkdir -p /tmp/mnt-probe; e=$(mount -t tmpfs sbx /tmp/mnt-probe 2>&1); r=$?; echo \"mount rc=$r "
	   "err=$e\"\n"
	   "[ $r = 0 ] && umount /tmp/mnt-probe; rmdir /tmp/mnt-probe\n"
	   "e=$(unshare -U true 2>&1); echo \"unshare-U rc=$? err=$e\"\n"
	   "e=$(unshare -m true 2>&1); echo \"unshare-m rc=$? err=$e\"\n"
	   "grep -E '^Seccomp:' /proc/self/status | sed 's/^/root /'");
	assert_int_equal(x.exit_code, 0);
	char *copy = strdup(x.out), *save = NULL;
	int knobs_seen = 0, masked_seen = 0;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		l = strlen(why);
		if (strncmp(line, "knob ", 5) == 0) {
			knobs_seen++;
			if (strstr(line, " absent"))
				continue;
			if (strstr(line, "rc=0 ") ||
			    (!strstr(line, "Read-only file system") && !strstr(line, "Permission denied")))
				snprintf(why + l, sizeof why - l, "written: %s; ", line);
		} else if (strncmp(line, "masked ", 7) == 0) {
			masked_seen++;
			if (!strstr(line, " absent") && !strstr(line, "bytes=0"))
				snprintf(why + l, sizeof why - l, "not masked: %s; ", line);
		} else if (strncmp(line, "mount ", 6) == 0) {
			if (strstr(line, "rc=0 ") || !strcasestr(line, "permission denied"))
				snprintf(why + l, sizeof why - l, "%s; ", line);
		} else if (strncmp(line, "unshare", 7) == 0) {
			if (strstr(line, "rc=0 ") || !strstr(line, "Operation not permitted"))
				snprintf(why + l, sizeof why - l, "%s; ", line);
		} else if (strncmp(line, "root Seccomp:", 13) == 0) {
			if (atoi(line + 13) != 2)
				snprintf(why + l, sizeof why - l, "root exec: %s; ", line);
		}
	}
	free(copy);
	l = strlen(why);
	if (knobs_seen != 2 || masked_seen != 6 || !strstr(x.out, "\nmount rc=") ||
	    !strstr(x.out, "unshare-U rc=") || !strstr(x.out, "unshare-m rc=") ||
	    !strstr(x.out, "root Seccomp:"))
		snprintf(why + l, sizeof why - l, "the probe's output is incomplete; ");
	/* the host's knobs are as they were */
	for (int i = 0; knobs[i]; i++) {
		FILE *f = fopen(knobs[i], "r");
		char buf[512] = "";
		if (f) {
			if (!fgets(buf, sizeof buf, f))
				buf[0] = '\0';
			fclose(f);
		}
		l = strlen(why);
		if (strcmp(buf, before[i]) != 0)
			snprintf(why + l, sizeof why - l, "the host's %s changed from %s to %s; ", knobs[i],
			         before[i], buf);
		free(before[i]);
	}
	/* the unprivileged user and the task are filtered as well */
	sh(g.a, 1, &x, "grep -E '^Seccomp:' /proc/self/status");
	l = strlen(why);
	if (strcmp(x.out, "Seccomp:\t2\n") != 0)
		snprintf(why + l, sizeof why - l, "user exec: %s; ", x.out);
	task_status(g.a, &x);
	l = strlen(why);
	if (!strstr(x.out, "\nSeccomp:\t2\n"))
		snprintf(why + l, sizeof why - l, "task process not filtered: %s; ", x.out);
	if (why[0])
		fail_msg("%s", why);
}

/* ---- 4. refused calls fail with EPERM in the runner, the agent goes on ---- */

/* Raw calls the filter refuses (x86-64 numbers; keyctl, clone with CLONE_NEWUSER, io_uring,
 * userfaultfd in user mode, perf, bpf, handles: EPERM; clone3: ENOSYS; unshare through the x32
 * and the 32-bit entry points: EPERM, or ENOSYS/SIGSEGV where the kernel has no such entry).
 * Each would only affect the calling process if it went through. Afterwards the agent is alive,
 * answers /v1/agent/self and runs another exec. */
static void test_refused_calls_get_eperm_and_agent_goes_on(void **state)
{
	(void)state;
#if !defined(__x86_64__)
	skip();
#else
	struct res x;
	char why[4096] = "";
	size_t l;
	sh(g.a, 0, &x,
	   "perl -MPOSIX -e '\n"
	   "  sub r { my ($n, $v) = @_; printf \"%%s %%d %%d\\n\", $n, $v, $v == -1 ? $! + 0 : 0 }\n"
	   "  r(\"keyctl\", syscall(250, 0, -3, 0));\n"
	   "  my $c = syscall(56, 0x10000000 | 17, 0, 0, 0, 0); POSIX::_exit(0) if $c == 0;\n"
	   "  waitpid($c, 0) if $c > 0; r(\"clone_newuser\", $c);\n"
	   "  r(\"clone3\", syscall(435, 0, 0));\n"
	   "  r(\"io_uring_setup\", syscall(425, 1, 0));\n"
	   "  r(\"userfaultfd\", syscall(323, 1));\n"
	   "  r(\"perf_event_open\", syscall(298, 0, 0, -1, -1, 0));\n"
	   "  r(\"bpf\", syscall(321, 0, 0, 0));\n"
	   "  r(\"open_by_handle_at\", syscall(304, -100, 0, 0));\n"
	   "  r(\"unshare_x32\", syscall(0x40000000 | 272, 0x10000000));\n"
	   "'\n"
	   "python3 -c '\n"
	   "import ctypes, mmap\n"
	   "# push rbx; mov eax, 310 (unshare, i386); mov ebx, CLONE_NEWUSER; int 0x80; pop rbx; ret\n"
	   "code = bytes([0x53, 0xb8, 0x36, 1, 0, 0, 0xbb, 0, 0, 0, 0x10, 0xcd, 0x80, 0x5b, 0xc3])\n"
	   "m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\n"
	   "m.write(code)\n"
	   "f = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(m)))\n"
	   "print(\"unshare_i386\", f(), flush=True)\n"
	   "' 2>/dev/null; echo \"i386 status $?\"");
	static const struct {
		const char *name;
		int errnos[2];
	} want[] = {
	    {"keyctl", {EPERM, EPERM}},       {"clone_newuser", {EPERM, EPERM}},
	    {"clone3", {ENOSYS, ENOSYS}},     {"io_uring_setup", {EPERM, EPERM}},
	    {"userfaultfd", {EPERM, EPERM}},  {"perf_event_open", {EPERM, EPERM}},
	    {"bpf", {EPERM, EPERM}},          {"open_by_handle_at", {EPERM, EPERM}},
	    {"unshare_x32", {EPERM, ENOSYS}},
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		char pat[64];
		snprintf(pat, sizeof pat, "%s ", want[i].name);
		const char *p = strstr(x.out, pat);
		int ret = 0, err = 0;
		l = strlen(why);
		if (!p || sscanf(p + strlen(pat), "%d %d", &ret, &err) != 2)
			snprintf(why + l, sizeof why - l, "%s: no result; ", want[i].name);
		else if (ret != -1 || (err != want[i].errnos[0] && err != want[i].errnos[1]))
			snprintf(why + l, sizeof why - l, "%s returned %d, errno %d (%s); ", want[i].name,
			         ret, err, strerror(err));
	}
	/* the 32-bit entry: -EPERM (-1), or the process died with SIGSEGV (no IA32 emulation) */
	const char *st = strstr(x.out, "i386 status ");
	l = strlen(why);
	if (!st)
		snprintf(why + l, sizeof why - l, "i386: no result; ");
	else if (atoi(st + 12) == 0 && !strstr(x.out, "unshare_i386 -1\n"))
		snprintf(why + l, sizeof why - l, "unshare through int 0x80 was not refused; ");
	else if (atoi(st + 12) != 0 && atoi(st + 12) != 128 + SIGSEGV)
		snprintf(why + l, sizeof why - l, "i386 probe ended with %d; ", atoi(st + 12));
	char out[4096];
	snprintf(out, sizeof out, "%s", x.out);
	for (char *p = out; (p = strchr(p, '\n')) && p[1]; p++)
		*p = ',';
	print_message("%s", out);

	/* the agent: alive, answering, running execs */
	l = strlen(why);
	if (kill(g.n.pid, 0) < 0)
		snprintf(why + l, sizeof why - l, "nomad-local is gone; ");
	char url[256];
	struct h_resp r;
	snprintf(url, sizeof url, "%s/v1/agent/self", g.n.url);
	l = strlen(why);
	if (h_http(&r, "GET", url, NULL, 0, h_nomad_headers(&g.n)) < 0 || r.status != 200)
		snprintf(why + l, sizeof why - l, "GET /v1/agent/self failed; ");
	else
		h_resp_free(&r);
	struct h_exec e;
	int rc = h_nomad_exec(&g.n, g.a, "[\"/bin/echo\",\"alive\"]", 0, NULL, 0, &e);
	l = strlen(why);
	if (rc != 0 || e.exit_code != 0 || strcmp(e.out, "alive\n") != 0)
		snprintf(why + l, sizeof why - l, "no exec after the refused calls; ");
	h_exec_free(&e);
	if (why[0])
		fail_msg("%s\noutput:\n%s", why, out);
#endif
}

/* ---- 5. the host's files ---- */

/* The host's secrets and state are not in the runner: no shadow, ssh, sudoers, /var contents,
 * /root, the agent's state directory or the harness's; /etc/passwd and /etc/group list only
 * root, nobody and user. */
static void test_host_secrets_and_accounts_are_absent(void **state)
{
	(void)state;
	struct res x;
	char why[4096] = "";
	size_t l;
	sh(g.b, 0, &x,
	   "for f in /etc/shadow /etc/gshadow /etc/shadow- /etc/ssh /etc/sudoers /etc/sudoers.d "
	   "/etc/ssl/private "
	   "/var/lib /var/log /var/cache /var/spool /root /home/* /srv/* /opt/* /run/* '%s' '%s'; do\n"
	   "  [ -e \"$f\" ] && echo \"present $f\"\n"
	   "done\n"
	   "echo \"var: $(ls -A /var | tr '\\n' ' ')\"\n"
	   "echo passwd:; cat /etc/passwd; echo group:; cat /etc/group; true",
	   g.n.state, h_tmpdir());
	assert_int_equal(x.exit_code, 0);
	const char *out = x.out;
	for (const char *p = out; (p = strstr(p, "present ")); p++) {
		l = strlen(why);
		snprintf(why + l, sizeof why - l, "%.*s; ", (int)strcspn(p, "\n"), p);
	}
	l = strlen(why);
	if (!strstr(out, "var: tmp \n") && !strstr(out, "var: \n"))
		snprintf(why + l, sizeof why - l, "/var holds more than tmp; ");
	const char *pw = strstr(out, "passwd:\n"), *gr = strstr(out, "group:\n");
	assert_non_null(pw);
	assert_non_null(gr);
	int accounts = 0;
	for (const char *line = pw + 8; line < gr && *line; line = strchr(line, '\n') + 1) {
		size_t n = strcspn(line, ":\n");
		if (!((n == 4 && strncmp(line, "root", 4) == 0) ||
		      (n == 6 && strncmp(line, "nobody", 6) == 0) ||
		      (n == 4 && strncmp(line, "user", 4) == 0))) {
			l = strlen(why);
			snprintf(why + l, sizeof why - l, "account %.*s in /etc/passwd; ", (int)n, line);
		}
		accounts++;
		if (!strchr(line, '\n'))
			break;
	}
	for (const char *line = gr + 7; *line; line = strchr(line, '\n') + 1) {
		size_t n = strcspn(line, ":\n");
		if (n && !((n == 4 && strncmp(line, "root", 4) == 0) ||
		           (n == 7 && strncmp(line, "nogroup", 7) == 0) ||
		           (n == 4 && strncmp(line, "user", 4) == 0))) {
			l = strlen(why);
			snprintf(why + l, sizeof why - l, "group %.*s in /etc/group; ", (int)n, line);
		}
		if (!strchr(line, '\n'))
			break;
	}
	l = strlen(why);
	if (accounts < 2 || !strstr(pw, "root:") || !strstr(pw, "\nuser:"))
		snprintf(why + l, sizeof why - l, "/etc/passwd lacks root or user; ");
	if (why[0])
		fail_msg("%s\noutput:\n%s", why, out);
}

/* ---- 6. the writable space is bounded and not on the host's disk ---- */

/* With -disk-mb 64, writing 3 GiB to /workspace stops at the bound (ENOSPC, or the writer is
 * OOM-killed): the file holds at most 64 MiB, /tmp shares the bound, and neither the agent's
 * state directory nor the free space of its file system moved by anything like the write. */
static void test_big_write_stops_at_disk_bound_off_host_disk(void **state)
{
	(void)state;
	struct res x;
	char why[4096] = "";
	size_t l;
	long long du0 = du(g.n.state), free0 = fs_free(g.n.state);
	long long t0 = h_now_ms();
	/* as the learner's code runs: the unprivileged user; timeout bounds a missing limit */
	struct h_exec e;
	int rc = h_nomad_exec(&g.n, g.a, SH_USER, 0,
	                      "e=$(timeout -s KILL 60 head -c 3G /dev/zero 2>&1 > /workspace/big.bin); echo "
	                      "\"write rc=$? err=$e\"\n"
	                      "echo \"size=$(stat -c %s /workspace/big.bin)\"\n"
	                      "echo x > /tmp/after-full.txt 2>/dev/null; echo \"tmp rc=$?\"\n"
	                      "echo \"df $(df -k /workspace /tmp | awk 'NR > 1 { printf \"%s \", $2 }')\"\n",
	                      1, &e);
	long long t1 = h_now_ms();
	char out[4096], closing[300];
	snprintf(out, sizeof out, "%s", e.out ? e.out : "");
	snprintf(closing, sizeof closing, "%d %s", e.close_code, e.close_reason);
	int exited = e.exited, code = e.exit_code;
	h_exec_free(&e);
	if (rc != 0 || !exited)
		fail_msg("the runner went down under the write (no exit frame; close %s): the write was not "
		         "stopped at "
		         "the disk bound",
		         closing);
	long long du1 = du(g.n.state), free1 = fs_free(g.n.state);

	const char *w = strstr(out, "write rc=");
	long long size = -1;
	const char *s = strstr(out, "size=");
	if (s)
		size = atoll(s + 5);
	l = strlen(why);
	if (!w)
		snprintf(why + l, sizeof why - l, "no write result; ");
	else if (!(atoi(w + 9) == 137 || (atoi(w + 9) != 0 && strstr(w, "No space left on device"))))
		snprintf(why + l, sizeof why - l, "the write did not stop with ENOSPC or an OOM kill; ");
	l = strlen(why);
	if (size < 0 || size > (long long)DISK_MB * 1024 * 1024)
		snprintf(why + l, sizeof why - l, "big.bin holds %lld bytes, more than %d MiB; ", size,
		         DISK_MB);
	l = strlen(why);
	if (!strstr(out, "tmp rc=1"))
		snprintf(why + l, sizeof why - l, "/tmp does not share the full bound; ");
	char df[64];
	snprintf(df, sizeof df, "df %d %d ", DISK_MB * 1024, DISK_MB * 1024);
	l = strlen(why);
	if (!strstr(out, df))
		snprintf(why + l, sizeof why - l, "/workspace and /tmp are not %d MiB; ", DISK_MB);
	/* the host's disk: our own directory exactly, the file system with room for the noise of
	 * whatever else this machine does meanwhile */
	l = strlen(why);
	if (du1 - du0 > 4LL << 20)
		snprintf(why + l, sizeof why - l, "the agent's state directory grew by %lld KiB; ",
		         (du1 - du0) >> 10);
	l = strlen(why);
	if (free0 - free1 > 256LL << 20)
		snprintf(why + l, sizeof why - l, "the host file system lost %lld MiB of free space; ",
		         (free0 - free1) >> 20);
	print_message("write stopped after %lld ms; state dir %+lld KiB, host free space %+lld MiB\n",
	              t1 - t0, (du1 - du0) >> 10, (free1 - free0) >> 20);
	static const char cleanup[] = "rm -f /workspace/big.bin /tmp/after-full.txt; echo ok > "
	                              "/workspace/small && cat /workspace/small && rm /workspace/small";
	if (why[0]) {
		/* best effort: the runner may be gone */
		if (h_nomad_exec(&g.n, g.a, SH_USER, 0, cleanup, 1, &e) == 0)
			h_exec_free(&e);
		fail_msg("%s\nexit %d, output:\n%s", why, code, out);
	}
	/* the space is free again once the file is gone */
	sh(g.a, 1, &x, "%s", cleanup);
	if (strcmp(x.out, "ok\n") != 0)
		fail_msg("the writable space did not recover: %s", x.out);
}

/* ---- 7. a fork bomb stays in its runner ---- */

struct bomb {
	const char *alloc;
	char marker[64]; /* in the bomb's command line: its processes on the host */
	struct h_exec x;
	int rc;
};

static void *bomb_run(void *arg)
{
	struct bomb *b = arg;
	/* forks until the kernel refuses (or 4096 children: a missing limit stays harmless), holds
	 * them 3 s, then kills them by pid; the children sleep at most 20 s, all of it in 30 s */
	char cmd[1024];
	snprintf(cmd, sizeof cmd,
	         "[\"/usr/bin/timeout\",\"-s\",\"KILL\",\"30\",\"perl\",\"-MPOSIX\",\"-e\","
	         "\"my @p; my $why = 'cap'; while (@p < 4096) { my $c = fork(); if (!defined $c) { $why = $! "
	         "+ 0; last } "
	         "if ($c == 0) { sleep 20; POSIX::_exit(0) } push @p, $c } "
	         "print scalar(@p), ' ', $why, qq(\\n); sleep 3; kill 9, @p; waitpid($_, 0) for @p; "
	         "print qq(done\\n) # %s\"]",
	         b->marker);
	b->rc = h_nomad_exec(&g.n, b->alloc, cmd, 0, NULL, 0, &b->x);
	return NULL;
}

/* A runs a (bounded) fork bomb: it ends at the runner's pids limit (EAGAIN, at most 1024
 * processes, the default as Poseidon's jobs set none) while B answers an exec within 1 s and
 * the agent goes on; afterwards A runs programs again. */
static void test_fork_bomb_stays_in_its_runner(void **state)
{
	(void)state;
	struct bomb b = {.alloc = g.a};
	snprintf(b.marker, sizeof b.marker, "sbx-fork-bomb-%d", (int)getpid());
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, bomb_run, &b), 0);
	/* full when the bomb's count stops growing */
	int last = -1, stable = 0, peak = 0;
	long long end = h_now_ms() + 25000;
	while (h_now_ms() < end && stable < 3) {
		h_sleep_ms(100);
		int n = host_procs(b.marker);
		stable = n > 1 && n == last ? stable + 1 : 0;
		last = n;
		peak = n > peak ? n : peak;
	}
	struct h_exec e;
	int brc = h_nomad_exec(&g.n, g.b, "[\"/bin/echo\",\"B answers\"]", 0, NULL, 0, &e);
	int still = host_procs(b.marker);
	pthread_join(t, NULL);
	char why[2048] = "";
	size_t l = strlen(why);
	if (stable < 3)
		snprintf(why + l, sizeof why - l, "the bomb did not level off (last count %d); ", last);
	l = strlen(why);
	if (brc != 0 || e.exit_code != 0 || strcmp(e.out, "B answers\n") != 0 || e.seconds > 1.0)
		snprintf(why + l, sizeof why - l, "B's exec: rc %d, exit %d, %.2f s, out %s; ", brc,
		         e.exit_code, e.seconds, e.out);
	print_message("bomb: %d processes at its peak; B answered in %.3f s; while %d still held\n", peak,
	              e.seconds, still);
	h_exec_free(&e);
	/* the host's count: the bomb's children, perl and timeout; the runner's limit counts its
	 * init, task and exec processes too */
	l = strlen(why);
	if (peak > 1024)
		snprintf(why + l, sizeof why - l,
		         "the bomb reached %d processes, more than the limit of 1024; ", peak);
	l = strlen(why);
	if (still < last)
		snprintf(why + l, sizeof why - l, "B's exec ran after the bomb let go (%d of %d); ", still,
		         last);
	int forked = -1, err = -1;
	l = strlen(why);
	if (b.rc != 0 || sscanf(b.x.out, "%d %d", &forked, &err) != 2)
		snprintf(why + l, sizeof why - l, "the bomb's exec: rc %d, exit %d, out %s; ", b.rc,
		         b.x.exit_code, b.x.out);
	else if (err != EAGAIN || forked > 1024)
		snprintf(why + l, sizeof why - l, "the bomb forked %d children, then %s%s; ", forked,
		         err == 0 ? "stopped at its own cap" : "got ", err == 0 ? "" : strerror(err));
	h_exec_free(&b.x);
	/* A recovers: its processes are gone, it forks again */
	struct res x;
	end = h_now_ms() + 10000;
	while (host_procs(b.marker) > 0 && h_now_ms() < end)
		h_sleep_ms(50);
	l = strlen(why);
	if (host_procs(b.marker) > 0)
		snprintf(why + l, sizeof why - l, "the bomb's processes outlived it; ");
	sh(g.a, 0, &x, "sh -c 'echo A forks again'");
	l = strlen(why);
	if (strcmp(x.out, "A forks again\n") != 0)
		snprintf(why + l, sizeof why - l, "A does not fork again: %s; ", x.out);
	if (why[0])
		fail_msg("%s", why);
}

/* ---- 8. runners do not see each other ---- */

/* A's files in /workspace and /tmp, its processes (a `sleep 1234`) and its System V shared
 * memory are A's: B sees none of them, while A (and the host, for the process) does. */
static void test_runners_do_not_see_each_others_files_and_processes(void **state)
{
	(void)state;
	struct res x;
	char why[4096] = "";
	size_t l;
	static const char find_sleep[] = "for p in /proc/[0-9]*; do\n"
	                                 "  [ \"$(tr '\\0' ' ' < $p/cmdline 2>/dev/null)\" = 'sleep 1234 ' ] "
	                                 "&& echo \"seen ${p#/proc/}\"\n"
	                                 "done\n";
	sh(g.a, 0, &x,
	   "echo secret-of-a > /workspace/iso-a.txt; echo secret-of-a > /tmp/iso-a.txt\n"
	   "(setsid sleep 1234 >/dev/null 2>&1 & echo $! > /alloc/sleep.pid)\n"
	   "ipcmk -M 4096 | awk '{ print $NF }' > /alloc/shm.id\n"
	   "sleep 0.2\n"
	   "%s"
	   "cat /workspace/iso-a.txt /tmp/iso-a.txt; echo \"shm $(ipcs -m | grep -c '^0x')\"",
	   find_sleep);
	l = strlen(why);
	if (!strstr(x.out, "seen ") || !strstr(x.out, "secret-of-a\nsecret-of-a\n") ||
	    !strstr(x.out, "shm 1\n"))
		snprintf(why + l, sizeof why - l, "A does not see its own: %s; ", x.out);
	l = strlen(why);
	if (host_procs("sleep 1234") < 1)
		snprintf(why + l, sizeof why - l, "no `sleep 1234` on the host; ");
	sh(g.b, 0, &x,
	   "%s"
	   "for f in /workspace/iso-a.txt /tmp/iso-a.txt /alloc/sleep.pid /alloc/shm.id; do [ -e $f ] && "
	   "echo \"present $f\"; done\n"
	   "grep -rl secret-of-a /workspace /tmp /alloc /local /secrets 2>/dev/null | sed 's/^/found /'\n"
	   "echo \"shm $(ipcs -m | grep -c '^0x')\"\n"
	   "echo \"procs $(ls /proc | grep -c '^[0-9]')\"",
	   find_sleep);
	l = strlen(why);
	if (strstr(x.out, "seen ") || strstr(x.out, "present ") || strstr(x.out, "found ") ||
	    !strstr(x.out, "shm 0\n"))
		snprintf(why + l, sizeof why - l, "B sees A's: %s; ", x.out);
	const char *pr = strstr(x.out, "procs ");
	l = strlen(why);
	if (!pr || atoi(pr + 6) > 8)
		snprintf(why + l, sizeof why - l, "B sees %d processes; ", pr ? atoi(pr + 6) : -1);
	sh(g.a, 0, &x,
	   "kill $(cat /alloc/sleep.pid); ipcrm -m $(cat /alloc/shm.id); rm -f /alloc/sleep.pid "
	   "/alloc/shm.id /workspace/iso-a.txt /tmp/iso-a.txt");
	if (why[0])
		fail_msg("%s", why);
}

/* ---- 9. the host's loopback services ---- */

/* A runner without network reaches neither the agent's port nor another listener on the host's
 * 127.0.0.1 (no connection arrives there), while its own loopback works. */
static void test_host_loopback_ports_are_unreachable(void **state)
{
	(void)state;
	struct res x;
	char why[2048] = "";
	size_t l;
	int port = h_free_port();
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(ls, 16), 0);
	/* the listener answers on the host (that connection is taken off the queue) */
	assert_int_equal(h_wait_port(port, 2000), 0);
	h_sleep_ms(50);
	int c;
	while ((c = accept(ls, NULL, NULL)) >= 0)
		close(c);
	sh(g.a, 0, &x,
	   "for p in %d %d; do\n"
	   "  if timeout 5 bash -c \"exec 3<>/dev/tcp/127.0.0.1/$p\" 2>/dev/null; then echo \"port $p "
	   "reached\"; else echo \"port $p unreachable\"; fi\n"
	   "done\n"
	   "rm -f /tmp/inner.port\n"
	   "python3 -c 'import socket, time\n"
	   "s = socket.socket(); s.bind((\"127.0.0.1\", 0)); s.listen(1)\n"
	   "open(\"/tmp/inner.port\", \"w\").write(str(s.getsockname()[1])); time.sleep(10)' &\n"
	   "for i in $(seq 100); do [ -s /tmp/inner.port ] && break; sleep 0.05; done\n"
	   "if timeout 5 bash -c \"exec 3<>/dev/tcp/127.0.0.1/$(cat /tmp/inner.port)\" 2>/dev/null; then "
	   "echo inner reached; fi\n"
	   "kill $!; rm -f /tmp/inner.port",
	   g.n.port, port);
	char line[64];
	snprintf(line, sizeof line, "port %d unreachable\n", g.n.port);
	l = strlen(why);
	if (!strstr(x.out, line))
		snprintf(why + l, sizeof why - l, "the agent's port %d: %s; ", g.n.port, x.out);
	snprintf(line, sizeof line, "port %d unreachable\n", port);
	l = strlen(why);
	if (!strstr(x.out, line))
		snprintf(why + l, sizeof why - l, "the host's listener on %d: %s; ", port, x.out);
	l = strlen(why);
	if (!strstr(x.out, "inner reached\n"))
		snprintf(why + l, sizeof why - l,
		         "the runner's own loopback does not work (the probe proves nothing): %s; ", x.out);
	c = accept(ls, NULL, NULL);
	l = strlen(why);
	if (c >= 0) {
		snprintf(why + l, sizeof why - l,
		         "a connection from the runner arrived at the host's listener; ");
		close(c);
	}
	close(ls);
	if (why[0])
		fail_msg("%s", why);
}

/* /dev is read-only for root (bwrap's /dev is a tmpfs of half the host's memory that nothing
 * would bound), while /dev/shm is writable by everyone as in Docker (Python's multiprocessing
 * needs it) and lives on the runner's one bounded tmpfs. */
static void test_dev_is_read_only_and_shm_shares_the_bound(void **state)
{
	(void)state;
	struct res x;
	sh(g.a, 0, &x,
	   "touch /dev/planted 2>/dev/null && echo DEV-WRITTEN; rm -f /dev/planted 2>/dev/null\n"
	   "echo \"shm $(stat -c %%a /dev/shm) $(df -k /dev/shm | awk 'NR == 2 { print $2 }')\"\n");
	if (strstr(x.out, "DEV-WRITTEN"))
		fail_msg("root wrote a file into /dev: %s", x.out);
	char want[64];
	snprintf(want, sizeof want, "shm 1777 %d\n", DISK_MB * 1024);
	if (!strstr(x.out, want))
		fail_msg("/dev/shm is not the runner's 1777 bounded tmpfs (want \"%s\"): %s", want, x.out);
	sh(g.a, 1, &x, "echo data > /dev/shm/mine && cat /dev/shm/mine && rm /dev/shm/mine\n");
	assert_string_equal(x.out, "data\n");
}

/* A job whose group has a network reaches a server outside (in a network namespace of this
 * test, joined by a veth pair: nothing leaves the machine), but not the host's loopback, neither
 * directly nor through the user-mode gateway; a job without one reaches neither. */
static void test_outbound_network_only_with_a_group_network(void **state)
{
	(void)state;
	struct h_netns_server srv;
	struct res x;
	char net[64];
	if (h_netns_server_start(&srv) < 0)
		fail_msg("could not make the test's network namespace (ip netns, veth)");
	/* Poseidon's job for networkAccess true: a bridge network, the task's network_mode "" */
	char *body = h_nomad_job("sandbox-net", RUNNER_MEM_MB, "\"Networks\":[{\"Mode\":\"bridge\"}]");
	char *none = strstr(body, "\"network_mode\":\"none\"");
	assert_non_null(none);
	memmove(none + 16, none + 20, strlen(none + 20) + 1); /* "none" -> "" */
	assert_int_equal(h_nomad_register(&g.n, body, NULL), 200);
	free(body);
	assert_int_equal(h_nomad_wait_running(&g.n, "sandbox-net", net, TIMEOUT_MS), 0);
	const char *probe = "(exec 3<>/dev/tcp/%s/%d && head -1 <&3) 2>/dev/null || echo no-way-out\n"
	                    "for h in 127.0.0.1 10.0.2.2; do\n"
	                    "  timeout 5 bash -c \"exec 3<>/dev/tcp/$h/%d\" 2>/dev/null && echo REACHED-$h\n"
	                    "done\n"
	                    "grep nameserver /etc/resolv.conf\n";
	sh(net, 0, &x, probe, srv.ip, srv.port, g.n.port);
	char with[32768];
	snprintf(with, sizeof with, "%s", x.out);
	sh(g.a, 0, &x, probe, srv.ip, srv.port, g.n.port);
	h_netns_server_stop(&srv);
	char url[256];
	struct h_resp r;
	snprintf(url, sizeof url, "%s/v1/job/sandbox-net?purge=true", g.n.url);
	if (h_http(&r, "DELETE", url, NULL, 0, h_nomad_headers(&g.n)) == 0)
		h_resp_free(&r);
	if (!strstr(with, H_NETNS_GREETING) || strstr(with, "REACHED") ||
	    !strstr(with, "nameserver 10.0.2.3"))
		fail_msg("with a group network: %s", with);
	if (strstr(x.out, H_NETNS_GREETING) || !strstr(x.out, "no-way-out") || strstr(x.out, "REACHED"))
		fail_msg("without one: %s", x.out);
}

/* Each runner's user has a uid of its own, so that what the kernel counts per uid is not shared:
 * runner A holding every inotify instance its uid may have leaves runner B its own (with one
 * uid for all, B got EMFILE). */
static void test_runners_have_their_own_uids_and_per_uid_limits(void **state)
{
	(void)state;
	struct res x;
	char uid_a[32], uid_b[32];
	sh(g.a, 1, &x, "id -u");
	snprintf(uid_a, sizeof uid_a, "%s", x.out);
	sh(g.b, 1, &x, "id -u");
	snprintf(uid_b, sizeof uid_b, "%s", x.out);
	if (!strcmp(uid_a, uid_b))
		fail_msg("both runners' user is uid %s", uid_a);
	/* A takes every inotify instance of its uid and keeps them for a while */
	sh(g.a, 1, &x,
	   "rm -f /tmp/held; setsid python3 -c \"\n"
	   "import ctypes, time\n"
	   "libc = ctypes.CDLL(None, use_errno=True)\n"
	   "fds = []\n"
	   "while len(fds) < 100000:\n"
	   "    fd = libc.inotify_init()\n"
	   "    if fd < 0: break\n"
	   "    fds.append(fd)\n"
	   "open('/tmp/held', 'w').write(str(len(fds)))\n"
	   "time.sleep(20)\n"
	   "\" </dev/null >/dev/null 2>&1 &\n"
	   "for i in $(seq 100); do [ -s /tmp/held ] && break; sleep 0.05; done; cat /tmp/held");
	int held = atoi(x.out);
	assert_true(held > 0);
	struct res b;
	sh(g.b, 1, &b,
	   "python3 -c \"import ctypes; l = ctypes.CDLL(None, use_errno=True); fd = l.inotify_init(); "
	   "print(fd >= 0, ctypes.get_errno())\"");
	sh(g.a, 0, &x, "pkill -f inotify_init; true");
	printf("runner A (uid %.*s) held %d inotify instances; runner B (uid %.*s): %s", (int)strcspn(uid_a, "\n"), uid_a,
	       held, (int)strcspn(uid_b, "\n"), uid_b, b.out);
	assert_string_equal(b.out, "True 0\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_exec_capabilities_are_dockers_and_user_has_none, runners_up),
	    cmocka_unit_test_setup(test_task_process_has_dockers_capability_bounds, runners_up),
	    cmocka_unit_test_setup(test_proc_is_read_only_and_masked_mount_and_unshare_refused, runners_up),
	    cmocka_unit_test_setup(test_refused_calls_get_eperm_and_agent_goes_on, runners_up),
	    cmocka_unit_test_setup(test_host_secrets_and_accounts_are_absent, runners_up),
	    cmocka_unit_test_setup(test_big_write_stops_at_disk_bound_off_host_disk, runners_up),
	    cmocka_unit_test_setup(test_fork_bomb_stays_in_its_runner, runners_up),
	    cmocka_unit_test_setup(test_runners_do_not_see_each_others_files_and_processes, runners_up),
	    cmocka_unit_test_setup(test_host_loopback_ports_are_unreachable, runners_up),
	    cmocka_unit_test_setup(test_dev_is_read_only_and_shm_shares_the_bound, runners_up),
	    cmocka_unit_test_setup(test_outbound_network_only_with_a_group_network, runners_up),
	    cmocka_unit_test_setup(test_runners_have_their_own_uids_and_per_uid_limits, runners_up),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
