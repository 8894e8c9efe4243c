/* poseidon-api: GET /metrics (and /api/v1/metrics for the status page), the figures of every
 * worker and daemon as Prometheus text, read from Redis at each scrape (lib/metrics). The token
 * applies unless metrics.public is set (routes.c). */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "metrics.h"

void h_metrics(struct api *a, struct http_req *r, const struct http_params *p)
{
	(void)p;
	struct perr e;
	char *text = metrics_prometheus(a->store, &e);
	if (!text) {
		api_fail(r, &e);
		return;
	}
	http_respond(r, 200, METRICS_CONTENT_TYPE, text, strlen(text));
	free(text);
}
