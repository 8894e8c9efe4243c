/* sandbox: see sandbox.h.
 *
 * Start-up sequence: prepare the allocation directory and cgroup, write bwrap's arguments to a
 * memfd (--args, so that `ps` inside shows a short command line), fork; the child starts a new
 * session, joins the cgroup, applies rlimit fallbacks and execs bwrap with --info-fd (a pipe
 * to us) and --json-status-fd (a file, so that the exit code survives an agent restart).
 * bwrap writes its child pid to the info pipe before it has finished mounting; the sandbox is
 * ready once that init process has forked the task (it does so only after the root is
 * complete), which we poll for in /proc.
 */
#include "sandbox.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include "confine.h"
#include "log.h"

#define BWRAP "/usr/bin/bwrap"
#define READY_POLL_MS 2
#define MAX_IMAGES 32

static char state_dir[1024];
static char images_dir[1024];
static char setuser_path[1100];
static enum sandbox_cgroup_mode cg_mode = CG_NONE;
static char cg_base[3][512]; /* v1: memory, pids, cpu parents; v2: [0] */
static int own_pidns = -1;

struct image {
	char name[256];
	char root[1100];
	char passwd[1200], group[1200];
	int has_setuser;
	int own_user;      /* the account "user" is ours: each sandbox gets a uid of its own */
	char setpriv[32]; /* where the root has setpriv, "" if it has none */
	uid_t uid;
	gid_t gid;
	struct buf args; /* NUL-separated bwrap arguments for the root file system */
};
static struct image *images[MAX_IMAGES];
static int nimages;
static char host_dirs[SANDBOX_HOST_DIRS_MAX][512]; /* -host-dir: more of the host, read-only */
static int nhost_dirs;
static long long disk_bytes; /* the writable tmpfs of one sandbox */

enum sandbox_cgroup_mode sandbox_cgroup_mode(void) { return cg_mode; }

/* ---- helpers ---- */

/* The start time of process pid (clock ticks since boot), with its pid the identity of a
 * process that survives pid reuse; 0 when it does not exist or is a zombie. */
static unsigned long long proc_start_time(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	/* fields after the comm: state is field 3, starttime field 22; a zombie has ended */
	if (p[1] != ' ' || p[2] == 'Z')
		return 0;
	int field = 2;
	for (p++; *p && field < 22; p++)
		if (*p == ' ')
			field++;
	return strtoull(p, NULL, 10);
}

static int args_add(struct buf *b, const char *s) { return buf_add(b, s, strlen(s) + 1); }

static int file_exists(const char *p)
{
	struct stat sb;
	return lstat(p, &sb) == 0;
}

static void args_add_cb(void *ud, const char *s) { args_add(ud, s); }

/* /proc as runc presents it: the kernel's knobs read-only, the files that show host internals
 * masked (bound over by /dev/null or an empty read-only tmpfs). bwrap takes a bind's source from
 * the host, so the read-only /proc/sys is the host's proc instance: its contents are the
 * kernel's, and its network part follows the reader's namespace all the same. */
static void proc_args(struct buf *a)
{
	static const char *ro[] = {"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs", NULL};
	static const char *masked[] = {"/proc/kcore",	    "/proc/keys",	  "/proc/timer_list",
				       "/proc/sched_debug", "/proc/latency_stats", "/proc/timer_stats", NULL};
	static const char *emptied[] = {"/proc/acpi", "/proc/scsi", NULL};
	args_add(a, "--proc");
	args_add(a, "/proc");
	for (int i = 0; ro[i]; i++)
		if (file_exists(ro[i])) {
			args_add(a, "--ro-bind");
			args_add(a, ro[i]);
			args_add(a, ro[i]);
		}
	for (int i = 0; masked[i]; i++)
		if (file_exists(masked[i])) {
			args_add(a, "--ro-bind");
			args_add(a, "/dev/null");
			args_add(a, masked[i]);
		}
	for (int i = 0; emptied[i]; i++)
		if (file_exists(emptied[i])) {
			args_add(a, "--tmpfs");
			args_add(a, emptied[i]);
			args_add(a, "--remount-ro");
			args_add(a, emptied[i]);
		}
}

/* The writable directories of a sandbox, all on its one tmpfs. */
static const struct {
	const char *path, *name;
	mode_t mode;
	int user_owned;
} rw_dirs[] = {
	{"/workspace", "workspace", 0755, 1}, {"/tmp", "tmp", 01777, 0},	   {"/alloc", "alloc", 0777, 0},
	{"/local", "local", 0777, 0},	      {"/secrets", "secrets", 0777, 0}, {"/dev/shm", "shm", 01777, 0},
	{NULL, NULL, 0, 0},
};

/* Inside the sandbox's mount namespace (umask 0): the tmpfs goes on /tmp first, its directories
 * are bound to their places, and last its "tmp" directory is bound over /tmp, which hides the
 * tmpfs's own root. Returns 0 or an errno. */
static int rw_mount_here(uid_t uid, gid_t gid)
{
	char opt[64], src[64];
	snprintf(opt, sizeof opt, "size=%lld,mode=0755", disk_bytes);
	if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, opt) < 0)
		return errno;
	for (int i = 0; rw_dirs[i].path; i++) {
		snprintf(src, sizeof src, "/tmp/%s", rw_dirs[i].name);
		if (mkdir(src, rw_dirs[i].mode) < 0 || (rw_dirs[i].user_owned && chown(src, uid, gid) < 0))
			return errno;
	}
	for (int i = 0; rw_dirs[i].path; i++) {
		if (strcmp(rw_dirs[i].path, "/tmp") == 0)
			continue;
		snprintf(src, sizeof src, "/tmp/%s", rw_dirs[i].name);
		if (mount(src, rw_dirs[i].path, NULL, MS_BIND, NULL) < 0)
			return errno;
	}
	return mount("/tmp/tmp", "/tmp", NULL, MS_BIND, NULL) < 0 ? errno : 0;
}

/* Gives a standing sandbox its writable space. The agent steps into the sandbox's mount
 * namespace for the few mounts and back into its own (forking a child for it cost a copy of
 * the agent per sandbox and made starts 30% slower). Its root and working directory follow the
 * namespace, so nothing of the sandbox's is reachable through them afterwards. 0, or -1 with
 * errno. */
static int rw_mount(struct sandbox *sb)
{
	static int own_mntns = -1;
	if (own_mntns < 0 && (own_mntns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	if (setns(sb->ns_fd[0], CLONE_NEWNS) < 0)
		return -1;
	mode_t um = umask(0);
	int rc = rw_mount_here(sb->user_uid, sb->user_gid);
	umask(um);
	if (setns(own_mntns, CLONE_NEWNS) < 0) {
		/* cannot happen with a namespace we hold open; never go on inside a sandbox */
		log_error("cannot return to the agent's mount namespace", "error", strerror(errno));
		abort();
	}
	return rc == 0 ? 0 : (errno = rc, -1);
}

/* The task's stdout and stderr go through pipes to a small process of ours that appends them to
 * the log files, up to SANDBOX_LOG_MAX bytes each, and drops the rest: a program that writes to
 * them (through /proc/<pid>/fd) cannot fill the host's disk. It lives in its own session, so it
 * outlives an agent restart, and ends when every writer has gone. Sets w[0], w[1] (the write
 * ends, for the task). 0 or -1. */
static int logmon_start(const char *outlog, const char *errlog, int w[2])
{
	int po[2], pe[2];
	if (pipe2(po, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(pe, O_CLOEXEC) < 0) {
		close(po[0]);
		close(po[1]);
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		close(po[0]), close(po[1]), close(pe[0]), close(pe[1]);
		return -1;
	}
	if (pid == 0) {
		signals_reset_for_exec();
		setsid();
		int out = open(outlog, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		int err = open(errlog, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		/* nothing else of the agent stays open here: ours move to 3..6, the rest are closed */
		int keep[4] = {fcntl(po[0], F_DUPFD, 100), fcntl(pe[0], F_DUPFD, 100), fcntl(out, F_DUPFD, 100),
			       fcntl(err, F_DUPFD, 100)};
		for (int i = 0; i < 4; i++)
			dup2(keep[i], 3 + i);
		syscall(SYS_close_range, 7, ~0U, 0);
		po[0] = 3, pe[0] = 4, out = out >= 0 ? 5 : -1, err = err >= 0 ? 6 : -1;
		struct pollfd pf[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
		int files[2] = {out, err};
		long long left[2] = {SANDBOX_LOG_MAX, SANDBOX_LOG_MAX};
		struct stat st;
		for (int i = 0; i < 2; i++)
			if (files[i] >= 0 && fstat(files[i], &st) == 0)
				left[i] -= st.st_size; /* a restarted task appends to its earlier log */
		char buf[16384];
		int open_pipes = 2;
		while (open_pipes > 0) {
			if (poll(pf, 2, -1) < 0 && errno != EINTR)
				break;
			for (int i = 0; i < 2; i++) {
				if (pf[i].fd < 0 || !pf[i].revents)
					continue;
				ssize_t n = read(pf[i].fd, buf, sizeof buf);
				if (n <= 0 && !(n < 0 && errno == EINTR)) {
					pf[i].fd = -1;
					open_pipes--;
					continue;
				}
				if (n > 0 && left[i] > 0 && files[i] >= 0) {
					size_t k = (size_t)(n < left[i] ? n : left[i]);
					if (write(files[i], buf, k) > 0)
						left[i] -= (long long)k;
				}
			}
		}
		_exit(0);
	}
	close(po[0]);
	close(pe[0]);
	w[0] = po[1];
	w[1] = pe[1];
	return 0;
}

/* ---- cgroups ---- */

static int cg_self_path(const char *controller, char *out, size_t cap)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	char line[1024];
	int found = 0;
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f)) {
		char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
		if (!b)
			continue;
		*b = '\0';
		char *ctrls = a + 1, *path = b + 1;
		path[strcspn(path, "\n")] = '\0';
		int match = 0;
		if (!controller)
			match = *ctrls == '\0';
		else
			for (char *save = NULL, *t = strtok_r(ctrls, ",", &save); t; t = strtok_r(NULL, ",", &save))
				match |= strcmp(t, controller) == 0;
		if (match) {
			snprintf(out, cap, "%s", strcmp(path, "/") == 0 ? "" : path);
			found = 1;
			break;
		}
	}
	fclose(f);
	return found ? 0 : -1;
}

static int cg_make_parent(const char *mount, const char *controller, char *out, size_t cap)
{
	char self[512] = "";
	if (cg_self_path(controller, self, sizeof self) == 0) {
		snprintf(out, cap, "%s%s/nomad-local", mount, self);
		if (mkdir(out, 0755) == 0 || errno == EEXIST)
			return 0;
	}
	snprintf(out, cap, "%s/nomad-local", mount);
	if (mkdir(out, 0755) == 0 || errno == EEXIST)
		return 0;
	return -1;
}

static void cg_probe(void)
{
	struct stat sb;
	if (stat("/sys/fs/cgroup/cgroup.controllers", &sb) == 0) {
		/* pure v2: controllers must be enabled down the tree; the root is exempt from the
		 * no-internal-processes rule, so our parent lives right below it */
		snprintf(cg_base[0], sizeof cg_base[0], "/sys/fs/cgroup/nomad-local");
		if ((mkdir(cg_base[0], 0755) == 0 || errno == EEXIST)) {
			write_str("/sys/fs/cgroup/cgroup.subtree_control", "+memory +pids +cpu");
			char sc[600];
			snprintf(sc, sizeof sc, "%s/cgroup.subtree_control", cg_base[0]);
			if (write_str(sc, "+memory +pids +cpu") == 0 || write_str(sc, "+memory +pids") == 0) {
				cg_mode = CG_V2;
				return;
			}
		}
	}
	if (stat("/sys/fs/cgroup/memory/memory.limit_in_bytes", &sb) == 0 &&
	    cg_make_parent("/sys/fs/cgroup/memory", "memory", cg_base[0], sizeof cg_base[0]) == 0) {
		cg_mode = CG_V1;
		if (cg_make_parent("/sys/fs/cgroup/pids", "pids", cg_base[1], sizeof cg_base[1]) < 0)
			cg_base[1][0] = '\0';
		if (cg_make_parent("/sys/fs/cgroup/cpu", "cpu", cg_base[2], sizeof cg_base[2]) < 0)
			cg_base[2][0] = '\0';
		return;
	}
	cg_mode = CG_NONE;
}

static void cg_write(const char *dir, const char *file, const char *val)
{
	char p[700];
	snprintf(p, sizeof p, "%s/%s", dir, file);
	if (write_str(p, val) < 0)
		log_debug("cgroup write failed", "path", p, "value", val, "error", strerror(errno));
}

static long long cg_read_key(const char *file, const char *key)
{
	char *s = read_file(file, 65536, NULL);
	long long v = -1;
	if (!s)
		return -1;
	size_t kl = strlen(key);
	for (char *line = s; line && *line;) {
		char *nl = strchr(line, '\n');
		if (strncmp(line, key, kl) == 0 && line[kl] == ' ') {
			v = strtoll(line + kl + 1, NULL, 10);
			break;
		}
		line = nl ? nl + 1 : NULL;
	}
	free(s);
	return v;
}

long long sandbox_oom_count(struct sandbox *sb)
{
	char p[700];
	if (sb->cg_mode == CG_V1 && sb->cg[0][0]) {
		snprintf(p, sizeof p, "%s/memory.oom_control", sb->cg[0]);
		return cg_read_key(p, "oom_kill");
	}
	if (sb->cg_mode == CG_V2 && sb->cg[0][0]) {
		snprintf(p, sizeof p, "%s/memory.events", sb->cg[0]);
		return cg_read_key(p, "oom_kill");
	}
	return -1;
}

static int cg_create(struct sandbox *sb, const struct sandbox_cfg *cfg)
{
	char val[64];
	long long mem = cfg->memory_mb > 0 ? cfg->memory_mb * 1024 * 1024 : 0;
	long long pids = cfg->pids_max > 0 ? cfg->pids_max : SANDBOX_PIDS_MAX;
	long long shares = cfg->cpu_mhz > 2 ? cfg->cpu_mhz : 2;
	char id[40];
	snprintf(id, sizeof id, "%s", sb->alloc_id);
	sb->cg_mode = cg_mode;
	if (cg_mode == CG_V2) {
		snprintf(sb->cg[0], sizeof sb->cg[0], "%s/%s", cg_base[0], id);
		if (mkdir(sb->cg[0], 0755) < 0 && errno != EEXIST)
			return -1;
		if (mem) {
			snprintf(val, sizeof val, "%lld", mem);
			cg_write(sb->cg[0], "memory.max", val);
			cg_write(sb->cg[0], "memory.swap.max", "0");
		}
		snprintf(val, sizeof val, "%lld", pids);
		cg_write(sb->cg[0], "pids.max", val);
		snprintf(val, sizeof val, "%lld", 1 + ((shares - 2) * 9999) / 262142);
		cg_write(sb->cg[0], "cpu.weight", val);
	} else if (cg_mode == CG_V1) {
		for (int i = 0; i < 3; i++) {
			if (!cg_base[i][0])
				continue;
			snprintf(sb->cg[i], sizeof sb->cg[i], "%s/%s", cg_base[i], id);
			if (mkdir(sb->cg[i], 0755) < 0 && errno != EEXIST) {
				if (i == 0)
					return -1;
				sb->cg[i][0] = '\0';
			}
		}
		if (mem) {
			snprintf(val, sizeof val, "%lld", mem);
			cg_write(sb->cg[0], "memory.limit_in_bytes", val);
			char p[700];
			snprintf(p, sizeof p, "%s/memory.memsw.limit_in_bytes", sb->cg[0]);
			if (file_exists(p))
				write_str(p, val);
			cg_write(sb->cg[0], "memory.swappiness", "0");
		}
		if (sb->cg[1][0]) {
			snprintf(val, sizeof val, "%lld", pids);
			cg_write(sb->cg[1], "pids.max", val);
		}
		if (sb->cg[2][0]) {
			snprintf(val, sizeof val, "%lld", shares);
			cg_write(sb->cg[2], "cpu.shares", val);
		}
	}
	sb->oom_base = sandbox_oom_count(sb);
	return 0;
}

/* Moves the calling process into the sandbox's cgroups (used in forked children). */
static int cg_join(struct sandbox *sb)
{
	char p[700];
	int ok = 0;
	for (int i = 0; i < 3; i++) {
		if (!sb->cg[i][0])
			continue;
		snprintf(p, sizeof p, "%s/cgroup.procs", sb->cg[i]);
		if (write_str(p, "0") < 0 && i == 0)
			ok = -1;
	}
	return ok;
}

static void cg_kill_all(struct sandbox *sb)
{
	char p[700];
	if (!sb->cg[0][0])
		return;
	for (int round = 0; round < 3; round++) {
		snprintf(p, sizeof p, "%s/cgroup.procs", sb->cg[0]);
		char *s = read_file(p, 1 << 20, NULL);
		if (!s || !*s) {
			free(s);
			return;
		}
		for (char *save = NULL, *t = strtok_r(s, "\n", &save); t; t = strtok_r(NULL, "\n", &save)) {
			pid_t pid = (pid_t)atoi(t);
			if (pid > 1)
				kill(pid, SIGKILL);
		}
		free(s);
	}
}

/* Cgroups whose last processes were still on their way out when their sandbox ended (SIGKILL
 * takes effect asynchronously): removed again on every sandbox_gc, so that they do not pile up
 * (thousands did, over many test runs, and slowed every cgroup operation of the machine). */
#define CG_PENDING_MAX 256
static char cg_pending[CG_PENDING_MAX][512];
static int ncg_pending;

static void cg_remove(struct sandbox *sb)
{
	for (int i = 0; i < 3; i++) {
		if (!sb->cg[i][0] || rmdir(sb->cg[i]) == 0 || errno == ENOENT)
			continue;
		if (errno == EBUSY && ncg_pending < CG_PENDING_MAX)
			snprintf(cg_pending[ncg_pending++], sizeof cg_pending[0], "%s", sb->cg[i]);
		else
			log_warn("cgroup not removed", "path", sb->cg[i], "error", strerror(errno));
	}
}

void sandbox_gc(void)
{
	for (int i = 0; i < ncg_pending;) {
		if (rmdir(cg_pending[i]) == 0 || errno == ENOENT) {
			memmove(cg_pending[i], cg_pending[ncg_pending - 1], sizeof cg_pending[0]);
			ncg_pending--;
		} else {
			i++;
		}
	}
}

static void oom_watch_start(struct sandbox *sb);

/* ---- images ---- */

/* Reads /etc/passwd of a root; finds "user". */
static int passwd_user(const char *root, uid_t *uid, gid_t *gid)
{
	char p[1200];
	snprintf(p, sizeof p, "%s/etc/passwd", root);
	char *s = read_file(p, 1 << 20, NULL);
	if (!s)
		return 0;
	int found = 0;
	for (char *save = NULL, *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "user:", 5) != 0)
			continue;
		unsigned u, g;
		if (sscanf(line, "user:%*[^:]:%u:%u:", &u, &g) == 2) {
			*uid = u;
			*gid = g;
			found = 1;
		}
		break;
	}
	free(s);
	return found;
}

static int write_with_line(const char *src, const char *dst, const char *line)
{
	size_t len = 0;
	char *s = read_file(src, 1 << 20, &len);
	struct buf b = {0};
	if (s) {
		buf_add(&b, s, len);
		if (len && s[len - 1] != '\n')
			buf_adds(&b, "\n");
	}
	free(s);
	buf_adds(&b, line);
	int r = b.p ? write_file_atomic(dst, b.p, b.len, 0644) : -1;
	buf_free(&b);
	return r;
}

static int root_entry_allowed(int is_host, const char *name)
{
	static const char *special[] = {"proc", "dev", "sys", "tmp", "workspace", "run", "lost+found", NULL};
	for (int i = 0; special[i]; i++)
		if (strcmp(name, special[i]) == 0)
			return 0;
	/* of the host's own root only /usr (its /etc is built from an allow list below, other
	 * directories come only when named with -host-dir) */
	return !is_host || strcmp(name, "usr") == 0;
}

/* What a program needs of the host's /etc, and nothing that holds a secret (shadow, ssh, ssl's
 * private keys, the service's own configuration): exact names, or prefixes ending in '*'. */
static const char *const host_etc_allowed[] = {
	"alternatives", "bash.bashrc", "bash_completion", "bash_completion.d", "bindresvport.blacklist",
	"ca-certificates", "ca-certificates.conf", "debian_version", "dpkg", "environment", "fonts", "gai.conf",
	"gcc*", "gdb", "host.conf", "inputrc", "java*", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "locale.alias",
	"locale.conf", "locale.gen", "localtime", "magic", "magic.mime", "mime.types", "nanorc", "nsswitch.conf",
	"os-release", "perl", "profile", "profile.d", "protocols", "python*", "R", "rpc", "ruby*", "services",
	"skel", "terminfo", "timezone", "vim", "xdg",
	NULL,
};

static int host_etc_entry_allowed(const char *name)
{
	for (int i = 0; host_etc_allowed[i]; i++) {
		const char *a = host_etc_allowed[i];
		size_t n = strlen(a);
		if (a[n - 1] == '*' ? strncmp(name, a, n - 1) == 0 : strcmp(name, a) == 0)
			return 1;
	}
	return 0;
}

/* The host's /etc for a sandbox on the host's root, copied once per agent start into dir/etc
 * (one bind instead of one per entry, which made every sandbox start 30 ms slower): the allowed
 * entries, /etc/ssl with its certificates only, and our own passwd, group, hosts and resolv.conf.
 * A change to the host's /etc reaches sandboxes when the agent starts again. */
static int host_etc(struct buf *a, const char *dir)
{
	char etc[1300], src[1400], dst[1400];
	snprintf(etc, sizeof etc, "%s/etc", dir);
	if (rm_rf(etc) < 0 || mkdir(etc, 0755) < 0)
		return -1;
	DIR *d = opendir("/etc");
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.' || !host_etc_entry_allowed(de->d_name))
			continue;
		snprintf(src, sizeof src, "/etc/%s", de->d_name);
		snprintf(dst, sizeof dst, "%s/%s", etc, de->d_name);
		if (copy_tree(src, dst) < 0)
			log_warn("part of a host /etc entry not copied for sandboxes", "path", src);
	}
	if (d)
		closedir(d);
	snprintf(dst, sizeof dst, "%s/ssl", etc);
	mkdir(dst, 0755);
	static const char *ssl[] = {"certs", "openssl.cnf", NULL};
	for (int i = 0; ssl[i]; i++) {
		snprintf(src, sizeof src, "/etc/ssl/%s", ssl[i]);
		snprintf(dst, sizeof dst, "%s/ssl/%s", etc, ssl[i]);
		if (file_exists(src) && copy_tree(src, dst) < 0)
			log_warn("part of a host /etc entry not copied for sandboxes", "path", src);
	}
	args_add(a, "--ro-bind");
	args_add(a, etc);
	args_add(a, "/etc");
	return 0;
}

/* Our own files in the sandboxes' /etc: the accounts a runner needs (root, nobody, user) and
 * the names of this machine's loopback, nothing of the host's own; DNS through the user-mode
 * network's forwarder (10.0.2.3), which a sandbox without network cannot reach anyway. */
static int host_etc_files(const char *etc, uid_t uid)
{
	char p[1300], line[512];
	snprintf(line, sizeof line,
		 "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
		 "user:x:%u:%u:user:/workspace:/bin/bash\n",
		 (unsigned)uid, (unsigned)uid);
	snprintf(p, sizeof p, "%s/passwd", etc);
	if (write_file_atomic(p, line, strlen(line), 0644) < 0)
		return -1;
	snprintf(line, sizeof line, "root:x:0:\nnogroup:x:65534:\nuser:x:%u:\n", (unsigned)uid);
	snprintf(p, sizeof p, "%s/group", etc);
	if (write_file_atomic(p, line, strlen(line), 0644) < 0)
		return -1;
	snprintf(line, sizeof line, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
	snprintf(p, sizeof p, "%s/hosts", etc);
	if (write_file_atomic(p, line, strlen(line), 0644) < 0)
		return -1;
	snprintf(line, sizeof line, "nameserver 10.0.2.3\n");
	snprintf(p, sizeof p, "%s/resolv.conf", etc);
	return write_file_atomic(p, line, strlen(line), 0644);
}

static int build_image(struct image *im)
{
	char p[1300];
	int is_host = strcmp(im->root, "/") == 0;
	const char *r = is_host ? "" : im->root;
	struct buf *a = &im->args;
	args_add(a, "--tmpfs");
	args_add(a, "/");
	DIR *d = opendir(im->root);
	if (!d)
		return -1;
	struct dirent *de;
	int sbin_done = 0;
	snprintf(p, sizeof p, "%s/sbin/setuser", r);
	im->has_setuser = access(p, X_OK) == 0;
	static const char *setprivs[] = {"/usr/bin/setpriv", "/bin/setpriv", NULL};
	for (int i = 0; setprivs[i] && !im->setpriv[0]; i++) {
		snprintf(p, sizeof p, "%s%s", r, setprivs[i]);
		if (access(p, X_OK) == 0)
			snprintf(im->setpriv, sizeof im->setpriv, "%s", setprivs[i]);
	}
	if (!im->setpriv[0])
		log_warn("the image has no setpriv: its tasks keep a whole bounding set (their permitted "
			 "capabilities are still Docker's, and no_new_privs keeps them there)",
			 "root", im->root);
	while ((de = readdir(d))) {
		const char *n = de->d_name;
		if (n[0] == '.')
			continue;
		char full[1400], dst[300];
		snprintf(full, sizeof full, "%s/%s", r, n);
		snprintf(dst, sizeof dst, "/%s", n);
		struct stat sb;
		if (lstat(full, &sb) < 0)
			continue;
		if (strcmp(n, "sbin") == 0 && !im->has_setuser) {
			/* /sbin receives setuser: a directory of its own whose entries point into the image */
			char real[1400];
			int is_link = S_ISLNK(sb.st_mode);
			if (is_link) {
				char target[512];
				ssize_t tl = readlink(full, target, sizeof target - 1);
				if (tl <= 0)
					continue;
				target[tl] = '\0';
				snprintf(real, sizeof real, "%s/%s", r, target[0] == '/' ? target + 1 : target);
			} else {
				snprintf(real, sizeof real, "%s", full);
			}
			args_add(a, "--dir");
			args_add(a, "/sbin");
			DIR *sd = opendir(real);
			char inner[1400];
			const char *rel = real + strlen(r);
			while (sd && (de = readdir(sd))) {
				if (de->d_name[0] == '.' || strcmp(de->d_name, "setuser") == 0)
					continue;
				char target[1700], link[600];
				snprintf(link, sizeof link, "/sbin/%s", de->d_name);
				if (is_link) {
					snprintf(target, sizeof target, "%s/%s", rel, de->d_name);
					args_add(a, "--symlink");
					args_add(a, target);
					args_add(a, link);
				} else {
					snprintf(inner, sizeof inner, "%s/%s", real, de->d_name);
					args_add(a, "--ro-bind");
					args_add(a, inner);
					args_add(a, link);
				}
			}
			if (sd)
				closedir(sd);
			args_add(a, "--ro-bind");
			args_add(a, setuser_path);
			args_add(a, "/sbin/setuser");
			sbin_done = 1;
			continue;
		}
		if (S_ISLNK(sb.st_mode)) {
			char target[512];
			ssize_t tl = readlink(full, target, sizeof target - 1);
			if (tl <= 0)
				continue;
			target[tl] = '\0';
			/* from the host only the merged-/usr links (bin -> usr/bin, lib64 -> usr/lib64) */
			if (is_host && strncmp(target, "usr/", 4) != 0 && strncmp(target, "/usr/", 5) != 0)
				continue;
			args_add(a, "--symlink");
			args_add(a, target);
			args_add(a, dst);
		} else if (S_ISDIR(sb.st_mode)) {
			if (!root_entry_allowed(is_host, n))
				continue;
			args_add(a, "--ro-bind");
			args_add(a, full);
			args_add(a, dst);
		} else if (S_ISREG(sb.st_mode) && !is_host) {
			args_add(a, "--ro-bind");
			args_add(a, full);
			args_add(a, dst);
		}
	}
	closedir(d);
	if (is_host) {
		char dir[1300];
		snprintf(dir, sizeof dir, "%s/images/host", state_dir);
		im->uid = im->gid = SANDBOX_USER_UID;
		im->own_user = 1;
		snprintf(im->passwd, sizeof im->passwd, "%s/etc/passwd", dir);
		snprintf(im->group, sizeof im->group, "%s/etc/group", dir);
		char etc[1320];
		snprintf(etc, sizeof etc, "%s/etc", dir);
		if (mkdir_p(dir, 0755) < 0 || host_etc(a, dir) < 0 || host_etc_files(etc, im->uid) < 0)
			return -1;
		for (int i = 0; i < nhost_dirs; i++) {
			args_add(a, "--ro-bind");
			args_add(a, host_dirs[i]);
			args_add(a, host_dirs[i]);
		}
		args_add(a, "--dir");
		args_add(a, "/var");
		args_add(a, "--symlink");
		args_add(a, "../tmp");
		args_add(a, "/var/tmp");
	}
	if (!sbin_done && !im->has_setuser) {
		args_add(a, "--dir");
		args_add(a, "/sbin");
		args_add(a, "--ro-bind");
		args_add(a, setuser_path);
		args_add(a, "/sbin/setuser");
	}
	/* the user account (the host's root has ours, written above) */
	if (!is_host && !passwd_user(r, &im->uid, &im->gid)) {
		char dir[1300], src[1300], line[128];
		unsigned h = 5381;
		for (const char *q = im->name; *q; q++)
			h = h * 33 + (unsigned char)*q;
		snprintf(dir, sizeof dir, "%s/images/%08x", state_dir, h);
		mkdir_p(dir, 0755);
		snprintf(im->passwd, sizeof im->passwd, "%s/passwd", dir);
		snprintf(im->group, sizeof im->group, "%s/group", dir);
		snprintf(src, sizeof src, "%s/etc/passwd", r);
		/* the first uid (and gid) from SANDBOX_USER_UID on that the image does not use */
		uid_t uid = SANDBOX_USER_UID;
		snprintf(src, sizeof src, "%s/etc/passwd", r);
		char *pw = read_file(src, 1 << 20, NULL);
		snprintf(src, sizeof src, "%s/etc/group", r);
		char *gr = read_file(src, 1 << 20, NULL);
		for (;; uid++) {
			char pat[32];
			snprintf(pat, sizeof pat, ":%u:", (unsigned)uid);
			if (!(pw && strstr(pw, pat)) && !(gr && strstr(gr, pat)))
				break;
		}
		free(pw);
		free(gr);
		snprintf(line, sizeof line, "user:x:%u:%u:user:/workspace:/bin/bash\n", (unsigned)uid, (unsigned)uid);
		im->uid = im->gid = uid;
		im->own_user = 1;
		if (write_with_line(src, im->passwd, line) == 0) {
			snprintf(p, sizeof p, "%s/etc/passwd", r);
			if (file_exists(p)) {
				args_add(a, "--ro-bind");
				args_add(a, im->passwd);
				args_add(a, "/etc/passwd");
			}
		}
		snprintf(src, sizeof src, "%s/etc/group", r);
		snprintf(line, sizeof line, "user:x:%u:\n", (unsigned)im->gid);
		if (write_with_line(src, im->group, line) == 0) {
			snprintf(p, sizeof p, "%s/etc/group", r);
			if (file_exists(p)) {
				args_add(a, "--ro-bind");
				args_add(a, im->group);
				args_add(a, "/etc/group");
			}
		}
	}
	return 0;
}

static int image_name_ok(const char *n)
{
	if (!*n || n[0] == '/' || strstr(n, ".."))
		return 0;
	for (const char *p = n; *p; p++)
		if (!(isalnum((unsigned char)*p) || strchr("._-/:@", *p)))
			return 0;
	return 1;
}

static struct image *image_get(const char *name)
{
	char root[1100] = "/";
	if (images_dir[0] && name && image_name_ok(name)) {
		char cand[1100];
		struct stat sb;
		snprintf(cand, sizeof cand, "%s/%s", images_dir, name);
		if (stat(cand, &sb) == 0 && S_ISDIR(sb.st_mode)) {
			snprintf(root, sizeof root, "%s", cand);
		} else {
			/* without the tag */
			char *colon = strrchr(cand, ':');
			if (colon && !strchr(colon, '/')) {
				*colon = '\0';
				if (stat(cand, &sb) == 0 && S_ISDIR(sb.st_mode))
					snprintf(root, sizeof root, "%s", cand);
			}
		}
	}
	for (int i = 0; i < nimages; i++)
		if (strcmp(images[i]->root, root) == 0)
			return images[i];
	struct image *im = calloc(1, sizeof *im);
	if (!im)
		return NULL;
	snprintf(im->name, sizeof im->name, "%s", strcmp(root, "/") == 0 ? "host" : name);
	snprintf(im->root, sizeof im->root, "%s", root);
	if (build_image(im) < 0) {
		buf_free(&im->args);
		free(im);
		return NULL;
	}
	log_info("sandbox root prepared", "image", name ? name : "", "root", root,
		 "setuser", im->has_setuser ? "image" : "nomad-local");
	if (nimages < MAX_IMAGES)
		images[nimages++] = im;
	else
		log_warn("image cache full; root not cached", "root", root);
	return im;
}

static const char setuser_script[] =
	"#!/bin/sh\n"
	"# /sbin/setuser USER COMMAND [ARGS...]: runs COMMAND as USER (provided by nomad-local, like\n"
	"# phusion/baseimage's setuser: sets HOME, USER and LOGNAME, drops to the user's uid and gid;\n"
	"# no_new_privs: nothing it runs can gain privileges through setuid or file capabilities).\n"
	"if [ $# -lt 2 ]; then echo \"Usage: setuser USERNAME COMMAND [args..]\" >&2; exit 1; fi\n"
	"u=\"$1\"; shift\n"
	"# the loop only finds the entry: COMMAND runs after it, with the caller's stdin and fds\n"
	"found=\n"
	"while IFS=: read -r name pw uid gid gecos home shell; do\n"
	"  if [ \"$name\" = \"$u\" ]; then found=1; break; fi\n"
	"done < /etc/passwd\n"
	"if [ -z \"$found\" ]; then echo \"setuser: user $u not found\" >&2; exit 1; fi\n"
	"export HOME=\"$home\" USER=\"$u\" LOGNAME=\"$u\"\n"
	"exec setpriv --reuid=\"$uid\" --regid=\"$gid\" --clear-groups --no-new-privs -- \"$@\"\n";

int sandbox_init(const struct sandbox_opts *o)
{
	snprintf(state_dir, sizeof state_dir, "%s", o->state_dir);
	snprintf(images_dir, sizeof images_dir, "%s", o->images_dir ? o->images_dir : "");
	for (int i = 0; i < o->nhost_dirs && i < SANDBOX_HOST_DIRS_MAX; i++)
		snprintf(host_dirs[nhost_dirs++], sizeof host_dirs[0], "%s", o->host_dirs[i]);
	disk_bytes = (o->disk_mb > 0 ? o->disk_mb : SANDBOX_DISK_MB_DEFAULT) * 1024 * 1024;
	if (confine_init() < 0)
		return -1;
	snprintf(setuser_path, sizeof setuser_path, "%s/setuser", state_dir);
	if (write_file_atomic(setuser_path, setuser_script, sizeof setuser_script - 1, 0755) < 0)
		return -1;
	chmod(setuser_path, 0755);
	own_pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
	cg_probe();
	log_info("sandbox support", "cgroups", cg_mode == CG_V2 ? "v2" : cg_mode == CG_V1 ? "v1" : "none (rlimits)",
		 "memory_cgroup", cg_base[0], "bwrap", BWRAP);
	if (access(BWRAP, X_OK) < 0) {
		log_error("bubblewrap not found; install the bubblewrap package", "path", BWRAP);
		return -1;
	}
	return 0;
}

/* ---- lifecycle ---- */

/* Our descriptors of an ended sandbox's namespaces may be the last references to its mount
 * namespace, and dropping those frees its tmpfs, in the process that drops them: half a second
 * of the agent's loop for a runner with 400 000 files. A child takes the references over and lets
 * go of them once the agent has closed its own (when the returned pipe end closes), so that the
 * freeing happens in the child. Returns that pipe end, or -1 (the agent drops them itself). */
static int hand_off_ns(struct sandbox *sb)
{
	int gate[2];
	if (sb->ns_fd[0] < 0 || pipe2(gate, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		char c;
		close(gate[1]);
		while (read(gate[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0); /* the last references go with this process */
	}
	close(gate[0]);
	if (pid < 0) {
		close(gate[1]);
		return -1;
	}
	return gate[1];
}

static void close_ns(struct sandbox *sb)
{
	int gate = sb->exited ? hand_off_ns(sb) : -1;
	for (int i = 0; i < 5; i++)
		if (sb->ns_fd[i] > 0) {
			close(sb->ns_fd[i]);
			sb->ns_fd[i] = -1;
		}
	if (sb->root_fd > 0)
		close(sb->root_fd);
	sb->root_fd = -1;
	if (gate >= 0)
		close(gate);
}

static int open_ns(struct sandbox *sb)
{
	static const char *names[5] = {"mnt", "pid", "uts", "ipc", "net"};
	char p[64];
	close_ns(sb);
	for (int i = 0; i < 5; i++) {
		snprintf(p, sizeof p, "/proc/%d/ns/%s", (int)sb->init_pid, names[i]);
		sb->ns_fd[i] = open(p, O_RDONLY | O_CLOEXEC);
		if (sb->ns_fd[i] < 0)
			return -1;
	}
	snprintf(p, sizeof p, "/proc/%d/root", (int)sb->init_pid);
	sb->root_fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return sb->root_fd < 0 ? -1 : 0;
}

static int init_has_child(pid_t init)
{
	char p[64], buf[64];
	snprintf(p, sizeof p, "/proc/%d/task/%d/children", (int)init, (int)init);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf);
	close(fd);
	return n > 0;
}

static void ready_now(struct sandbox *sb)
{
	sb->ready = 1;
	oom_watch_start(sb);
	if (sb->ops->ready)
		sb->ops->ready(sb, sb->arg);
}

/* slirp4netns wrote to its ready pipe (configured), or closed it (it died). */
static void on_net_ready(struct loop_watch *w, uint32_t events)
{
	struct sandbox *sb = w->arg;
	char c;
	(void)events;
	ssize_t n = read(w->fd, &c, 1);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	int fd = w->fd;
	loop_unwatch(w);
	close(fd);
	if (sb->ready || sb->exited)
		return;
	if (n != 1) {
		log_error("slirp4netns ended before the sandbox's network was up", "alloc_id", sb->alloc_id);
		sandbox_kill(sb);
		return;
	}
	ready_now(sb);
}

/* Outbound network for the sandbox: slirp4netns attaches a tap device to its network namespace
 * and relays its traffic through sockets of the host. --disable-host-loopback: the host's
 * 127.0.0.1 (Redis, the API, this agent) is not reachable through the gateway 10.0.2.2. It runs
 * in the sandbox's cgroup, so it is killed with it (cg_kill_all), also by -cleanup. */
static int net_start(struct sandbox *sb)
{
	int rp[2];
	if (pipe2(rp, O_CLOEXEC) < 0)
		return -1;
	char pid_s[16];
	snprintf(pid_s, sizeof pid_s, "%d", (int)sb->init_pid);
	pid_t pid = fork();
	if (pid < 0) {
		close(rp[0]);
		close(rp[1]);
		return -1;
	}
	if (pid == 0) {
		signals_reset_for_exec();
		setsid();
		if (sb->cg_mode != CG_NONE)
			cg_join(sb);
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		dup2(rp[1], 3);
		syscall(SYS_close_range, 4, ~0U, 0);
		char *argv[] = {"slirp4netns", "--configure", "--mtu=65520", "--disable-host-loopback",
				"--enable-sandbox", "--enable-seccomp", "--ready-fd=3", pid_s, "tap0", NULL};
		execv(SANDBOX_SLIRP, argv);
		dprintf(2, "exec %s: %s\n", SANDBOX_SLIRP, strerror(errno));
		_exit(127);
	}
	close(rp[1]);
	sb->slirp_pid = pid;
	fcntl(rp[0], F_SETFL, O_NONBLOCK);
	if (loop_watch(&sb->net_w, rp[0], EPOLLIN, on_net_ready, sb) < 0) {
		close(rp[0]);
		return -1;
	}
	return 0;
}

static void become_ready(struct sandbox *sb)
{
	if (sb->ready || sb->exited)
		return;
	if (open_ns(sb) < 0) {
		log_error("cannot open sandbox namespaces", "alloc_id", sb->alloc_id, "error", strerror(errno));
		sandbox_kill(sb);
		return;
	}
	sb->init_start = proc_start_time(sb->init_pid);
	if (rw_mount(sb) < 0) {
		log_error("cannot give the sandbox its writable space", "alloc_id", sb->alloc_id, "error",
			  strerror(errno));
		sandbox_kill(sb);
		return;
	}
	if (sb->user_net) {
		if (net_start(sb) < 0) {
			log_error("cannot start slirp4netns for the sandbox's network", "alloc_id", sb->alloc_id,
				  "error", strerror(errno));
			sandbox_kill(sb);
		}
		return; /* ready once it reports (on_net_ready) */
	}
	ready_now(sb);
}

static void on_ready_poll(struct loop_timer *t)
{
	struct sandbox *sb = t->arg;
	if (sb->ready || sb->exited)
		return;
	if (sb->init_pid > 0 && init_has_child(sb->init_pid)) {
		become_ready(sb);
		return;
	}
	if (loop_now_ms() - sb->start_ms > SANDBOX_READY_TIMEOUT_MS) {
		log_error("sandbox did not come up in time, killing it", "alloc_id", sb->alloc_id);
		sandbox_kill(sb);
		return;
	}
	loop_timer_start(t, READY_POLL_MS);
}

static void on_info(struct loop_watch *w, uint32_t events)
{
	struct sandbox *sb = w->arg;
	char tmp[1024];
	(void)events;
	for (;;) {
		ssize_t n = read(w->fd, tmp, sizeof tmp);
		if (n > 0) {
			buf_add(sb->info, tmp, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		/* EOF: bwrap closed the info fd */
		int fd = w->fd;
		loop_unwatch(w);
		close(fd);
		break;
	}
	if (sb->init_pid == 0 && sb->info->p) {
		char *cp = strstr(sb->info->p, "\"child-pid\"");
		if (cp && strchr(cp, '}')) {
			cp = strchr(cp, ':');
			sb->init_pid = cp ? (pid_t)atoi(cp + 1) : 0;
			if (sb->init_pid > 0) {
				if (init_has_child(sb->init_pid))
					become_ready(sb);
				else
					loop_timer_start(&sb->ready_timer, READY_POLL_MS);
			}
		}
	}
}

static int read_status_exit(const char *alloc_dir)
{
	char p[1100];
	snprintf(p, sizeof p, "%s/status.json", alloc_dir);
	char *s = read_file(p, 65536, NULL);
	int code = -1;
	if (s) {
		char *e = strstr(s, "\"exit-code\"");
		if (e && (e = strchr(e, ':')))
			code = atoi(e + 1);
		free(s);
	}
	return code;
}

static void finish(struct sandbox *sb, int code)
{
	if (sb->exited)
		return;
	sb->exited = 1;
	loop_timer_stop(&sb->ready_timer);
	long long ooms = sandbox_oom_count(sb);
	/* an OOM kill that took an exec'd process earlier does not make a later end an OOM */
	int oom = ooms > 0 && ooms > sb->oom_base && (code == 137 || code < 0);
	/* leftovers (an exec'd process that escaped the PID namespace cannot, but be thorough) */
	cg_kill_all(sb);
	if (sb->ops->exited)
		sb->ops->exited(sb, code, oom, sb->arg);
}

static void on_bwrap_exit(pid_t pid, int status, void *arg)
{
	struct sandbox *sb = arg;
	(void)pid;
	int code = read_status_exit(sb->alloc_dir);
	if (code < 0)
		code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	sb->bwrap_pid = 0;
	finish(sb, code);
}

static void on_pidfd(struct loop_watch *w, uint32_t events)
{
	struct sandbox *sb = w->arg;
	(void)events;
	int fd = w->fd;
	loop_unwatch(w);
	close(fd);
	sb->bwrap_pid = 0;
	finish(sb, read_status_exit(sb->alloc_dir));
}

static void on_oom_event(struct loop_watch *w, uint32_t events)
{
	struct sandbox *sb = w->arg;
	uint64_t v;
	(void)events;
	if (read(w->fd, &v, sizeof v) < 0 && errno == EAGAIN)
		return;
	if (sb->cg_mode == CG_V2) {
		/* memory.events changed: look whether oom_kill went up */
		char dummy[256];
		lseek(w->fd, 0, SEEK_SET);
		if (read(w->fd, dummy, sizeof dummy) < 0)
			return;
	}
	long long n = sandbox_oom_count(sb);
	if (n > sb->oom_base && n > sb->oom_seen && sb->ops->oom && !sb->exited)
		sb->ops->oom(sb, sb->arg);
	if (n > sb->oom_seen)
		sb->oom_seen = n;
}

static void oom_watch_start(struct sandbox *sb)
{
	char p[700];
	if (sb->oom_w.fd >= 0 && sb->oom_w.cb)
		return;
	if (sb->cg_mode == CG_V1 && sb->cg[0][0]) {
		snprintf(p, sizeof p, "%s/memory.oom_control", sb->cg[0]);
		int cfd = open(p, O_RDONLY | O_CLOEXEC);
		int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (cfd < 0 || efd < 0) {
			if (cfd >= 0)
				close(cfd);
			if (efd >= 0)
				close(efd);
			return;
		}
		char line[64];
		snprintf(line, sizeof line, "%d %d", efd, cfd);
		snprintf(p, sizeof p, "%s/cgroup.event_control", sb->cg[0]);
		if (write_str(p, line) < 0) {
			close(cfd);
			close(efd);
			return;
		}
		close(cfd); /* the kernel holds its own reference */
		loop_watch(&sb->oom_w, efd, EPOLLIN, on_oom_event, sb);
	} else if (sb->cg_mode == CG_V2 && sb->cg[0][0]) {
		snprintf(p, sizeof p, "%s/memory.events", sb->cg[0]);
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			loop_watch(&sb->oom_w, fd, EPOLLPRI, on_oom_event, sb);
	}
}

static void sb_reset(struct sandbox *sb)
{
	for (int i = 0; i < 5; i++)
		sb->ns_fd[i] = -1;
	sb->root_fd = -1;
	sb->info_w.fd = sb->oom_w.fd = sb->pidfd_w.fd = sb->net_w.fd = -1;
	sb->info_w.cb = sb->oom_w.cb = sb->pidfd_w.cb = sb->net_w.cb = NULL;
	loop_timer_init(&sb->ready_timer, on_ready_poll, sb);
}

/* Uids of the sandboxes whose account is ours: SANDBOX_UID_BASE + a slot, one per live sandbox,
 * so that what the kernel counts per uid (inotify instances and watches, pipe buffers, message
 * queues, processes) is not shared between runners. */
static unsigned char uid_taken[SANDBOX_UIDS];

static uid_t uid_take(void)
{
	for (int i = 0; i < SANDBOX_UIDS; i++)
		if (!uid_taken[i]) {
			uid_taken[i] = 1;
			return (uid_t)(SANDBOX_UID_BASE + i);
		}
	return (uid_t)-1;
}

static void uid_mark(uid_t uid, int taken)
{
	if (uid >= SANDBOX_UID_BASE && uid < SANDBOX_UID_BASE + SANDBOX_UIDS)
		uid_taken[uid - SANDBOX_UID_BASE] = (unsigned char)taken;
}

/* dir/passwd and dir/group: the image's (or our) accounts with "user" as uid and gid. */
static int own_account_files(const struct image *im, const char *dir, uid_t uid, char *passwd, char *group,
			     size_t cap)
{
	static const char *files[2][2] = {{"passwd", "user:x:%u:%u:user:/workspace:/bin/bash\n"},
					  {"group", "user:x:%u:\n"}};
	const char *bases[2] = {im->passwd, im->group};
	char *outs[2] = {passwd, group};
	for (int k = 0; k < 2; k++) {
		size_t len = 0;
		char *base = read_file(bases[k], 1 << 20, &len);
		struct buf b = {0};
		/* every line but the template's own "user" */
		for (char *line = base, *nl; line && *line; line = nl ? nl + 1 : NULL) {
			nl = strchr(line, '\n');
			size_t n = nl ? (size_t)(nl - line) : strlen(line);
			if (strncmp(line, "user:", 5) != 0) {
				buf_add(&b, line, n);
				buf_adds(&b, "\n");
			}
		}
		free(base);
		buf_printf(&b, files[k][1], (unsigned)uid, (unsigned)uid);
		snprintf(outs[k], cap, "%s/%s", dir, files[k][0]);
		int rc = b.p ? write_file_atomic(outs[k], b.p, b.len, 0644) : -1;
		buf_free(&b);
		if (rc < 0)
			return -1;
	}
	return 0;
}

int sandbox_start(struct sandbox *sb, const struct sandbox_cfg *cfg, const struct sandbox_ops *ops, void *arg,
		  char *err, size_t errcap)
{
	char p[1300], logs[1200], status[1200];
	memset(sb, 0, sizeof *sb);
	sb_reset(sb);
	sb->ops = ops;
	sb->arg = arg;
	sb->is_child = 1;
	snprintf(sb->alloc_id, sizeof sb->alloc_id, "%s", cfg->alloc_id);
	snprintf(sb->alloc_dir, sizeof sb->alloc_dir, "%s", cfg->alloc_dir);
	sb->user_net = cfg->user_net && !cfg->share_host_net;
	if (sb->user_net && access(SANDBOX_SLIRP, X_OK) < 0) {
		snprintf(err, errcap, "the allocation asks for a network, and %s is missing (install slirp4netns)",
			 SANDBOX_SLIRP);
		return -1;
	}
	struct image *im = image_get(cfg->image);
	if (!im) {
		snprintf(err, errcap, "failed to prepare the sandbox root for image %s", cfg->image ? cfg->image : "");
		return -1;
	}
	sb->user_uid = im->uid;
	sb->user_gid = im->gid;
	char own_passwd[1300] = "", own_group[1300] = "";
	if (im->own_user) {
		uid_t uid = uid_take();
		if (uid == (uid_t)-1) {
			snprintf(err, errcap, "no uid left for another sandbox (%d in use)", SANDBOX_UIDS);
			return -1;
		}
		sb->user_uid = uid;
		sb->user_gid = (gid_t)uid;
	}
	snprintf(logs, sizeof logs, "%s/logs", cfg->alloc_dir);
	snprintf(status, sizeof status, "%s/status.json", cfg->alloc_dir);
	if (mkdir_p(logs, 0755) < 0 ||
	    (im->own_user && own_account_files(im, cfg->alloc_dir, sb->user_uid, own_passwd, own_group,
					       sizeof own_passwd) < 0)) {
		snprintf(err, errcap, "failed to create the allocation directory: %s", strerror(errno));
		uid_mark(sb->user_uid, 0);
		return -1;
	}
	unlink(status);
	if (cg_create(sb, cfg) < 0) {
		log_warn("cgroup not created; using rlimits", "alloc_id", sb->alloc_id, "error", strerror(errno));
		sb->cg_mode = CG_NONE;
		sb->cg[0][0] = sb->cg[1][0] = sb->cg[2][0] = '\0';
	}

	/* bwrap arguments */
	struct buf args = {0};
	char hostname[16];
	int hl = 0;
	for (const char *q = cfg->alloc_id; *q && hl < 12; q++)
		if (*q != '-')
			hostname[hl++] = *q;
	hostname[hl] = '\0';
	args_add(&args, "--unshare-pid");
	args_add(&args, "--unshare-ipc");
	args_add(&args, "--unshare-uts");
	if (!cfg->share_host_net)
		args_add(&args, "--unshare-net");
	args_add(&args, "--hostname");
	args_add(&args, hostname);
	buf_add(&args, im->args.p, im->args.len);
	if (im->own_user) {
		args_add(&args, "--ro-bind");
		args_add(&args, own_passwd);
		args_add(&args, "/etc/passwd");
		args_add(&args, "--ro-bind");
		args_add(&args, own_group);
		args_add(&args, "/etc/group");
	}
	proc_args(&args);
	args_add(&args, "--dev");
	args_add(&args, "/dev");
	/* mount points of the writable space (mounted once the sandbox stands: rw_mount) */
	for (int i = 0; rw_dirs[i].name; i++) {
		args_add(&args, "--dir");
		args_add(&args, rw_dirs[i].path);
	}
	/* bwrap's /dev is a tmpfs of half the host's memory: read-only, like the root (its devices
	 * still work; /dev/shm and /dev/pts are mounts of their own) */
	args_add(&args, "--remount-ro");
	args_add(&args, "/dev");
	confine_bwrap_caps(args_add_cb, &args);
	args_add(&args, "--seccomp");
	args_add(&args, "6");
	snprintf(p, sizeof p, "%s/home", strcmp(im->root, "/") == 0 ? "" : im->root);
	if (!file_exists(p)) {
		args_add(&args, "--dir");
		args_add(&args, "/home");
	}
	args_add(&args, "--remount-ro");
	args_add(&args, "/");
	args_add(&args, "--chdir");
	args_add(&args, "/workspace");
	if (!args.p) {
		snprintf(err, errcap, "out of memory");
		return -1;
	}

	int argfd = memfd_create("bwrap-args", MFD_CLOEXEC);
	int info[2] = {-1, -1};
	int sfd = open(status, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (argfd < 0 || pipe2(info, O_CLOEXEC | O_NONBLOCK) < 0 || sfd < 0 ||
	    write(argfd, args.p, args.len) != (ssize_t)args.len || lseek(argfd, 0, SEEK_SET) < 0) {
		snprintf(err, errcap, "failed to prepare bwrap: %s", strerror(errno));
		buf_free(&args);
		if (argfd >= 0)
			close(argfd);
		if (info[0] >= 0) {
			close(info[0]);
			close(info[1]);
		}
		if (sfd >= 0)
			close(sfd);
		return -1;
	}
	buf_free(&args);
	int nargv = 0;
	while (cfg->argv[nargv])
		nargv++;
	char **argv = calloc((size_t)nargv + 12 + CONFINE_SETPRIV_ARGS, sizeof *argv);
	if (!argv) {
		close(argfd);
		close(info[0]);
		close(info[1]);
		close(sfd);
		snprintf(err, errcap, "out of memory");
		return -1;
	}
	int k = 0;
	argv[k++] = "bwrap";
	argv[k++] = "--args";
	argv[k++] = "5";
	argv[k++] = "--info-fd";
	argv[k++] = "3";
	argv[k++] = "--json-status-fd";
	argv[k++] = "4";
	argv[k++] = "--";
	if (im->setpriv[0]) {
		confine_setpriv_argv(im->setpriv, argv + k);
		k += CONFINE_SETPRIV_ARGS;
	}
	for (int i = 0; i < nargv; i++)
		argv[k++] = cfg->argv[i];
	argv[k] = NULL;
	char outlog[1300], errlog[1300];
	snprintf(outlog, sizeof outlog, "%s/%s.stdout.0", logs, cfg->task_name);
	snprintf(errlog, sizeof errlog, "%s/%s.stderr.0", logs, cfg->task_name);
	long long mem_limit = cfg->memory_mb;
	int secfd = confine_seccomp_fd(), logfd[2] = {-1, -1};
	pid_t pid = secfd < 0 || logmon_start(outlog, errlog, logfd) < 0 ? -1 : fork();
	if (pid < 0) {
		snprintf(err, errcap, "failed to start bwrap: %s", strerror(errno));
		free(argv);
		close(argfd);
		close(info[0]);
		close(info[1]);
		close(sfd);
		if (secfd >= 0)
			close(secfd);
		for (int i = 0; i < 2; i++)
			if (logfd[i] >= 0)
				close(logfd[i]);
		return -1;
	}
	if (pid == 0) {
		signals_reset_for_exec(); /* bwrap passes dispositions and mask on to the task */
		setsid();
		if (sb->cg_mode != CG_NONE)
			cg_join(sb);
		else if (mem_limit > 0) {
			struct rlimit rl = {(rlim_t)mem_limit * 1024 * 1024 * 2, (rlim_t)mem_limit * 1024 * 1024 * 2};
			setrlimit(RLIMIT_AS, &rl);
		}
		int in = open("/dev/null", O_RDONLY);
		/* move the fds bwrap needs to 1..6 without clobbering each other */
		int t_out = fcntl(logfd[0], F_DUPFD, 10), t_err = fcntl(logfd[1], F_DUPFD, 10),
		    t_info = fcntl(info[1], F_DUPFD, 10), t_status = fcntl(sfd, F_DUPFD, 10),
		    t_args = fcntl(argfd, F_DUPFD, 10), t_sec = fcntl(secfd, F_DUPFD, 10);
		if (in >= 0)
			dup2(in, 0);
		dup2(t_out, 1);
		dup2(t_err, 2);
		dup2(t_info, 3);
		dup2(t_status, 4);
		dup2(t_args, 5);
		dup2(t_sec, 6);
		syscall(SYS_close_range, 7, ~0U, 0);
		execve(BWRAP, argv, cfg->envp);
		dprintf(2, "exec %s: %s\n", BWRAP, strerror(errno));
		_exit(127);
	}
	free(argv);
	close(argfd);
	close(info[1]);
	close(sfd);
	close(secfd);
	close(logfd[0]);
	close(logfd[1]);
	sb->bwrap_pid = pid;
	sb->bwrap_start = proc_start_time(pid);
	sb->start_ms = loop_now_ms();
	sb->info = calloc(1, sizeof *sb->info);
	loop_child_watch(pid, on_bwrap_exit, sb);
	if (!sb->info || loop_watch(&sb->info_w, info[0], EPOLLIN, on_info, sb) < 0) {
		close(info[0]);
		snprintf(err, errcap, "failed to watch bwrap");
		sandbox_kill(sb);
		return 0; /* exited() reports it */
	}
	return 0;
}

void sandbox_kill(struct sandbox *sb)
{
	sb->killing = 1;
	if (sb->init_pid > 0 && (!sb->init_start || proc_start_time(sb->init_pid) == sb->init_start))
		kill(sb->init_pid, SIGKILL);
	if (sb->bwrap_pid > 0 && (!sb->bwrap_start || proc_start_time(sb->bwrap_pid) == sb->bwrap_start))
		kill(sb->bwrap_pid, SIGKILL);
	cg_kill_all(sb);
}

void sandbox_signal_task(struct sandbox *sb, int sig)
{
	char p[64], buf[256];
	if (sb->init_pid <= 0)
		return;
	snprintf(p, sizeof p, "/proc/%d/task/%d/children", (int)sb->init_pid, (int)sb->init_pid);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	pid_t child = (pid_t)atoi(buf);
	if (child > 0)
		kill(child, sig);
}

void sandbox_release(struct sandbox *sb)
{
	loop_timer_stop(&sb->ready_timer);
	int fds[4] = {sb->info_w.fd, sb->oom_w.fd, sb->pidfd_w.fd, sb->net_w.fd};
	loop_unwatch(&sb->info_w);
	loop_unwatch(&sb->oom_w);
	loop_unwatch(&sb->pidfd_w);
	loop_unwatch(&sb->net_w);
	for (int i = 0; i < 4; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (sb->bwrap_pid > 0 && sb->is_child)
		loop_child_forget(sb->bwrap_pid);
	close_ns(sb);
	if (sb->exited) {
		cg_remove(sb);
		uid_mark(sb->user_uid, 0);
	}
	if (sb->info) {
		buf_free(sb->info);
		free(sb->info);
		sb->info = NULL;
	}
}

/* ---- persistence and adoption ---- */

json_object *sandbox_to_json(const struct sandbox *sb)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "BwrapPid", json_object_new_int(sb->bwrap_pid));
	json_object_object_add(o, "BwrapStart", json_object_new_int64((int64_t)sb->bwrap_start));
	json_object_object_add(o, "InitPid", json_object_new_int(sb->init_pid));
	json_object_object_add(o, "InitStart", json_object_new_int64((int64_t)sb->init_start));
	json_object_object_add(o, "CgroupMode", json_object_new_int(sb->cg_mode));
	json_object *cg = json_object_new_array();
	for (int i = 0; i < 3; i++)
		json_object_array_add(cg, json_object_new_string(sb->cg[i]));
	json_object_object_add(o, "Cgroups", cg);
	json_object_object_add(o, "OOMBase", json_object_new_int64(sb->oom_base));
	json_object_object_add(o, "AllocDir", json_object_new_string(sb->alloc_dir));
	json_object_object_add(o, "UserUID", json_object_new_int((int)sb->user_uid));
	json_object_object_add(o, "UserGID", json_object_new_int((int)sb->user_gid));
	return o;
}

static long long jint(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) ? (long long)json_object_get_int64(v) : 0;
}

static void from_json(struct sandbox *sb, json_object *saved)
{
	json_object *v;
	sb->bwrap_pid = (pid_t)jint(saved, "BwrapPid");
	sb->bwrap_start = (unsigned long long)jint(saved, "BwrapStart");
	sb->init_pid = (pid_t)jint(saved, "InitPid");
	sb->init_start = (unsigned long long)jint(saved, "InitStart");
	sb->cg_mode = (enum sandbox_cgroup_mode)jint(saved, "CgroupMode");
	sb->oom_base = jint(saved, "OOMBase");
	sb->user_uid = (uid_t)jint(saved, "UserUID");
	sb->user_gid = (gid_t)jint(saved, "UserGID");
	if (json_object_object_get_ex(saved, "AllocDir", &v))
		snprintf(sb->alloc_dir, sizeof sb->alloc_dir, "%s", json_object_get_string(v));
	if (json_object_object_get_ex(saved, "Cgroups", &v))
		for (int i = 0; i < 3 && i < (int)json_object_array_length(v); i++)
			snprintf(sb->cg[i], sizeof sb->cg[i], "%s",
				 json_object_get_string(json_object_array_get_idx(v, i)));
}

int sandbox_adopt(struct sandbox *sb, json_object *saved, const struct sandbox_ops *ops, void *arg,
		  int *exit_code, int *oom)
{
	char keep_id[40];
	snprintf(keep_id, sizeof keep_id, "%s", sb->alloc_id);
	memset(sb, 0, sizeof *sb);
	sb_reset(sb);
	snprintf(sb->alloc_id, sizeof sb->alloc_id, "%s", keep_id);
	sb->ops = ops;
	sb->arg = arg;
	from_json(sb, saved);
	uid_mark(sb->user_uid, 1);
	*exit_code = -1;
	*oom = 0;
	int alive = sb->bwrap_pid > 0 && sb->init_pid > 0 && proc_start_time(sb->bwrap_pid) == sb->bwrap_start &&
		    proc_start_time(sb->init_pid) == sb->init_start;
	if (alive) {
		int pfd = (int)syscall(SYS_pidfd_open, sb->bwrap_pid, 0);
		if (pfd >= 0 && open_ns(sb) == 0) {
			sb->ready = 1;
			loop_watch(&sb->pidfd_w, pfd, EPOLLIN, on_pidfd, sb);
			oom_watch_start(sb);
			return 1;
		}
		if (pfd >= 0)
			close(pfd);
		alive = 0;
		sandbox_kill(sb);
	}
	/* gone while we were away */
	*exit_code = read_status_exit(sb->alloc_dir);
	long long n = sandbox_oom_count(sb);
	*oom = n > 0 && n > sb->oom_base;
	sb->exited = 1;
	cg_kill_all(sb);
	cg_remove(sb);
	return 0;
}

void sandbox_kill_saved(json_object *saved)
{
	struct sandbox sb;
	memset(&sb, 0, sizeof sb);
	sb_reset(&sb);
	from_json(&sb, saved);
	sandbox_kill(&sb);
	for (int i = 0; i < 50; i++) {
		if (!(sb.init_pid > 0 && proc_start_time(sb.init_pid) == sb.init_start) &&
		    !(sb.bwrap_pid > 0 && proc_start_time(sb.bwrap_pid) == sb.bwrap_start))
			break;
		usleep(10000);
	}
	/* the rest of the cgroup (an exec'd process, slirp4netns) goes down asynchronously too */
	char procs[600];
	snprintf(procs, sizeof procs, "%s/cgroup.procs", sb.cg[0]);
	for (int i = 0; i < 100 && sb.cg[0][0]; i++) {
		char *left = read_file(procs, 4096, NULL);
		int empty = !left || !*left;
		free(left);
		if (empty)
			break;
		cg_kill_all(&sb);
		usleep(10000);
	}
	sb.exited = 1;
	cg_remove(&sb);
}

/* ---- entering ---- */

int sandbox_pidns_enter(struct sandbox *sb)
{
	if (sb->ns_fd[1] < 0)
		return -1;
	return setns(sb->ns_fd[1], CLONE_NEWPID);
}

void sandbox_pidns_leave(void)
{
	if (own_pidns >= 0 && setns(own_pidns, CLONE_NEWPID) < 0)
		log_error("cannot return to the agent's PID namespace", "error", strerror(errno));
}

int sandbox_enter(struct sandbox *sb)
{
	static const int types[5] = {CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWNET};
	if (sb->cg_mode != CG_NONE)
		cg_join(sb);
	/* uts, ipc, net first, the mount namespace last (it changes what paths mean) */
	for (int i = 2; i < 5; i++)
		if (setns(sb->ns_fd[i], types[i]) < 0)
			return -1;
	if (setns(sb->ns_fd[0], CLONE_NEWNS) < 0)
		return -1;
	if (fchdir(sb->root_fd) < 0 || chroot(".") < 0)
		return -1;
	if (chdir("/workspace") < 0 && chdir("/") < 0)
		return -1;
	return 0;
}
