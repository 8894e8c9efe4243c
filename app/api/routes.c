/* poseidon-api route table: method + path pattern -> handler, and the dispatcher.
 *
 * Order of checks, as the reference's router has it (docs/api.md GEN-1/2, AUTH-*):
 * unknown path -> 404 empty; known path, other method -> 405 empty (before auth);
 * then the Poseidon-Token (401 empty) unless the route is public; then the handler.
 * The WebSocket route is not here: the web server proxies it to poseidon-wsgate.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "log.h"
#include "metrics.h"

#define ROUTE_PUBLIC 1u
#define ROUTE_METRICS 2u /* public when metrics.public is set */

static const struct route {
	const char *method;
	const char *pattern;
	api_handler handler;
	unsigned flags;
} routes[] = {
	{"GET", "/api/v1/health", h_health, ROUTE_PUBLIC},
	{"GET", "/api/v1/version", h_version, ROUTE_PUBLIC},
	{"GET", "/api/v1/openapi.yaml", h_openapi, ROUTE_PUBLIC},
	{"GET", "/api/v1/statistics/execution-environments", h_statistics, 0},
	{"GET", "/api/v1/execution-environments", h_env_list, 0},
	{"GET", "/api/v1/execution-environments/{id:int}", h_env_get, 0},
	{"PUT", "/api/v1/execution-environments/{id:int}", h_env_put, 0},
	{"DELETE", "/api/v1/execution-environments/{id:int}", h_env_delete, 0},
	{"POST", "/api/v1/runners", h_runner_claim, 0},
	{"DELETE", "/api/v1/runners/{runnerId}", h_runner_delete, 0},
	{"GET", "/api/v1/runners/{runnerId}/files", h_files_list, 0},
	{"PATCH", "/api/v1/runners/{runnerId}/files", h_files_patch, 0},
	{"GET", "/api/v1/runners/{runnerId}/files/raw", h_files_raw, 0},
	{"POST", "/api/v1/runners/{runnerId}/execute", h_execute, 0},
	{"GET", "/metrics", h_metrics, ROUTE_METRICS},
	{"GET", "/api/v1/metrics", h_metrics, ROUTE_METRICS},
};

static long long now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void api_fail(struct http_req *r, const struct perr *e)
{
	const char *code;
	int status = http_status_of(e->kind, &code);
	char st[24];
	if (status >= 500)
		log_error("request failed", "method", r->method, "path", r->path, "status", log_int(st, status),
			  "kind", perr_kind_name(e->kind), "error", e->msg);
	else
		log_info("request rejected", "method", r->method, "path", r->path, "status", log_int(st, status),
			 "error", e->msg);
	http_respond_error(r, e);
}

int api_read_body(struct api *a, struct http_req *r)
{
	struct perr e;
	if (http_read_body(r, (size_t)a->cfg.server.maxbodysize, &e) < 0) {
		api_fail(r, &e);
		return -1;
	}
	return 0;
}

void api_dispatch(struct api *a, struct http_req *r)
{
	const struct route *found = NULL;
	struct http_params params;
	const char *path_known = NULL; /* the pattern, for the metrics */
	long long t0 = now_us();

	for (size_t i = 0; i < sizeof routes / sizeof routes[0] && !found; i++) {
		if (!http_match(routes[i].pattern, r->path, &params))
			continue;
		path_known = routes[i].pattern;
		if (strcmp(routes[i].method, r->method) == 0)
			found = &routes[i];
	}
	int public = found && ((found->flags & ROUTE_PUBLIC) ||
			       ((found->flags & ROUTE_METRICS) && a->cfg.metrics.public));
	if (!found) {
		http_respond_empty(r, path_known ? 405 : 404);
	} else if (!public && a->cfg.server.token[0] &&
		   !http_token_equal(http_header(r, "Poseidon-Token"), a->cfg.server.token)) {
		log_info("request without valid token", "method", r->method, "path", r->path,
			 "remote", http_param(r, "REMOTE_ADDR"));
		http_respond_empty(r, 401);
	} else {
		found->handler(a, r, &params);
		if (!r->responded) {
			struct perr e;
			perr_set(&e, PERR_UNKNOWN, "handler sent no response");
			api_fail(r, &e);
		}
	}
	long long us = now_us() - t0;
	metrics_request(r->method, path_known, r->status, (double)us / 1e6); /* metrics: no I/O */
	if (log_get_level() == LOG_LEVEL_DEBUG) {
		char st[24], uss[24];
		log_debug("request", "method", r->method, "path", r->path, "status", log_int(st, r->status),
			  "us", log_int(uss, us));
	}
}
