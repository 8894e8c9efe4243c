/* events: the event broker behind GET /v1/event/stream.
 *
 * A change is published as one batch per raft index (events_begin .. events_commit), like a
 * state-store transaction; every event is rendered to JSON once, when it is added. The broker
 * keeps the last EVENTS_BUFFER batches for replay (index=0 starts at the oldest one, index=N at
 * the first batch with Index >= N, as Nomad's buffer does) and writes each batch, filtered by
 * namespace, topic and key with Nomad's matching rules, to every subscriber as one NDJSON
 * line. Subscribers get "{}" at once and every EVENTS_HEARTBEAT_MS. A subscriber that does not
 * read (more than EVENTS_MAX_BACKLOG queued) is disconnected, as Nomad closes slow streams.
 */
#ifndef NL_EVENTS_H
#define NL_EVENTS_H

#include <json-c/json.h>
#include <stdint.h>

#include "httpd.h"

#define EVENTS_BUFFER 100
#define EVENTS_HEARTBEAT_MS 30000
#define EVENTS_MAX_BACKLOG (32 * 1024 * 1024)
#define EVENTS_MAX_TOPICS 32

struct ev_batch;

struct ev_batch *events_begin(uint64_t index);
/* Adds an event. filter_job: the FilterKeys' job ID (Evaluation/Allocation topics), NULL for
 * FilterKeys null (Job topic). payload_key: "Job", "Evaluation" or "Allocation"; payload is put. */
void events_add(struct ev_batch *b, const char *topic, const char *type, const char *key, const char *ns,
		const char *filter_job, const char *payload_key, json_object *payload);
/* Appends the batch to the buffer and sends it; frees b. A batch with no events is dropped. */
void events_commit(struct ev_batch *b);

struct ev_topic {
	char topic[64];
	char key[256];
};

/* Turns the connection into a stream for the given namespace ("*" = all) and topics
 * (ntopics == 0: everything). Writes the 200 header, the first heartbeat and the replay. */
int events_subscribe(struct http_conn *c, const char *ns, const struct ev_topic *topics, int ntopics,
		     uint64_t index);
/* Number of live subscribers (tests, logs). */
int events_subscribers(void);
void events_shutdown(void);

#endif
