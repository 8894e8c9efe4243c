/* http: the FastCGI side of a REST request, and the route matcher.
 *
 * A struct http_req wraps one libfcgi request: method, raw path and query from REQUEST_URI (so
 * lighttpd, nginx and Apache give the same view whatever their SCRIPT_NAME/PATH_INFO habits),
 * headers, a bounded body read, and the response writers. Errors from lib/ become responses in
 * exactly one place: http_status_of() maps a perr kind to status and errorCode.
 * Route patterns are literal segments plus {name} (any non-empty segment) and {name:int}
 * (digits only); matching distinguishes "no such path" (404) from "path exists, method does not"
 * (405), as the reference's router does.
 */
#ifndef POSEIDON_HTTP_H
#define POSEIDON_HTTP_H

#include <fcgiapp.h>
#include <stddef.h>

#include "err.h"

#define HTTP_PATH_MAX 2048
#define HTTP_QUERY_VALUE_MAX 12288 /* one escaped query value: a 4096-byte file path, every byte %XX */
#define HTTP_MAX_PARAMS 4
#define HTTP_PARAM_MAX 256

struct http_req {
	FCGX_Request *fcgi;
	const char *method;
	char path[HTTP_PATH_MAX]; /* raw (still percent-encoded) path of REQUEST_URI */
	const char *query;        /* raw query string, "" when none */
	char *body;               /* after http_read_body: malloc'd, NUL-terminated */
	size_t body_len;
	int responded;
	int status;               /* the status sent, for logs and metrics */
};

/* Fills r from the FastCGI parameters. -1 with PERR_BAD_REQUEST when the URI is unusable. */
int http_req_init(struct http_req *r, FCGX_Request *fcgi, struct perr *e);
void http_req_free(struct http_req *r);
/* A request header by its HTTP name ("Poseidon-Token"), or NULL. */
const char *http_header(const struct http_req *r, const char *name);
/* A FastCGI parameter (e.g. "HTTPS", "SERVER_PORT"), or NULL. */
const char *http_param(const struct http_req *r, const char *name);
/* Reads the whole body (at most max bytes) into r->body. Over the limit: PERR_TOO_LARGE (the
 * rest is drained, so the client sees a clean answer). */
int http_read_body(struct http_req *r, size_t max, struct perr *e);

/* The percent-decoded value of query parameter name (first occurrence) into out.
 * Returns 1 if present, 0 if absent, -1 if too long or badly encoded. */
int http_query(const char *query, const char *name, char *out, size_t cap);
/* Percent-decodes s into out ('+' is kept); -1 on bad escapes, NUL bytes or overflow. */
int http_unescape(const char *s, size_t n, char *out, size_t cap);

/* Maps an error kind to the status and the API's errorCode (NULL for client errors). */
int http_status_of(enum perr_kind kind, const char **error_code);

/* Responses. Each writes status, headers and body once; later calls are ignored. */
void http_respond(struct http_req *r, int status, const char *content_type, const char *body, size_t len);
void http_respond_empty(struct http_req *r, int status);
void http_respond_json(struct http_req *r, int status, const char *json);
/* {"message"} for 4xx, {"message","errorCode"} for 5xx; empty for 401/404-empty kinds. */
void http_respond_error(struct http_req *r, const struct perr *e);
/* Writes a response header block for a streamed body; then use FCGX_PutStr on r->fcgi->out. */
void http_begin(struct http_req *r, int status, const char *headers);

/* Route matching. */
struct http_params {
	int n;
	char name[HTTP_MAX_PARAMS][32];
	char value[HTTP_MAX_PARAMS][HTTP_PARAM_MAX]; /* percent-decoded */
};
/* 1 when path matches pattern (params filled), 0 otherwise. */
int http_match(const char *pattern, const char *path, struct http_params *p);
const char *http_get_param(const struct http_params *p, const char *name);

/* Constant-time comparison of a presented token with the configured one. */
int http_token_equal(const char *presented, const char *expected);

#endif
