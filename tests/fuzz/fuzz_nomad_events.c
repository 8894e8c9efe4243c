/* Nomad's event stream (GET /v1/event/stream): the NDJSON parser fed in chunks whose sizes the
 * input picks, as curl hands them over, with a callback that does what poseidon-refill's
 * pool_on_event does with the outside bytes of an event (runner ids, allocation payloads, job
 * Meta). A stream that parses at once must give the same events, heartbeats and last index when
 * fed in pieces. */
#include "fuzz.h"
#include "jobspec.h"
#include "nomad.h"
#include "nomad_events.h"

struct seen {
	int events;
	uint64_t h;
	int stop_after; /* the callback asks to stop after this many events (0: never) */
};

static void mix(struct seen *s, const char *str)
{
	for (; *str; str++)
		s->h = (s->h ^ (unsigned char)*str) * 1099511628211ULL;
	s->h = (s->h ^ 0xff) * 1099511628211ULL;
}

static int on_event(void *ud, const struct nomad_event *ev)
{
	struct seen *s = ud;
	FUZZ_CHECK(ev->topic && ev->type && ev->key);
	s->events++;
	mix(s, ev->topic);
	mix(s, ev->type);
	mix(s, ev->key);
	long long env;
	nomad_runner_env(ev->key, &env);
	nomad_is_template_job_id(ev->key, &env);
	if (ev->payload) {
		struct nomad_alloc a;
		struct perr e;
		if (nomad_alloc_from_json(ev->payload, &a, &e) == 0) {
			FUZZ_CHECK(a.nports >= 0 && a.nports <= MODEL_MAX_PORTS);
			nomad_alloc_oom_killed(&a);
			nomad_alloc_terminal(&a);
			mix(s, a.id);
			mix(s, a.client_status);
		}
		int used;
		long long timeout;
		jobspec_get_used(ev->payload, &used, &timeout);
	}
	return s->stop_after && s->events >= s->stop_after;
}

/* Feeds data in pieces of chunk bytes (0: at once) until the end, an error or a stop. */
static int run(const uint8_t *data, size_t size, size_t chunk, struct seen *s, long long *last,
               int *heartbeats)
{
	struct nomad_event_parser *p = nomad_event_parser_new(on_event, s);
	FUZZ_CHECK(p);
	int stop = 0, failed = 0, total = 0;
	if (!chunk)
		chunk = size ? size : 1;
	for (size_t i = 0; i < size && !stop && !failed; i += chunk) {
		struct perr e;
		int n = nomad_event_parser_feed(p, (const char *)data + i,
		                                size - i < chunk ? size - i : chunk, last, &stop, &e);
		if (n < 0) {
			FUZZ_CHECK(e.kind == PERR_NOMAD_INTERNAL);
			failed = 1;
		} else {
			total += n;
		}
	}
	*heartbeats = nomad_event_parser_heartbeats(p);
	nomad_event_parser_free(p);
	FUZZ_CHECK(failed || total == s->events);
	return failed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned chunk = fuzz_take(&data, &size) % 48 + 1;
	unsigned stop_after = fuzz_take(&data, &size) % 4;
	struct seen a = {0, 14695981039346656037ULL, (int)stop_after}, b = a;
	long long la = 0, lb = 0;
	int ha, hb;
	int fa = run(data, size, 0, &a, &la, &ha);
	int fb = run(data, size, chunk, &b, &lb, &hb);
	/* A stream that parses whole must parse the same way in pieces. Not the other way round:
	 * json-c 0.16 itself accepts a malformed number such as "9-" as 9 when the bytes after the
	 * digits arrive in a later chunk, so garbage that fails whole may pass in pieces. */
	if (!fa) {
		FUZZ_CHECK(!fb);
		FUZZ_CHECK(a.events == b.events && a.h == b.h);
		FUZZ_CHECK(la == lb && ha == hb);
	}
	FUZZ_CHECK(la >= 0 && lb >= 0);
	return 0;
}
