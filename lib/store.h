/* store: all state of the service, in Redis, behind functions.
 *
 * Only this module knows key names (docs/architecture.md, under a configurable prefix):
 *   env:<id> hash, envs set, pool:<env> list of ready runner ids, starting:<env> set,
 *   used:<env> set, runner:<id> hash, deadlines sorted set (ms since epoch), exec:<id> string,
 *   metrics hash (its fields are named by lib/metrics).
 * Invariant: a runner id is in exactly one of pool:<env>, starting:<env>, used:<env>, and has a
 * runner:<id> hash while it is in any of them. Claim, destroy and lookups are Lua scripts, so
 * each is one atomic round trip: a process that dies before or after one can neither lose nor
 * double-hand a runner. Scripts run by EVALSHA and fall back to EVAL on NOSCRIPT. Time comes
 * from Redis (TIME), so every process on every machine agrees on deadlines.
 *
 * A struct store is one connection, used by one thread. It reconnects by itself; a command
 * that may have reached Redis before the connection broke is never retried (a claim must not
 * run twice), read-only commands are retried once.
 */
#ifndef POSEIDON_STORE_H
#define POSEIDON_STORE_H

#define STORE_TOMBSTONE_MS 600000 /* a deleted environment is not recovered from Nomad for 10 min */

#include <stddef.h>

#include "config.h"
#include "err.h"
#include "model.h"

struct store;

/* Creates a handle for c's redis.* settings. Does not connect yet (never fails but for memory).
 * Free with store_close. */
struct store *store_open(const struct config *c);
void store_close(struct store *s);
/* PING; 0 when Redis answered. */
int store_ping(struct store *s, struct perr *e);

/* ---- environments --------------------------------------------------------------------- */

/* Creates or replaces env:<id> and adds it to envs. *created is 1 when it did not exist. A
 * replace increments the generation, so runners of the old definition can be told apart. */
int store_env_put(struct store *s, const struct environment *env, int *created, long long *generation,
		  struct perr *e);
/* The same, but leaves an existing environment untouched (*created 0): recovery from Nomad. */
int store_env_put_if_absent(struct store *s, const struct environment *env, int *created, long long *generation,
			    struct perr *e);
/* The same, but only while the environment's generation is still expected (0: it does not
 * exist): a writer that read Nomad before a concurrent PUT must not undo it. *created is -1 when
 * the generation had changed and nothing was written. */
int store_env_put_if_generation(struct store *s, const struct environment *env, long long expected, int *created,
				long long *generation, struct perr *e);
/* 1 and *out filled when it exists, 0 when not, -1 on error. */
int store_env_get(struct store *s, long long id, struct environment *out, long long *generation,
		  struct perr *e);
/* All environments (sorted by id); *out is malloc'd, caller frees. */
int store_env_list(struct store *s, struct environment **out, size_t *n, struct perr *e);
/* The same, with each environment's generation in (*generations)[i] (malloc'd, caller frees),
 * read together with its definition. */
int store_env_list_generations(struct store *s, struct environment **out, long long **generations, size_t *n,
			       struct perr *e);
/* Removes env:<id> and its id from envs and leaves a tombstone (STORE_TOMBSTONE_MS) so that the
 * refill daemon does not recover it from Nomad meanwhile; 1 if it existed. Runners: see
 * store_env_destroy_runners. */
int store_env_delete(struct store *s, long long id, struct perr *e);
/* The same, but only while the environment's generation is expected; 0 when it was not deleted
 * (gone, or changed meanwhile). */
int store_env_delete_if_generation(struct store *s, long long id, long long expected, struct perr *e);
/* 1 when the environment was deleted recently (its tombstone is alive). */
int store_env_tombstoned(struct store *s, long long id, struct perr *e);
/* Removes every runner of env (idle, starting, used) from Redis; their ids in *ids (malloc'd,
 * free with store_free_ids). */
int store_env_destroy_runners(struct store *s, long long env, char ***ids, size_t *n, struct perr *e);

/* Per-environment pool size, idle and used counts, in one atomic read. *out malloc'd. */
int store_statistics(struct store *s, struct env_stats **out, size_t *n, struct perr *e);

/* ---- runners -------------------------------------------------------------------------- */

struct runner {
	char id[MODEL_RUNNER_ID_MAX];
	long long env;
	long long generation;
	char alloc_id[64];
	char node[128];
	char state[16];                /* "starting", "idle", "used" */
	long long inactivity_timeout;  /* seconds, as claimed */
	long long deadline_ms;         /* 0 = none */
	long long created_ms;          /* when the refill daemon registered its job (Redis time) */
	long long oom_ms;              /* when its allocation was last OOM-killed, 0 = never */
	int nports;
	struct mapped_port ports[MODEL_MAX_PORTS];
};

/* Claims the first ready runner of env: LPOP + SADD used + state + deadline in one script.
 * inactivity_timeout seconds: 0 = no deadline, negative = already expired.
 * Errors: PERR_NOT_FOUND (no such environment), PERR_NOMAD_OVERLOAD (pool empty). */
int store_claim(struct store *s, long long env, long long inactivity_timeout, struct runner *out,
		struct perr *e);
/* Removes the runner from every structure. With only_used, a runner that is not claimed counts
 * as unknown (the API may destroy only what it handed out). 1 and *out (may be NULL) filled
 * when it existed, 0 when it was already gone. */
int store_destroy(struct store *s, const char *runner_id, int only_used, struct runner *out,
		  struct perr *e);
/* A claimed runner whose deadline has not passed: 1 and *out, else 0 (gone). With touch set
 * the inactivity deadline is pushed to now + its timeout (an activity). */
int store_runner_lookup(struct store *s, const char *runner_id, int touch, struct runner *out,
			struct perr *e);

/* Any runner, whatever its state: 1 and *out, 0 when unknown. */
int store_runner_get(struct store *s, const char *runner_id, struct runner *out, struct perr *e);
/* Redis's clock in ms since the epoch (the clock deadlines and createdAt use). */
int store_time_ms(struct store *s, long long *now, struct perr *e);

/* Refill side. A new runner job is about to be registered: runner:<id> state starting, in
 * starting:<env>. 1, or 0 when the environment is gone or has another generation meanwhile
 * (then nothing is written and no job must be registered). */
int store_runner_add_starting(struct store *s, long long env, long long generation,
			      const char *runner_id, struct perr *e);
/* Its allocation runs: moves it from starting:<env> to the tail of pool:<env> with its
 * allocation, node and mapped ports. 0 when the runner is unknown (was destroyed meanwhile). */
int store_runner_ready(struct store *s, const char *runner_id, const char *alloc_id, const char *node,
		       const struct mapped_port *ports, int nports, struct perr *e);
/* Runner ids whose deadline is at or before now (Redis time), at most max; malloc'd array
 * of malloc'd strings. */
int store_expired_runners(struct store *s, size_t max, char ***ids, size_t *n, struct perr *e);
void store_free_ids(char **ids, size_t n);

/* Every runner of env (pool, starting, used), with its hash; *out malloc'd. */
int store_env_runners(struct store *s, long long env, struct runner **out, size_t *n, struct perr *e);
/* Puts a runner that exists in Nomad but not in Redis back: state "idle" (pool), "used" (deadline
 * now + timeout when timeout != 0) or "starting". 1 adopted, 0 it already existed. */
int store_runner_adopt(struct store *s, long long env, long long generation, const char *runner_id,
		       const char *state, const char *alloc_id, const char *node, const struct mapped_port *ports,
		       int nports, long long timeout, struct perr *e);
/* Sets fields of an existing runner hash ("allocId", "node", "oomAt", ...): pairs, NULL-ended.
 * 1 set, 0 the runner is gone. */
int store_runner_set(struct store *s, const char *runner_id, struct perr *e, ...) __attribute__((sentinel));
/* Pops up to max runner ids that were claimed since the last call (for Nomad's Meta used). */
int store_pop_claimed(struct store *s, size_t max, char ***ids, size_t *n, struct perr *e);

/* ---- executions (prepared by POST /execute, taken by poseidon-wsgate) ---------------------- */

#define STORE_EXEC_TTL_S 900 /* an execution not connected within 15 min is forgotten */

/* Stores the prepared execution (an opaque string, lib/model's JSON) under exec:<id>. */
int store_exec_put(struct store *s, const char *exec_id, const char *value, struct perr *e);
/* 1 and *value (malloc'd, caller frees) when it exists. get leaves it; take removes it atomically,
 * so only one connection can ever start it. 0 when unknown or already taken. */
int store_exec_get(struct store *s, const char *exec_id, char **value, struct perr *e);
int store_exec_take(struct store *s, const char *exec_id, char **value, struct perr *e);

/* ---- coordination --------------------------------------------------------------------- */

/* Wakes the refill daemon (an environment changed; a claim does it by itself). */
int store_wake(struct store *s, struct perr *e);
/* Waits up to timeout_ms for a wake-up: 1 woken, 0 timed out, -1 error. */
int store_wait_wake(struct store *s, int timeout_ms, struct perr *e);

/* Takes or keeps the named lease for owner for ttl_ms. 1 when owner holds it, 0 when another
 * does. */
int store_lease(struct store *s, const char *name, const char *owner, int ttl_ms, struct perr *e);
void store_lease_release(struct store *s, const char *name, const char *owner);
/* A short status string with a TTL (e.g. "nomad" -> "unreachable: ..."); "" clears it. */
int store_status_set(struct store *s, const char *name, const char *value, int ttl_ms, struct perr *e);
/* 1 and value when set, 0 when not. */
int store_status_get(struct store *s, const char *name, char *value, size_t cap, struct perr *e);

/* ---- metrics (lib/metrics names the fields; this is the one hash that holds them) ---------- */

/* Adds values[i] to field fields[i] of the metrics hash, for i < n, atomically and in one round
 * trip (MULTI, HINCRBY/HINCRBYFLOAT..., EXEC pipelined): a reader never sees half of it. A value
 * with '.', 'e' or 'E' is added as a float (HINCRBYFLOAT), any other as an integer. Never retried:
 * on -1 the increments may or may not have been applied (the reply was lost). */
int store_metrics_incr(struct store *s, const char *const *fields, const char *const *values, size_t n,
		       struct perr *e);
/* Every field of the metrics hash: *fields and *values are malloc'd arrays of n malloc'd strings,
 * free both with store_metrics_free. */
int store_metrics_read(struct store *s, char ***fields, char ***values, size_t *n, struct perr *e);
void store_metrics_free(char **fields, char **values, size_t n);

/* ---- operator requests (poseidon-admin; see docs/operations.md) ---------------------------- */

/* Sets env:<id>'s prewarmingPoolSize without touching its generation, so no runner is replaced:
 * the refill daemon fills up to, or trims down to, the new size (drain = size 0). Returns the old
 * size, or -1 with e set; PERR_NOT_FOUND when the environment does not exist. Wakes the refill
 * daemon. The template job's Meta is the caller's business (lib/store knows no Nomad). */
long long store_env_set_pool_size(struct store *s, long long id, unsigned long long size, struct perr *e);
/* store_destroy, but only while the runner is in state ("idle", "starting" or "used"): an idle
 * runner that a claim took meanwhile is left to its user. 1 destroyed, 0 gone or in another state. */
int store_destroy_in_state(struct store *s, const char *runner_id, const char *state, struct runner *out,
			   struct perr *e);
/* The owner of the named lease (store_lease): 1 and owner, 0 when nobody holds it. */
int store_lease_holder(struct store *s, const char *name, char *owner, size_t cap, struct perr *e);
/* Asks the refill leader for a reconcile now: leaves token in the key reconcile (ttl_ms) and wakes
 * the daemon. The leader takes it (store_reconcile_take), reconciles and answers with
 * store_reconcile_done, which the asker reads with store_reconcile_result. */
int store_reconcile_request(struct store *s, const char *token, int ttl_ms, struct perr *e);
/* Takes a pending request (GETDEL): 1 and its token, 0 when none. */
int store_reconcile_take(struct store *s, char *token, size_t cap, struct perr *e);
/* Publishes the outcome for token in status:reconcile ("<token> ok" or "<token> failed: <error>"),
 * for ttl_ms. */
int store_reconcile_done(struct store *s, const char *token, const char *error, int ttl_ms, struct perr *e);
/* 1 and the outcome (after "<token> ") when the answer to token is there, 0 when not (yet). */
int store_reconcile_result(struct store *s, const char *token, char *out, size_t cap, struct perr *e);

#endif
