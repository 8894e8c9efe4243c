/* poseidon-api POST /runners/{id}/execute (docs/api.md EXE-1..6).
 *
 * Nothing runs yet: the request is validated, stored in Redis as exec:<uuid> (single use, with a
 * TTL) and answered with the WebSocket URL that poseidon-wsgate serves. The URL's host is the
 * request's Host (EXE-5, CodeOcean may reach us through a proxy name); its scheme is wss when
 * server.publicscheme says so, or TLS is configured, or the front end says X-Forwarded-Proto: https.
 * The inactivity deadline is not touched (RUN-11).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uuid/uuid.h>

#include "api.h"
#include "log.h"
#include "model.h"

#define TIME_LIMIT_MAX (30LL * 24 * 3600) /* longer is certainly a mistake */
#define ENV_NAME_MAX 256
#define COMMAND_MAX (256 * 1024)

static int valid_env_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > ENV_NAME_MAX || isdigit((unsigned char)s[0]))
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_')
			return 0;
	return 1;
}

/* EXE-3 and the checks the reference left to the shell (DIS-7). */
static int validate(const struct execution_request *x, struct perr *e)
{
	if (memchr(x->command, '\'', x->command_len) || memchr(x->command, '\0', x->command_len))
		return perr_set(e, PERR_BAD_REQUEST, "use of forbidden character");
	if (x->command_len > COMMAND_MAX)
		return perr_set(e, PERR_BAD_REQUEST, "command longer than %d bytes", COMMAND_MAX);
	if (x->time_limit < 0 || x->time_limit > TIME_LIMIT_MAX)
		return perr_set(e, PERR_BAD_REQUEST, "timeLimit must be between 0 (none) and %lld seconds", TIME_LIMIT_MAX);
	for (size_t i = 0; i < x->nenv; i++) {
		if (!valid_env_name(x->env[i].name))
			return perr_set(e, PERR_BAD_REQUEST, "invalid environment variable name: %.64s", x->env[i].name);
		if (strlen(x->env[i].value) > COMMAND_MAX)
			return perr_set(e, PERR_BAD_REQUEST, "environment variable %s is too long", x->env[i].name);
	}
	return 0;
}

static const char *scheme(struct api *a, struct http_req *r)
{
	const char *fwd = http_header(r, "X-Forwarded-Proto"), *https = http_param(r, "HTTPS");
	if (a->cfg.server.publicscheme[0])
		return a->cfg.server.publicscheme;
	if (a->cfg.server.tls.active || (fwd && strcasecmp(fwd, "https") == 0) || (https && strcasecmp(https, "on") == 0))
		return "wss";
	return "ws";
}

/* A Host header we may echo into a URL: host[:port] characters only. */
static int valid_host(const char *h)
{
	size_t n = h ? strlen(h) : 0;
	if (n == 0 || n > 255)
		return 0;
	for (; *h; h++)
		if (!isalnum((unsigned char)*h) && !strchr(".-:[]_", *h))
			return 0;
	return 1;
}

void h_execute(struct api *a, struct http_req *r, const struct http_params *p)
{
	struct perr e;
	struct execution_request x;
	struct runner run;
	/* RUN-9/10: the whole body is read, then the runner looked up (410 before any 400, as the
	 * reference's router runs its runner lookup before the handler) */
	if (api_read_body(a, r) < 0 || api_runner(a, r, p, 0, &run) < 0)
		return;
	if (model_parse_execution_request(r->body, r->body_len, &x, &e) < 0) {
		api_fail(r, &e);
		return;
	}
	if (validate(&x, &e) < 0) {
		model_execution_free(&x);
		api_fail(r, &e);
		return;
	}
	uuid_t u;
	char id[37], url[512];
	uuid_generate_random(u);
	uuid_unparse_lower(u, id);
	char *stored = model_stored_execution(run.id, &x);
	model_execution_free(&x);
	if (!stored || store_exec_put(a->store, id, stored, &e) < 0) {
		free(stored);
		if (!stored)
			perr_set(&e, PERR_UNKNOWN, "out of memory");
		api_fail(r, &e);
		return;
	}
	free(stored);
	const char *host = http_header(r, "Host");
	if (!valid_host(host))
		host = http_param(r, "SERVER_NAME");
	snprintf(url, sizeof url, "%s://%s/api/v1/runners/%s/websocket?executionID=%s", scheme(a, r),
		 valid_host(host) ? host : "localhost", run.id, id);
	char *body = model_render_execution_response(url);
	http_respond_json(r, 200, body);
	free(body);
	log_debug("execution prepared", "runner", run.id, "execution", id);
}
