/* metrics: the service's figures, counted in every process and added up in Redis.
 *
 * This module owns the metric names, their labels and histogram buckets, the per-process batch
 * of increments, and the two renderings: Prometheus text (exposition format 0.0.4, GET /metrics)
 * and InfluxDB line protocol (the optional push). lib/store owns the one Redis key, the hash
 * `metrics`; the fields in it are named here:
 *   counter     <family>{<labels>}       an integer, added with HINCRBY
 *   histogram   <family>{<labels>}#<i>   observations that fell into bucket i (NOT cumulative;
 *                                        i == number of bounds is the +Inf bucket)
 *               <family>{<labels>}#sum   a float, added with HINCRBYFLOAT
 * so an observation touches exactly two fields, _count is derived as the sum of the buckets and
 * the cumulative _bucket series are computed when rendering: they are consistent by construction.
 * A batch is written as one MULTI/EXEC, so no reader sees a bucket without its sum.
 *
 * Recording (metrics_request, metrics_claim, ...) is thread-safe and does no I/O: it adds to a
 * process-wide table under a mutex. metrics_flush sends that table in one round trip;
 * metrics_flusher_start runs it every metrics.flushms in a thread with its own Redis connection,
 * so no request ever waits for metrics. What a process recorded reaches /metrics within
 * metrics.flushms; a process killed with SIGKILL loses at most that much. When Redis is away the
 * batch is kept (up to METRICS_PENDING_MAX distinct fields) and sent later.
 * Gauges (runners per environment and state, pool sizes) are not stored: a scrape reads them live
 * from the pools (store_statistics).
 * Label values are bounded sets (route patterns, known methods, status codes, environment ids,
 * fixed outcome and kind names), never raw client input.
 */
#ifndef POSEIDON_METRICS_H
#define POSEIDON_METRICS_H

#include <stddef.h>

#include "config.h"
#include "err.h"
#include "model.h"
#include "store.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_PENDING_MAX  8192 /* distinct fields a process keeps while Redis is unreachable */

/* ---- recording: any thread, no I/O --------------------------------------------------------- */

/* One REST request: method (anything not a standard verb counts as "other"), route pattern as
 * in the route table (NULL: "unmatched", a path no route knows), status sent, seconds taken. */
void metrics_request(const char *method, const char *route, int status, double seconds);
/* A claim of environment env: claimed 1 handed out a runner, 0 found its pool empty. */
void metrics_claim(long long env, int claimed);
/* A runner of env became ready this many seconds after its job was registered. */
void metrics_runner_startup(long long env, double seconds);
/* File bytes moved by the file routes: upload 1 (copied into a runner), 0 (downloaded). */
void metrics_file_bytes(int upload, unsigned long long bytes);
/* A failed Nomad call, by kind (PERR_NOMAD_UNREACHABLE, _OVERLOAD, _INTERNAL; others: "other"). */
void metrics_nomad_error(enum perr_kind kind);
/* Nomad's event stream ended and is being reconnected. */
void metrics_event_stream_reconnect(void);
/* Nomad could not place a job of environment env (an evaluation with FailedTGAllocs). */
void metrics_placement_failure(long long env);
/* A Redis command failed (lib/store). */
void metrics_redis_error(void);
/* poseidon-refill: the leader ran a refill pass; n runners went through event (created, ready,
 * destroyed, reaped, purged, adopted, orphan_purged, register_failed; others are ignored); a
 * reconcile pass ended, ok or not. */
void metrics_refill_pass(void);
void metrics_refill_runners(const char *event, long long n);
void metrics_reconcile(int ok);

/* For poseidon-wsgate: one execution ended. outcome is "exit" (the program exited, whatever its
 * code), "timeout" (timeLimit hit), "error" (the terminal error message), or "client_close" (the
 * client went away first); anything else is counted as "other". Call it once per execution.
 * With a store, the figure is added to Redis at once (one HINCRBY round trip on that connection,
 * from the thread that owns it); with s NULL, or when Redis fails, it joins this process's batch
 * (sent by metrics_flush or the flusher thread, if the process runs one). Returns 0, or -1 when
 * Redis failed (the figure is then queued, never lost by the caller). */
int metrics_execution_outcome(struct store *s, const char *outcome);

/* ---- sending ------------------------------------------------------------------------------- */

/* Sends this process's batch to Redis in one round trip; on failure keeps it for the next try. */
int metrics_flush(struct store *s, struct perr *e);
/* Starts the flusher thread (own Redis connection, every c->metrics.flushms; all signals blocked
 * in it). When influx_leader is given and c->influxdb.url is set, the thread also pushes the
 * figures to InfluxDB every c->influxdb.interval seconds while influx_leader() returns nonzero.
 * 0, or -1 when the thread could not start. */
int metrics_flusher_start(const struct config *c, int (*influx_leader)(void));
/* Stops the thread after a last flush. Safe to call when it never started. */
void metrics_flusher_stop(void);

/* Takes this process's batch out as field/value strings (as store_metrics_incr wants them);
 * free with store_metrics_free. For metrics_flush and for tests. */
void metrics_take_pending(char ***fields, char ***values, size_t *n);

/* ---- reading and rendering ----------------------------------------------------------------- */

/* Prometheus text for the metrics hash's fields (as store_metrics_read returns them) and the
 * pools (store_statistics). Fields this version does not know are skipped. malloc'd, caller
 * frees; NULL when out of memory. */
char *metrics_render_prometheus(char *const *fields, char *const *values, size_t n,
                                const struct env_stats *st, size_t nst);
/* The same figures as InfluxDB line protocol, one point per series, all at ts_ns (ns since the
 * epoch), with the tag stage=<stage> when stage is not empty. malloc'd, caller frees. */
char *metrics_render_influx(char *const *fields, char *const *values, size_t n, const struct env_stats *st,
                            size_t nst, const char *stage, long long ts_ns);

/* Reads Redis (two round trips) and renders GET /metrics. malloc'd, caller frees; NULL with e. */
char *metrics_prometheus(struct store *s, struct perr *e);
/* Reads Redis and POSTs the line protocol to c->influxdb (InfluxDB 2: /api/v2/write with
 * organization and bucket; else InfluxDB 1: /write?db=database), 5 s timeout. 0 on a 2xx. */
int metrics_influx_push(struct store *s, const struct config *c, struct perr *e);

#endif
