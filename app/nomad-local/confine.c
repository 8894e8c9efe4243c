/* confine: see confine.h.
 *
 * The filter is built and compiled once with libseccomp: the agent exports the program for bwrap
 * (a memfd reopened per sandbox, so each bwrap reads it from the start) and keeps a copy that an
 * exec child installs as it is (compiling it again in every child cost milliseconds per exec). Calls that an architecture lacks are skipped. Besides the native architecture the
 * filter covers the 32-bit x86 and x32 entry points of an x86-64 kernel, so that `int 0x80` is no
 * way around it. The agent never loads the filter itself: a refused call fails in the runner with
 * EPERM and leaves the agent alone.
 */
#include "confine.h"

#include <cap-ng.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "log.h"

/* Docker's default capabilities (moby oci/caps/defaults.go). */
static const struct {
	int cap;
	const char *name;
} docker_caps[] = {
    {CAP_CHOWN, "CAP_CHOWN"},
    {CAP_DAC_OVERRIDE, "CAP_DAC_OVERRIDE"},
    {CAP_FOWNER, "CAP_FOWNER"},
    {CAP_FSETID, "CAP_FSETID"},
    {CAP_KILL, "CAP_KILL"},
    {CAP_SETGID, "CAP_SETGID"},
    {CAP_SETUID, "CAP_SETUID"},
    {CAP_SETPCAP, "CAP_SETPCAP"},
    {CAP_NET_BIND_SERVICE, "CAP_NET_BIND_SERVICE"},
    {CAP_NET_RAW, "CAP_NET_RAW"},
    {CAP_SYS_CHROOT, "CAP_SYS_CHROOT"},
    {CAP_MKNOD, "CAP_MKNOD"},
    {CAP_AUDIT_WRITE, "CAP_AUDIT_WRITE"},
    {CAP_SETFCAP, "CAP_SETFCAP"},
};
#define NCAPS (sizeof docker_caps / sizeof docker_caps[0])

/* Refused with EPERM: what Docker's default profile leaves out of its allow list and a runner
 * could use against the host or its neighbours. */
static const char *const denied[] = {
    /* mounts and the root */
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    /* namespaces (clone is handled by its flags below) */
    "unshare",
    "setns",
    /* the kernel itself */
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "syslog",
    "uselib",
    "nfsservctl",
    "lookup_dcookie",
    "quotactl",
    "quotactl_fd",
    "ioperm",
    "iopl",
    "vm86",
    "vm86old",
    "_sysctl",
    "vhangup",
    /* keyrings (shared by uid across runners) */
    "keyctl",
    "add_key",
    "request_key",
    /* large attack surfaces */
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    /* file handles bypass the mount namespace */
    "open_by_handle_at",
    /* the clock is the host's */
    "settimeofday",
    "stime",
    "clock_settime",
    "clock_settime64",
    "clock_adjtime",
    "clock_adjtime64",
    "adjtimex",
};

static scmp_filter_ctx filter;
static int bpf_memfd = -1;
static struct sock_fprog bpf; /* the compiled program, for exec children */

static int add_rules(scmp_filter_ctx f)
{
	for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++) {
		int nr = seccomp_syscall_resolve_name(denied[i]);
		if (nr == __NR_SCMP_ERROR)
			continue; /* not a call of this architecture */
		int rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(EPERM), nr, 0);
		if (rc < 0 && rc != -EDOM) /* -EDOM: a pseudo call of another architecture only */
			return rc;
	}
	/* clone with any namespace flag: one rule per flag (rules of one call and action are ORed) */
	static const unsigned long ns_flags[] = {CLONE_NEWNS,     CLONE_NEWUTS, CLONE_NEWIPC,
	                                         CLONE_NEWUSER,   CLONE_NEWPID, CLONE_NEWNET,
	                                         CLONE_NEWCGROUP, 0x80 /* CLONE_NEWTIME */};
	for (size_t i = 0; i < sizeof ns_flags / sizeof ns_flags[0]; i++) {
		int rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
		                          SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
		if (rc < 0)
			return rc;
	}
	/* clone3 passes its flags in memory, where a filter cannot look: ENOSYS makes the C library
	 * fall back to clone */
	int nr = seccomp_syscall_resolve_name("clone3");
	if (nr != __NR_SCMP_ERROR) {
		int rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(ENOSYS), nr, 0);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int confine_init(void)
{
	filter = seccomp_init(SCMP_ACT_ALLOW);
	if (!filter)
		return errno = ENOMEM, -1;
	/* no_new_privs stays the caller's choice: the exec child loads the filter while it still holds
	 * CAP_SYS_ADMIN, and a privileged command may still run a setuid program as Docker allows */
	seccomp_attr_set(filter, SCMP_FLTATR_CTL_NNP, 0);
	if (seccomp_arch_native() == SCMP_ARCH_X86_64) {
		seccomp_arch_add(filter, SCMP_ARCH_X86);
		seccomp_arch_add(filter, SCMP_ARCH_X32);
	}
	int rc = add_rules(filter);
	if (rc < 0) {
		log_error("seccomp filter not built", "error", strerror(-rc));
		return errno = -rc, -1;
	}
	bpf_memfd = memfd_create("nomad-local-seccomp", MFD_CLOEXEC);
	if (bpf_memfd < 0 || (rc = seccomp_export_bpf(filter, bpf_memfd)) < 0) {
		log_error("seccomp filter not exported", "error", strerror(rc < 0 ? -rc : errno));
		return -1;
	}
	off_t len = lseek(bpf_memfd, 0, SEEK_END);
	bpf.filter = len > 0 ? malloc((size_t)len) : NULL;
	if (!bpf.filter || pread(bpf_memfd, bpf.filter, (size_t)len, 0) != len) {
		log_error("seccomp filter not read back");
		return -1;
	}
	bpf.len = (unsigned short)(len / (off_t)sizeof bpf.filter[0]);
	return 0;
}

void confine_setpriv_argv(const char *setpriv, char **argv)
{
	static char bounding[512];
	if (!bounding[0]) {
		size_t n = (size_t)snprintf(bounding, sizeof bounding, "-all");
		for (size_t i = 0; i < NCAPS && n < sizeof bounding; i++)
			n += (size_t)snprintf(bounding + n, sizeof bounding - n, ",+%s",
			                      capng_capability_to_name((unsigned)docker_caps[i].cap));
	}
	static const char *rest[] = {"--inh-caps", "-all", "--ambient-caps", "-all", "--"};
	int k = 0;
	argv[k++] = (char *)setpriv;
	argv[k++] = "--bounding-set";
	argv[k++] = bounding;
	for (size_t i = 0; i < sizeof rest / sizeof rest[0]; i++)
		argv[k++] = (char *)rest[i];
}

void confine_bwrap_caps(void (*add)(void *ud, const char *arg), void *ud)
{
	add(ud, "--cap-drop");
	add(ud, "ALL");
	for (size_t i = 0; i < NCAPS; i++) {
		add(ud, "--cap-add");
		add(ud, docker_caps[i].name);
	}
}

int confine_seccomp_fd(void)
{
	char p[64];
	if (bpf_memfd < 0)
		return -1;
	snprintf(p, sizeof p, "/proc/self/fd/%d", bpf_memfd);
	return open(p, O_RDONLY | O_CLOEXEC); /* a new open file: its own offset */
}

int confine_self(void)
{
	/* the child still holds CAP_SYS_ADMIN, so no no_new_privs is needed (as with libseccomp's
	 * SCMP_FLTATR_CTL_NNP off above) */
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &bpf) < 0)
		return -1;
	capng_clear(CAPNG_SELECT_ALL);
	for (size_t i = 0; i < NCAPS; i++)
		capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET,
		             docker_caps[i].cap);
	return capng_apply(CAPNG_SELECT_ALL) < 0 ? -1 : 0;
}
