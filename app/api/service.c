/* poseidon-api service routes: health, version, statistics (docs/api.md HLT, VER, STA). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "log.h"
#include "model.h"
#include "version.h"

/* HLT-1..3: 204, or 503 naming the cause: Redis unreachable, Nomad unreachable (as the refill
 * daemon last saw it), or depleting prewarming pools (idle/size below
 * server.alert.prewarmingpoolthreshold; size 0 never counts). */
void h_health(struct api *a, struct http_req *r, const struct http_params *p)
{
	(void)p;
	struct perr e;
	struct env_stats *st = NULL;
	size_t n = 0;
	if (store_statistics(a->store, &st, &n, &e) < 0) {
		log_error("health check failed", "error", e.msg);
		char *body = model_render_error(e.msg, "UNKNOWN");
		http_respond_json(r, 503, body);
		free(body);
		return;
	}
	/* the refill daemon publishes Nomad's state; while it is unreachable we say so */
	char nomad[PERR_MSG_MAX + 32];
	if (store_status_get(a->store, "nomad", nomad, sizeof nomad, &e) == 1) {
		free(st);
		char *body = model_render_error(nomad, "NOMAD_UNREACHABLE");
		http_respond_json(r, 503, body);
		free(body);
		return;
	}
	double threshold = a->cfg.server.alert.prewarmingpoolthreshold;
	char ids[1024] = "";
	size_t len = 0;
	for (size_t i = 0; i < n && threshold > 0; i++) {
		if (st[i].prewarming_pool_size == 0 ||
		    (double)st[i].idle / (double)st[i].prewarming_pool_size >= threshold)
			continue;
		int w = snprintf(ids + len, sizeof ids - len, "%s%lld", len ? ", " : "", st[i].id);
		if (w > 0 && (size_t)w < sizeof ids - len)
			len += (size_t)w;
	}
	free(st);
	if (len) {
		char msg[1200];
		snprintf(msg, sizeof msg, "the prewarming pool is depleting: environments %s", ids);
		log_warn("health: prewarming pool depleting", "environments", ids);
		char *body = model_render_error(msg, "PREWARMING_POOL_DEPLETING");
		http_respond_json(r, 503, body);
		free(body);
		return;
	}
	http_respond_empty(r, 204);
}

/* VER-1/2: the release as a JSON string; sentry.release wins over the build's git describe. */
void h_version(struct api *a, struct http_req *r, const struct http_params *p)
{
	(void)p;
	const char *release = a->cfg.sentry.release[0] ? a->cfg.sentry.release : poseidon_version();
	if (!*release) {
		http_respond_empty(r, 404);
		return;
	}
	char *body = model_render_string(release);
	http_respond_json(r, 200, body);
	free(body);
}

/* STA-1: {"<id>": {"id","prewarmingPoolSize","idleRunners","usedRunners"}}, {} when none. */
void h_statistics(struct api *a, struct http_req *r, const struct http_params *p)
{
	(void)p;
	struct perr e;
	struct env_stats *st = NULL;
	size_t n = 0;
	if (store_statistics(a->store, &st, &n, &e) < 0) {
		api_fail(r, &e);
		return;
	}
	char *body = model_render_statistics(st, n);
	free(st);
	http_respond_json(r, 200, body);
	free(body);
}
