/* poseidon-api: what the handlers share. One struct api per worker process; handlers get it
 * with the request and the matched path parameters, answer through lib/http, and keep no state
 * of their own between requests. */
#ifndef POSEIDON_API_H
#define POSEIDON_API_H

#include <json-c/json.h>

#include "config.h"
#include "http.h"
#include "jobspec.h"
#include "nomad.h"
#include "store.h"

struct api {
	struct config cfg;
	struct store *store;
	struct nomad *nomad;
	json_object *tmpl; /* the job template, loaded once */
	struct jobspec_opts jobopts;
};

typedef void (*api_handler)(struct api *a, struct http_req *r, const struct http_params *p);

/* Serves one request: route, authenticate, call the handler, log. */
void api_dispatch(struct api *a, struct http_req *r);

/* service.c */
void h_health(struct api *a, struct http_req *r, const struct http_params *p);
void h_version(struct api *a, struct http_req *r, const struct http_params *p);
void h_statistics(struct api *a, struct http_req *r, const struct http_params *p);
/* openapi.c: GET /api/v1/openapi.yaml, the embedded api/openapi.yaml. */
void h_openapi(struct api *a, struct http_req *r, const struct http_params *p);
/* GET /metrics and /api/v1/metrics: Prometheus text (lib/metrics). */
void h_metrics(struct api *a, struct http_req *r, const struct http_params *p);

/* environments.c */
void h_env_put(struct api *a, struct http_req *r, const struct http_params *p);
void h_env_list(struct api *a, struct http_req *r, const struct http_params *p);
void h_env_get(struct api *a, struct http_req *r, const struct http_params *p);
void h_env_delete(struct api *a, struct http_req *r, const struct http_params *p);

/* runners.c */
void h_runner_claim(struct api *a, struct http_req *r, const struct http_params *p);
void h_runner_delete(struct api *a, struct http_req *r, const struct http_params *p);

/* execute.c */
void h_execute(struct api *a, struct http_req *r, const struct http_params *p);

/* files.c */
void h_files_list(struct api *a, struct http_req *r, const struct http_params *p);
void h_files_raw(struct api *a, struct http_req *r, const struct http_params *p);
void h_files_patch(struct api *a, struct http_req *r, const struct http_params *p);
/* The claimed runner named by {runnerId}; touch pushes its deadline. Answers 410 and returns -1
 * when it is gone. */
int api_runner(struct api *a, struct http_req *r, const struct http_params *p, int touch, struct runner *run);

/* Reads the body within the configured limit; on failure answers and returns -1. */
int api_read_body(struct api *a, struct http_req *r);
/* Answers with e's status and message and logs it. */
void api_fail(struct http_req *r, const struct perr *e);

#endif
