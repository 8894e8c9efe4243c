/* portfwd: host loopback ports forwarded into an allocation's network namespace.
 *
 * For every dynamic port of a group network, nomad-local listens on 127.0.0.1:<Value> (a free
 * port from Nomad's dynamic range 20000-32000, reported in AllocatedResources) and relays each
 * connection to 127.0.0.1:<To> inside the sandbox: the inner socket is created after a
 * temporary setns() into the sandbox's network namespace, so the sandbox keeps its own
 * loopback-only network. Buffers are bounded (PORTFWD_BUF per direction).
 */
#ifndef NL_PORTFWD_H
#define NL_PORTFWD_H

#include "sandbox.h"
#include "state.h"

#define PORTFWD_BUF (256 * 1024)
#define PORTFWD_MIN 20000
#define PORTFWD_MAX 32000

/* Picks a free host port in the dynamic range (not yet used by any allocation). */
int portfwd_pick(void);
/* Starts listeners for a's ports into sb's network namespace (host network: nothing to do). */
void portfwd_start(struct nl_alloc *a, struct sandbox *sb);
void portfwd_stop(struct nl_alloc *a);

#endif
