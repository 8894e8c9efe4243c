/* sandbox: one bubblewrap sandbox per allocation, its cgroup and the way back into it.
 *
 * Layout: a read-only root built on a tmpfs from an image directory (<images>/<name>), or else
 * from the host's /usr (with its merged-/usr links), an allow list of /etc entries without
 * secrets and our own passwd, group, hosts and resolv.conf (plus directories named with
 * -host-dir); /sbin/setuser and a "user" account added when the image lacks them; fresh /proc
 * (its kernel knobs read-only, its leaky files masked, as runc does) and /dev; own PID, IPC and
 * UTS namespaces and, unless the group shares the host network, an own network namespace: with
 * only loopback, or (user_net) with outbound network through slirp4netns, which runs in the
 * sandbox's cgroup (so it ends with it) and cannot reach the host's loopback; DNS goes to its
 * forwarder at 10.0.2.3.
 * Writable space: one tmpfs per sandbox, made inside its mount namespace once bwrap has built
 * it, bounded to the agent's -disk-mb; /workspace (the working directory), /tmp, /alloc,
 * /local and /secrets are directories of it. Nothing a runner writes reaches the host's disk,
 * and it all goes away with the sandbox (a restarted task gets a fresh one, as a recreated
 * container does). Its pages count against the memory cgroup of the writer.
 * Confinement (confine.h): Docker's default capabilities and a seccomp filter like Docker's,
 * for the task (by bwrap) and for every exec session.
 * Limits go into a cgroup per allocation (v1 memory/pids/cpu, or v2) when the machine allows
 * it, else into rlimits. bwrap runs in its own session so that sandboxes outlive an agent
 * restart; the agent re-adopts them by pid and process start time. Processes started later
 * (exec) enter through sandbox_enter(): cgroup first, then the namespaces, root and working
 * directory of the sandbox's init process.
 */
#ifndef NL_SANDBOX_H
#define NL_SANDBOX_H

#include <json-c/json.h>
#include <stdint.h>
#include <sys/types.h>

#include "loop.h"
#include "util.h"

#define SANDBOX_PIDS_MAX 1024
#define SANDBOX_READY_TIMEOUT_MS 10000
#define SANDBOX_USER_UID 1000
#define SANDBOX_UID_BASE 100000 /* the user's uid in sandboxes whose account is ours: base + slot */
#define SANDBOX_UIDS 4096
#define SANDBOX_HOST_DIRS_MAX 16
#define SANDBOX_DISK_MB_DEFAULT 1024
#define SANDBOX_SLIRP "/usr/bin/slirp4netns"
#define SANDBOX_LOG_MAX (10LL * 1024 * 1024) /* bytes of a task's stdout (and of its stderr) kept */

enum sandbox_cgroup_mode { CG_NONE, CG_V1, CG_V2 };

struct sandbox;

struct sandbox_ops {
	void (*ready)(struct sandbox *sb, void *arg);
	/* exit_code: as bwrap reports it (128+signal when killed); oom: the cgroup saw an OOM kill */
	void (*exited)(struct sandbox *sb, int exit_code, int oom, void *arg);
	/* an OOM kill happened inside the sandbox (the sandbox may still run) */
	void (*oom)(struct sandbox *sb, void *arg);
};

struct sandbox_cfg {
	const char *alloc_id;
	const char *alloc_dir;  /* holds workspace/, tmp/, logs/, status.json */
	const char *image;      /* Config.image or NULL */
	char **argv;            /* command and args, NULL-terminated */
	char **envp;            /* environment, NULL-terminated */
	int share_host_net;     /* network mode "host" */
	int user_net;           /* outbound network through a user-mode stack (slirp4netns) */
	long long memory_mb;    /* 0: unlimited */
	long long cpu_mhz;      /* cpu shares */
	long long pids_max;
	const char *task_name;
};

struct sandbox {
	char alloc_id[40];
	char alloc_dir[1024];
	pid_t bwrap_pid;
	unsigned long long bwrap_start;
	pid_t init_pid;
	unsigned long long init_start;
	int is_child;           /* bwrap is our child (else adopted: watched by pidfd) */
	int ready, exited, killing;
	int user_net;           /* slirp4netns serves its network namespace */
	pid_t slirp_pid;
	struct loop_watch net_w; /* slirp4netns's ready pipe until it reports */
	int64_t start_ms;
	enum sandbox_cgroup_mode cg_mode;
	char cg[3][512];        /* v1: memory, pids, cpu; v2: cg[0] */
	long long oom_base;
	long long oom_seen;      /* the oom_kill count last reported */
	int ns_fd[5];           /* mnt, pid, uts, ipc, net of the init process */
	int root_fd;
	struct loop_watch info_w, oom_w, pidfd_w;
	struct loop_timer ready_timer;
	struct buf *info;
	uid_t user_uid;
	gid_t user_gid;
	const struct sandbox_ops *ops;
	void *arg;
};

struct sandbox_opts {
	const char *state_dir;
	const char *images_dir;      /* NULL: the host's root (see above) */
	const char *const *host_dirs; /* more of the host, read-only, on the host's root */
	int nhost_dirs;
	long long disk_mb;           /* the writable space of one sandbox; 0: the default */
};
/* Once at start-up: where state lives, the roots, the bound; builds the seccomp filter and
 * probes cgroups. 0 or -1. */
int sandbox_init(const struct sandbox_opts *o);
enum sandbox_cgroup_mode sandbox_cgroup_mode(void);

/* Starts a sandbox. 0, or -1 with a message in err (the "Driver Failure" text). */
int sandbox_start(struct sandbox *sb, const struct sandbox_cfg *cfg, const struct sandbox_ops *ops, void *arg,
		  char *err, size_t errcap);
/* SIGKILLs everything in the sandbox; exited() follows. */
void sandbox_kill(struct sandbox *sb);
/* Sends sig to the task's main process (not to the sandbox's init). */
void sandbox_signal_task(struct sandbox *sb, int sig);
/* Releases fds, watches and the cgroup (call after exited, or to forget an adopted one). */
void sandbox_release(struct sandbox *sb);
/* Periodic housekeeping (the scheduler's GC tick): removes cgroups that were still busy when
 * their sandbox ended. */
void sandbox_gc(void);
/* Current OOM kill count of the sandbox's cgroup (-1 unknown). */
long long sandbox_oom_count(struct sandbox *sb);

/* Persistence for restarts. */
json_object *sandbox_to_json(const struct sandbox *sb);
/* Re-attaches to a sandbox recorded before a restart. Returns 1 when it still runs (ready() is
 * not called again), 0 when it is gone (*exit_code from its status file, -1 unknown). */
int sandbox_adopt(struct sandbox *sb, json_object *saved, const struct sandbox_ops *ops, void *arg,
		  int *exit_code, int *oom);
/* Kills a recorded sandbox without adopting it (cleanup mode). */
void sandbox_kill_saved(json_object *saved);

/* In a freshly forked child: join the cgroup, enter the namespaces (except PID, which the
 * parent arranges with sandbox_pidns_enter) and the root, chdir to /workspace. 0 or -1. */
int sandbox_enter(struct sandbox *sb);
/* In the agent, around fork(): makes the next child land in the sandbox's PID namespace, then
 * restores. */
int sandbox_pidns_enter(struct sandbox *sb);
void sandbox_pidns_leave(void);

#endif
