/* events: see events.h. Filtering copies Nomad's subscription filter exactly, quirks included:
 * topic "*" with key "*" matches everything; otherwise an event matches each listed key that
 * equals its Key or one of its FilterKeys (a key listed twice delivers the event twice), and a
 * lone "*" key is the only wildcard. */
#include "events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "loop.h"
#include "render.h"
#include "util.h"

struct ev_item {
	char topic[32];
	char key[256];
	char ns[128];
	char filter_job[256];
	int has_filter;
	char *json;
};

struct ev_batch {
	uint64_t index;
	struct ev_item *items;
	int n, cap;
};

struct ev_sub {
	struct http_conn *c;
	char ns[128];
	struct ev_topic topics[EVENTS_MAX_TOPICS];
	int ntopics;
	struct loop_timer hb;
	struct ev_sub *next;
};

static struct ev_batch *ring[EVENTS_BUFFER];
static int ring_head, ring_len; /* oldest at ring_head */
static struct ev_sub *subs;
static int nsubs;

static void batch_free(struct ev_batch *b)
{
	if (!b)
		return;
	for (int i = 0; i < b->n; i++)
		free(b->items[i].json);
	free(b->items);
	free(b);
}

struct ev_batch *events_begin(uint64_t index)
{
	struct ev_batch *b = calloc(1, sizeof *b);
	if (b)
		b->index = index;
	return b;
}

void events_add(struct ev_batch *b, const char *topic, const char *type, const char *key, const char *ns,
		const char *filter_job, const char *payload_key, json_object *payload)
{
	if (!b) {
		json_object_put(payload);
		return;
	}
	if (b->n == b->cap) {
		int cap = b->cap ? b->cap * 2 : 4;
		struct ev_item *n = realloc(b->items, (size_t)cap * sizeof *n);
		if (!n) {
			json_object_put(payload);
			return;
		}
		b->items = n;
		b->cap = cap;
	}
	struct ev_item *it = &b->items[b->n];
	memset(it, 0, sizeof *it);
	snprintf(it->topic, sizeof it->topic, "%s", topic);
	snprintf(it->key, sizeof it->key, "%s", key);
	snprintf(it->ns, sizeof it->ns, "%s", ns ? ns : "");
	if (filter_job) {
		it->has_filter = 1;
		snprintf(it->filter_job, sizeof it->filter_job, "%s", filter_job);
	}
	json_object *e = json_object_new_object(), *p = json_object_new_object();
	json_object_object_add(e, "Topic", json_object_new_string(topic));
	json_object_object_add(e, "Type", json_object_new_string(type));
	json_object_object_add(e, "Key", json_object_new_string(key));
	json_object_object_add(e, "Namespace", json_object_new_string(ns ? ns : ""));
	if (filter_job) {
		json_object *fk = json_object_new_array();
		json_object_array_add(fk, json_object_new_string(filter_job));
		json_object_array_add(fk, json_object_new_string("")); /* DeploymentID */
		json_object_object_add(e, "FilterKeys", fk);
	} else {
		json_object_object_add(e, "FilterKeys", NULL);
	}
	json_object_object_add(e, "Index", json_object_new_int64((int64_t)b->index));
	json_object_object_add(p, payload_key, payload);
	json_object_object_add(e, "Payload", p);
	it->json = strdup(render_string(e));
	json_object_put(e);
	if (it->json)
		b->n++;
}

static int key_matches(const struct ev_item *it, const char *key)
{
	if (strcmp(it->key, key) == 0)
		return 1;
	if (it->has_filter && (strcmp(it->filter_job, key) == 0 || strcmp("", key) == 0))
		return 1;
	return 0;
}

/* How many times the subscription delivers this event (Nomad's filter may repeat one). */
static int matches(const struct ev_sub *s, const struct ev_item *it)
{
	if (it->ns[0] && strcmp(s->ns, "*") != 0 && strcmp(s->ns, it->ns) != 0)
		return 0;
	const char *keys[EVENTS_MAX_TOPICS * 2];
	int nk = 0;
	for (int i = 0; i < s->ntopics; i++)
		if (strcmp(s->topics[i].topic, "*") == 0)
			keys[nk++] = s->topics[i].key;
	if (nk == 1 && strcmp(keys[0], "*") == 0)
		return 1;
	for (int i = 0; i < s->ntopics; i++)
		if (strcmp(s->topics[i].topic, it->topic) == 0)
			keys[nk++] = s->topics[i].key;
	if (nk == 1 && strcmp(keys[0], "*") == 0)
		return 1;
	int count = 0;
	for (int i = 0; i < nk; i++)
		count += key_matches(it, keys[i]);
	return count;
}

static void sub_send_batch(struct ev_sub *s, const struct ev_batch *b)
{
	struct buf line = {0};
	int first = 1;
	for (int i = 0; i < b->n; i++) {
		int times = matches(s, &b->items[i]);
		for (int k = 0; k < times; k++) {
			if (first)
				buf_printf(&line, "{\"Index\":%llu,\"Events\":[", (unsigned long long)b->index);
			else
				buf_adds(&line, ",");
			buf_adds(&line, b->items[i].json);
			first = 0;
		}
	}
	if (!first) {
		buf_adds(&line, "]}\n");
		if (line.p)
			http_stream_write(s->c, line.p, line.len);
	}
	buf_free(&line);
}

static void sub_check_backlog(struct ev_sub *s)
{
	if (s->c && http_out_pending(s->c) > EVENTS_MAX_BACKLOG) {
		log_warn("event stream subscriber too slow, closing", "peer", http_peer(s->c));
		http_close(s->c);
	}
}

void events_commit(struct ev_batch *b)
{
	if (!b)
		return;
	if (b->n == 0) {
		batch_free(b);
		return;
	}
	if (ring_len == EVENTS_BUFFER) {
		batch_free(ring[ring_head]);
		ring[ring_head] = b;
		ring_head = (ring_head + 1) % EVENTS_BUFFER;
	} else {
		ring[(ring_head + ring_len) % EVENTS_BUFFER] = b;
		ring_len++;
	}
	for (struct ev_sub *s = subs, *next; s; s = next) {
		next = s->next;
		if (!s->c)
			continue;
		sub_send_batch(s, b);
		if (s->c)
			sub_check_backlog(s);
	}
}

static void sub_free(void *p)
{
	free(p);
}

static void on_sub_close(struct http_conn *c, void *arg)
{
	(void)c;
	struct ev_sub *s = arg, **pp;
	loop_timer_stop(&s->hb);
	s->c = NULL;
	for (pp = &subs; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	nsubs--;
	loop_defer_free(sub_free, s);
}

static void on_heartbeat(struct loop_timer *t)
{
	struct ev_sub *s = t->arg;
	if (!s->c)
		return;
	http_stream_write(s->c, "{}\n", 3);
	if (s->c) {
		sub_check_backlog(s);
		loop_timer_start(&s->hb, EVENTS_HEARTBEAT_MS);
	}
}

int events_subscribe(struct http_conn *c, const char *ns, const struct ev_topic *topics, int ntopics,
		     uint64_t index)
{
	struct ev_sub *s = calloc(1, sizeof *s);
	if (!s)
		return -1;
	s->c = c;
	snprintf(s->ns, sizeof s->ns, "%s", ns);
	if (ntopics == 0) {
		snprintf(s->topics[0].topic, sizeof s->topics[0].topic, "*");
		snprintf(s->topics[0].key, sizeof s->topics[0].key, "*");
		s->ntopics = 1;
	} else {
		for (int i = 0; i < ntopics && i < EVENTS_MAX_TOPICS; i++)
			s->topics[s->ntopics++] = topics[i];
	}
	loop_timer_init(&s->hb, on_heartbeat, s);
	s->next = subs;
	subs = s;
	nsubs++;
	http_on_close(c, on_sub_close, s);
	if (http_stream_begin(c, 200, "application/json", "Cache-Control: no-cache\r\n") < 0)
		return -1;
	http_stream_write(c, "{}\n", 3);
	/* replay: from the oldest batch (index 0) or the first batch at or after index; when every
	 * batch is older, Nomad's buffer starts at the newest one */
	int start = 0;
	if (index != 0 && ring_len > 0) {
		start = ring_len - 1;
		for (int i = 0; i < ring_len; i++)
			if (ring[(ring_head + i) % EVENTS_BUFFER]->index >= index) {
				start = i;
				break;
			}
	}
	for (int i = start; i < ring_len && s->c; i++)
		sub_send_batch(s, ring[(ring_head + i) % EVENTS_BUFFER]);
	if (s->c)
		loop_timer_start(&s->hb, EVENTS_HEARTBEAT_MS);
	return 0;
}

int events_subscribers(void) { return nsubs; }

void events_shutdown(void)
{
	for (int i = 0; i < ring_len; i++)
		batch_free(ring[(ring_head + i) % EVENTS_BUFFER]);
	ring_len = 0;
}
