/* confine: what a process in a runner may do, the same for a task's own process (bwrap applies it)
 * and for an exec session (the agent's child applies it after entering the sandbox).
 *
 * - Capabilities: at most Docker's default set (CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL,
 *   SETGID, SETUID, SETPCAP, NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP) in
 *   the bounding, permitted and effective sets, none inheritable or ambient. A process that
 *   drops to an unprivileged uid (setuser) loses the permitted and effective ones; the sandbox's
 *   mounts are nosuid, so no setuid or file-capability binary gives them back.
 * - A seccomp filter with the effect of Docker's default profile, as a deny list: the calls that
 *   change the kernel, mounts, namespaces, keyrings, modules, BPF, perf, userfaultfd, handles and
 *   the clock fail with EPERM; clone with namespace flags fails with EPERM and clone3 with ENOSYS
 *   (so that the C library falls back to clone, whose flags the filter can see).
 * libcap-ng and libseccomp do the work; nothing here is hand-written BPF or capset.
 */
#ifndef NL_CONFINE_H
#define NL_CONFINE_H

#include <stddef.h>

/* Once at start-up: builds the filter. 0, or -1 with errno. */
int confine_init(void);

/* bwrap's arguments for a task (each NUL-terminated, appended to out by add(ud, arg)):
 * --cap-drop ALL and --cap-add for each of Docker's capabilities. */
void confine_bwrap_caps(void (*add)(void *ud, const char *arg), void *ud);

/* The command that runs before a task's own to bound it (bwrap, as real root without a user
 * namespace, leaves the bounding set whole and puts the capabilities into the ambient set):
 * setpriv with the bounding set reduced to Docker's and the inheritable and ambient sets
 * emptied. Fills argv (at least CONFINE_SETPRIV_ARGS slots, pointers to static storage). */
#define CONFINE_SETPRIV_ARGS 8
void confine_setpriv_argv(const char *setpriv, char **argv);

/* A fresh descriptor (offset 0) of the compiled filter for bwrap's --seccomp; the caller closes
 * it. -1 on failure. */
int confine_seccomp_fd(void);

/* In an exec child, after it entered the sandbox and before exec: applies the filter, then
 * reduces the capabilities to Docker's set. 0, or -1 (the child must not run the command). */
int confine_self(void);

#endif
