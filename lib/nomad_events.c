/* nomad_events: see nomad_events.h. The parser owns one json_tokener; every complete top-level
 * value is one line of the stream: {} (heartbeat) or {"Index":N,"Events":[...]}. A value that
 * spans chunks stays in the tokener until its end arrives. */
#include "nomad_events.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"

#define MAX_LINE_DEPTH 64

struct nomad_event_parser {
	json_tokener *tok;
	nomad_event_fn fn;
	void *ud;
	int heartbeats;
	int connected;
	long long seen_before; /* batches up to this index were handled before */
};

struct nomad_event_parser *nomad_event_parser_new(nomad_event_fn fn, void *ud)
{
	struct nomad_event_parser *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->tok = json_tokener_new_ex(MAX_LINE_DEPTH);
	if (!p->tok) {
		free(p);
		return NULL;
	}
	p->fn = fn;
	p->ud = ud;
	return p;
}

void nomad_event_parser_free(struct nomad_event_parser *p)
{
	if (!p)
		return;
	json_tokener_free(p->tok);
	free(p);
}

int nomad_event_parser_heartbeats(const struct nomad_event_parser *p) { return p->heartbeats; }

void nomad_event_parser_seen_before(struct nomad_event_parser *p, long long index) { p->seen_before = index; }

static const char *str_field(json_object *o, const char *k)
{
	json_object *v;
	if (json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return "";
}

/* Dispatches one stream line. Returns events delivered. */
static int dispatch(struct nomad_event_parser *p, json_object *line, long long *last_index, int *stop)
{
	json_object *events, *idx;
	if (!json_object_is_type(line, json_type_object))
		return 0;
	if (!json_object_object_get_ex(line, "Events", &events) || !json_object_is_type(events, json_type_array)) {
		p->heartbeats++;
		return 0;
	}
	long long index = json_object_object_get_ex(line, "Index", &idx) ? json_object_get_int64(idx) : 0;
	/* a batch handled before this stream began: Nomad starts a stream asked for an index beyond
	 * its newest batch at that newest one (nomad/stream/event_buffer.go StartAtClosest). Within
	 * one stream two batches may share an index (a job and its evaluation): both count. */
	if (index <= p->seen_before)
		return 0;
	int n = 0;
	for (size_t i = 0; i < json_object_array_length(events) && !*stop; i++) {
		json_object *ev = json_object_array_get_idx(events, i), *payload = NULL, *inner = NULL;
		struct nomad_event e = {.topic = str_field(ev, "Topic"), .type = str_field(ev, "Type"),
					.key = str_field(ev, "Key"), .index = index};
		if (json_object_object_get_ex(ev, "Payload", &payload) && payload &&
		    json_object_is_type(payload, json_type_object)) {
			/* the payload has one key named after the topic (Allocation, Evaluation, Job, ...) */
			json_object_object_foreach(payload, k, v)
			{
				(void)k;
				inner = v;
				break;
			}
		}
		e.payload = inner;
		n++;
		if (p->fn && p->fn(p->ud, &e))
			*stop = 1;
	}
	if (index > *last_index)
		*last_index = index;
	return n;
}

int nomad_event_parser_feed(struct nomad_event_parser *p, const char *data, size_t len, long long *last_index,
			    int *stop, struct perr *e)
{
	int total = 0;
	while (len > 0 && !*stop) {
		/* skip the newlines between lines so the tokener starts clean */
		if (json_tokener_get_parse_end(p->tok) == 0 && (*data == '\n' || *data == '\r' || *data == ' ')) {
			data++, len--;
			continue;
		}
		json_object *o = json_tokener_parse_ex(p->tok, data, (int)(len > 1 << 30 ? 1 << 30 : len));
		enum json_tokener_error err = json_tokener_get_error(p->tok);
		if (err == json_tokener_continue)
			return total; /* the rest of the line comes with the next chunk */
		if (err != json_tokener_success) {
			json_tokener_reset(p->tok);
			return perr_set(e, PERR_NOMAD_INTERNAL, "event stream: malformed line: %s",
					json_tokener_error_desc(err));
		}
		size_t used = json_tokener_get_parse_end(p->tok);
		total += dispatch(p, o, last_index, stop);
		json_object_put(o);
		json_tokener_reset(p->tok);
		if (used > len)
			break;
		/* a bare number ends at the byte after it without consuming it: when that byte opened
		 * this chunk, used is 0 and the reset tokener starts again at the same byte */
		data += used;
		len -= used;
	}
	return total;
}

struct follow {
	struct nomad_event_parser *parser;
	const struct nomad_stream_opts *o;
	void *ud;
	long long *last_index;
	int stop;
	int failed;
	struct perr err;
	long status;
	char errbody[512];
	size_t errlen;
	CURL *curl;
	int stall_ms;
	long long last_byte_ms; /* monotonic; the start of the request until the first byte */
	int stalled;
};

/* Response headers count as life too (they come before the first heartbeat). */
static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct follow *f = ud;
	(void)ptr;
	f->last_byte_ms = clock_mono_ms();
	return size * nmemb;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct follow *f = ud;
	size_t n = size * nmemb;
	f->last_byte_ms = clock_mono_ms();
	if (!f->status)
		curl_easy_getinfo(f->curl, CURLINFO_RESPONSE_CODE, &f->status);
	if (f->status != 200) { /* keep Nomad's error text */
		size_t room = sizeof f->errbody - 1 - f->errlen;
		memcpy(f->errbody + f->errlen, ptr, n < room ? n : room);
		f->errlen += n < room ? n : room;
		f->errbody[f->errlen] = '\0';
		return n;
	}
	int before = nomad_event_parser_heartbeats(f->parser);
	if (nomad_event_parser_feed(f->parser, ptr, n, f->last_index, &f->stop, &f->err) < 0) {
		f->failed = 1;
		return 0;
	}
	if (!f->parser->connected && nomad_event_parser_heartbeats(f->parser) > before) {
		f->parser->connected = 1;
		if (f->o->on_connected)
			f->o->on_connected(f->ud);
	}
	return f->stop ? 0 : n;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	(void)dt, (void)dn, (void)ut, (void)un;
	struct follow *f = ud;
	if (f->o->should_stop && f->o->should_stop(f->ud))
		f->stop = 1;
	else if (clock_mono_ms() - f->last_byte_ms >= f->stall_ms)
		f->stalled = 1; /* curl calls this at least once a second, data or not */
	return f->stop || f->stalled;
}

int nomad_events_follow(const struct nomad_endpoint *ep, const struct nomad_stream_opts *o, nomad_event_fn fn,
			void *ud, long long *last_index, struct perr *e)
{
	char base[CONFIG_STR + 32], url[2048];
	struct curl_slist *headers = NULL;
	struct follow f = {.o = o, .ud = ud, .last_index = last_index};
	size_t off;
	nomad_base_url(ep, base, sizeof base);
	/* Nomad starts at the batch with the index asked for (or the next one after it), so the
	 * batch of index last was seen: ask for last+1 (nomad/stream/event_buffer.go StartAtClosest) */
	off = (size_t)snprintf(url, sizeof url, "%s/v1/event/stream?index=%lld&namespace=", base,
			       o->index > 0 ? o->index + 1 : 0);
	for (const char *p = ep->namespace; *p && off + 4 < sizeof url; p++)
		off += (size_t)snprintf(url + off, sizeof url - off, (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
								      (*p >= 'A' && *p <= 'Z') || *p == '-' || *p == '_'
								  ? "%c"
								  : "%%%02X",
					(unsigned char)*p);
	for (const char *const *t = o->topics; t && *t && off + 64 < sizeof url; t++) {
		off += (size_t)snprintf(url + off, sizeof url - off, "&topic=");
		for (const char *p = *t; *p && off + 4 < sizeof url; p++)
			off += (size_t)snprintf(url + off, sizeof url - off, *p == ':' ? "%%3A" : *p == '*' ? "%%2A" : "%c",
						*p);
	}
	f.parser = nomad_event_parser_new(fn, ud);
	if (f.parser)
		nomad_event_parser_seen_before(f.parser, o->index);
	f.curl = curl_easy_init();
	if (!f.parser || !f.curl) {
		nomad_event_parser_free(f.parser);
		curl_easy_cleanup(f.curl);
		return perr_set(e, PERR_UNKNOWN, "out of memory");
	}
	int stall = o->stall_ms > 0 ? o->stall_ms : NOMAD_EVENTS_STALL_MS;
	f.stall_ms = stall;
	CURL *c = f.curl;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	/* stall detection: on_progress compares the time since the last byte with stall */
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &f);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &f);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, &f);
	if (ep->tls) {
		if (nomad_ca_file(ep))
			curl_easy_setopt(c, CURLOPT_CAINFO, nomad_ca_file(ep));
		if (ep->certfile[0])
			curl_easy_setopt(c, CURLOPT_SSLCERT, ep->certfile);
		if (ep->keyfile[0])
			curl_easy_setopt(c, CURLOPT_SSLKEY, ep->keyfile);
	}
	if (ep->token[0]) {
		char h[CONFIG_STR + 32];
		snprintf(h, sizeof h, "X-Nomad-Token: %s", ep->token);
		headers = curl_slist_append(headers, h);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	}
	f.last_byte_ms = clock_mono_ms();
	CURLcode rc = curl_easy_perform(c);
	if (!f.status)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &f.status);
	curl_slist_free_all(headers);
	curl_easy_cleanup(c);
	nomad_event_parser_free(f.parser);

	if (f.stop)
		return 0;
	if (f.failed) {
		*e = f.err;
		return -1;
	}
	if (f.status && f.status != 200)
		return perr_set(e, f.status == 429 || f.status >= 500 ? PERR_NOMAD_OVERLOAD : PERR_NOMAD_INTERNAL,
				"event stream: Unexpected response code: %ld (%s)", f.status, f.errbody);
	if (f.stalled)
		return perr_set(e, PERR_NOMAD_UNREACHABLE, "event stream stalled: nothing for %d ms", stall);
	if (rc != CURLE_OK)
		return perr_set(e, PERR_NOMAD_UNREACHABLE, "event stream: %s", curl_easy_strerror(rc));
	return perr_set(e, PERR_NOMAD_UNREACHABLE, "event stream ended by nomad");
}
