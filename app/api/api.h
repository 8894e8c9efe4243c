/* poseidon-api: what the handlers share. One struct api per worker process; handlers get it
 * with the request and the matched path parameters, answer through lib/http, and keep no state
 * of their own between requests. */
#ifndef POSEIDON_API_H
#define POSEIDON_API_H

#include "config.h"
#include "http.h"
#include "store.h"

struct api {
	struct config cfg;
	struct store *store;
};

typedef void (*api_handler)(struct api *a, struct http_req *r, const struct http_params *p);

/* Serves one request: route, authenticate, call the handler, log. */
void api_dispatch(struct api *a, struct http_req *r);

/* service.c */
void h_health(struct api *a, struct http_req *r, const struct http_params *p);
void h_version(struct api *a, struct http_req *r, const struct http_params *p);
void h_statistics(struct api *a, struct http_req *r, const struct http_params *p);

/* runners.c */
void h_runner_claim(struct api *a, struct http_req *r, const struct http_params *p);

/* Reads the body within the configured limit; on failure answers and returns -1. */
int api_read_body(struct api *a, struct http_req *r);
/* Answers with e's status and message and logs it. */
void api_fail(struct http_req *r, const struct perr *e);

#endif
