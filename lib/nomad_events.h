/* nomad_events: a consumer of Nomad's event stream (GET /v1/event/stream, docs/nomad-api.md 4.10).
 *
 * nomad_events_follow() subscribes, parses the NDJSON body incrementally with json-c's tokener
 * (lines may arrive split anywhere, chunked or close-delimited), skips heartbeats ({}), and calls
 * the callback once per event in order. It returns when the stream ends: Nomad closed it, a line
 * was not JSON, nothing (not even a heartbeat) arrived for stall_ms, or should_stop() said so.
 * Reconnecting, with backoff and from the last index seen, is the caller's loop (poseidon-refill).
 *
 * A stall is the time since the last byte, not a transfer rate: on a quiet stream the heartbeat
 * is the only traffic, 3 bytes every 30 s, which any rate over a window of seconds rounds to 0.
 */
#ifndef POSEIDON_NOMAD_EVENTS_H
#define POSEIDON_NOMAD_EVENTS_H

#include <json-c/json.h>

#include "err.h"
#include "nomad.h"

/* Nomad writes a heartbeat ({} and a newline) every 30 s on a quiet stream (nomad/event_endpoint.go,
 * NewJsonStream(ctx, 30*time.Second)); nomad-local does the same (EVENTS_HEARTBEAT_MS). */
#define NOMAD_EVENTS_HEARTBEAT_MS 30000
/* The default stall time: two heartbeats and a half, so that one late or lost heartbeat is no
 * stall, while a dead connection is found within 75 s. */
#define NOMAD_EVENTS_STALL_MS (NOMAD_EVENTS_HEARTBEAT_MS * 5 / 2)

struct nomad_event {
	const char *topic;    /* "Allocation", "Evaluation", "Job", ... */
	const char *type;     /* "AllocationUpdated", "JobDeregistered", ... */
	const char *key;      /* alloc, eval or job id */
	long long index;      /* raft index of the batch */
	json_object *payload; /* the Allocation / Evaluation / Job object; borrowed for the call */
};

/* Returns nonzero to end the stream (the event is still counted as seen). */
typedef int (*nomad_event_fn)(void *ud, const struct nomad_event *ev);

struct nomad_stream_opts {
	const char *const *topics;  /* e.g. {"Job:*", "Allocation:*", "Evaluation:*", NULL} */
	long long index;            /* the last raft index handled: the stream starts after it (0: at the
	                               server's oldest batch) */
	int stall_ms;               /* end the stream after this long without a byte; 0 = NOMAD_EVENTS_STALL_MS */
	int (*should_stop)(void *ud); /* polled about every 100 ms; may be NULL */
	void (*on_connected)(void *ud); /* after the 200 and the first heartbeat; may be NULL */
};

/* Follows the stream until it ends. *last_index is updated as batches arrive. Returns 0 when
 * stopped by the callback or should_stop, -1 with e describing why the stream ended otherwise. */
int nomad_events_follow(const struct nomad_endpoint *ep, const struct nomad_stream_opts *o, nomad_event_fn fn,
			void *ud, long long *last_index, struct perr *e);

/* Feeds raw stream bytes to a parser (exposed for tests): calls fn per event. Returns the
 * number of events, or -1 on malformed input. */
struct nomad_event_parser;
struct nomad_event_parser *nomad_event_parser_new(nomad_event_fn fn, void *ud);
int nomad_event_parser_feed(struct nomad_event_parser *p, const char *data, size_t len, long long *last_index,
			    int *stop, struct perr *e);
/* Batches with an index up to this one were handled before (by an earlier stream): skip them. */
void nomad_event_parser_seen_before(struct nomad_event_parser *p, long long index);
/* Number of heartbeats ({} lines) seen so far. */
int nomad_event_parser_heartbeats(const struct nomad_event_parser *p);
void nomad_event_parser_free(struct nomad_event_parser *p);

#endif
