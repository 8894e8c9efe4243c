/* pool: keeping every environment's pool of ready runners at its size, whatever Nomad does.
 * This is poseidon-refill's logic; the program (app/refill) only adds leadership, threads and
 * signals around it.
 *
 * Invariants it maintains (with lib/store's scripts):
 * - a runner id is in exactly one of pool/starting/used of its environment, and a runner job
 *   exists in Nomad for every id in Redis (within one reconcile interval);
 * - only a runner whose allocation is running is in pool:<env>; an allocation that restarts,
 *   fails or is lost takes its runner out (an OOM-restarted used runner stays with its user and is
 *   never handed to anyone else);
 * - runners of an older generation than their environment are destroyed;
 * - idle + starting reaches prewarmingPoolSize (registrations run concurrently, bounded).
 * A struct pool holds one Redis and one Nomad connection: one per thread.
 */
#ifndef POSEIDON_POOL_H
#define POSEIDON_POOL_H

#include "config.h"
#include "err.h"
#include "nomad_events.h"

struct pool;

/* Loads the job template (server.templatejobfile) and opens connections lazily. NULL with e set
 * when the template is unusable. */
struct pool *pool_new(const struct config *c, struct perr *e);
void pool_free(struct pool *p);

/* One refill pass: old generations swept, pools topped up (or trimmed), expired runners reaped,
 * claimed runners marked used in Nomad. Returns 0, or -1 when Redis or Nomad failed (e). */
int pool_tick(struct pool *p, struct perr *e);

/* Compares Redis with a full Nomad listing and repairs both sides: orphan jobs purged, vanished
 * runners dropped, starting runners whose allocation runs made ready, stuck ones replaced,
 * environments recovered from their template jobs (and their runners adopted) when Redis lost
 * them, missing template jobs registered again. */
int pool_reconcile(struct pool *p, struct perr *e);

/* Applies one event of Nomad's stream (docs/nomad-api.md 5). Never fails; problems are logged. */
int pool_on_event(void *pool, const struct nomad_event *ev);

/* Counters for logs and tests. */
struct pool_counters {
	long long created, ready, destroyed, reaped, purged, adopted, orphans, register_failures;
	long long unplaced; /* evaluations of our jobs Nomad could not place */
};
void pool_get_counters(const struct pool *p, struct pool_counters *out);

#endif
