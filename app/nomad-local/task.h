/* task: the client half of nomad-local: runs an allocation's task in a sandbox and reports its
 * life the way Nomad's client does (TaskState events Received, Task Setup, Started,
 * Terminated, Restarting, Not Restarting, Killing, Killed; client status pending, running,
 * complete, failed).
 *
 * Restarts follow the group's restart policy (attempts within interval, delay, mode fail or
 * delay); a memory kill in the sandbox's cgroup is an OOM kill: the whole sandbox is stopped,
 * the Terminated event carries oom_killed "true" and exit code 137, and the policy decides the
 * restart. Allocations survive an agent restart: task_restore() re-adopts running sandboxes and
 * reports the ones that died meanwhile as failed.
 */
#ifndef NL_TASK_H
#define NL_TASK_H

#include "sandbox.h"
#include "state.h"

/* A new allocation was placed: prepare and start its sandbox. */
void task_place(struct nl_alloc *a);
/* The placing evaluation completed: report the allocation received (pending) and, once the
 * sandbox is up, running. */
void task_received(struct nl_alloc *a);
/* The server wants the allocation stopped (desired stop): kill it and report complete. */
void task_stop(struct nl_alloc *a);
/* The sandbox of a running allocation, or NULL. */
struct sandbox *task_sandbox(struct nl_alloc *a);
/* How many times the task ended OOM-killed (an exec session compares it across its life). */
unsigned task_oom_ends(struct nl_alloc *a);
/* Environment of the task (NULL-terminated, owned by the allocation's runtime). */
char **task_env(struct nl_alloc *a);
/* After a restart of the agent. */
void task_restore(struct nl_alloc *a);
/* Frees the runtime of an allocation about to be removed from the state. */
void task_forget(struct nl_alloc *a);
/* Shutdown: release watches without killing sandboxes (they outlive the agent). */
void task_detach_all(void);

#endif
