/* handshake: GET /api/v1/runners/{runnerId}/websocket?executionID=<id> before the upgrade.
 *
 * Checks in the reference's order (docs/api.md section 3), each answered with a real HTTP
 * response before the next is looked at: path (404, empty: only the proxy's route reaches us,
 * but the port may be reached directly), method (405, empty, before auth as GEN-2 says), token
 * (401, empty), runner claimed and alive (410 JSON), execution id known for that runner (404
 * JSON, looked at without taking it), the gateway's bounds on open executions (503 in all, 429
 * per runner: wsgate.maxexecutions*), then for a plain GET 400 (the execution stays valid,
 * WS-2) and for an upgrade the Origin (403, gorilla's same-origin rule). An upgrade that passes
 * receives a session; the execution is taken (single use) only once the upgrade is complete, in
 * session_established, so a handshake that fails after this point consumes nothing.
 * Redis is asked synchronously (one or two round trips per handshake).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate.h"
#include "http.h"
#include "log.h"
#include "wsreq.h"

#define URI_MAX      2048
#define TOKEN_HDR    "poseidon-token:" /* lws keeps unknown header names lower-cased with the colon */
#define HOST_MAX     512
#define RESPONSE_MAX 2048

#define MSG_NO_RUNNER "abstract manager wrapped: no runner found with this id"
#define MSG_NO_EXEC   "execution id unknown"
#define MSG_STOPPING  "poseidon-wsgate is shutting down"

struct verdict {
	int status; /* 0: passed */
	char body[512];
	const char *ctype;
	char runner[MODEL_RUNNER_ID_MAX];
	char exec_id[GATE_EXEC_ID_MAX];
	struct runner run;
};

static void reject(struct verdict *v, int status, const char *ctype, const char *body)
{
	v->status = status;
	v->ctype = ctype;
	snprintf(v->body, sizeof v->body, "%s", body ? body : "");
}

static void reject_json(struct verdict *v, int status, const char *message, const char *code)
{
	char *b = model_render_error(message, code);
	reject(v, status, "application/json", b ? b : "{}");
	free(b);
}

static void reject_perr(struct verdict *v, const struct perr *e)
{
	const char *code = NULL;
	int status = http_status_of(e->kind, &code);
	reject_json(v, status, e->msg, code);
}

static int header(struct lws *wsi, enum lws_token_indexes t, char *out, int cap)
{
	out[0] = '\0';
	if (lws_hdr_total_length(wsi, t) >= cap)
		return -1;
	return lws_hdr_copy(wsi, out, cap, t) < 0 ? -1 : 0;
}

static int token_ok(struct gate *g, struct lws *wsi)
{
	char tok[CONFIG_STR + 1];
	if (!g->cfg.server.token[0])
		return 1;
	int n = lws_hdr_custom_length(wsi, TOKEN_HDR, (int)strlen(TOKEN_HDR));
	if (n <= 0 || n >= (int)sizeof tok)
		return 0;
	if (lws_hdr_custom_copy(wsi, tok, (int)sizeof tok, TOKEN_HDR, (int)strlen(TOKEN_HDR)) < 0)
		return 0;
	return http_token_equal(tok, g->cfg.server.token);
}

/* Everything up to (not including) the upgrade-specific checks. */
static void check(struct gate *g, struct lws *wsi, struct verdict *v)
{
	char uri[URI_MAX], arg[GATE_EXEC_ID_MAX + 16];
	char *u = NULL;
	int ulen = 0;
	struct perr e;
	memset(v, 0, sizeof *v);
	int method = lws_http_get_uri_and_method(wsi, &u, &ulen);
	if (method < 0 || !u || ulen <= 0 || ulen >= (int)sizeof uri) {
		reject(v, 404, NULL, NULL);
		return;
	}
	memcpy(uri, u, (size_t)ulen);
	uri[ulen] = '\0';
	if (!wsreq_runner_from_path(uri, v->runner, sizeof v->runner)) {
		reject(v, 404, NULL, NULL);
		return;
	}
	if (method != LWSHUMETH_GET) {
		reject(v, 405, NULL, NULL);
		return;
	}
	if (g->stopping) {
		reject_json(v, 503, MSG_STOPPING, "UNKNOWN");
		return;
	}
	if (!token_ok(g, wsi)) {
		reject(v, 401, NULL, NULL);
		return;
	}
	int found = store_runner_lookup(g->store, v->runner, 0, &v->run, &e);
	if (found < 0) {
		reject_perr(v, &e);
		return;
	}
	if (!found || !v->run.alloc_id[0]) {
		reject_json(v, 410, MSG_NO_RUNNER, NULL);
		return;
	}
	const char *id = lws_get_urlarg_by_name(wsi, "executionID=", arg, (int)sizeof arg);
	if (!id || !*id || strlen(id) >= sizeof v->exec_id) {
		reject_json(v, 404, MSG_NO_EXEC, NULL);
		return;
	}
	snprintf(v->exec_id, sizeof v->exec_id, "%s", id);
	char *stored = NULL;
	found = store_exec_get(g->store, v->exec_id, &stored, &e);
	if (found < 0) {
		reject_perr(v, &e);
		return;
	}
	char owner[MODEL_RUNNER_ID_MAX] = "";
	struct execution_request x;
	if (found && model_parse_stored_execution(stored, owner, sizeof owner, &x, &e) == 0)
		model_execution_free(&x);
	free(stored);
	if (!found || strcmp(owner, v->runner) != 0) {
		reject_json(v, 404, MSG_NO_EXEC, NULL);
		return;
	}
	/* bounds a client cannot push this gateway past (the execution stays valid: retry later) */
	char msg[256];
	if (session_count(g, NULL) >= g->cfg.wsgate.maxexecutions) {
		snprintf(msg, sizeof msg, "too many open executions on this gateway (wsgate.maxexecutions %d)",
			 g->cfg.wsgate.maxexecutions);
		reject_json(v, 503, msg, "UNKNOWN");
	} else if (session_count(g, v->runner) >= g->cfg.wsgate.maxexecutionsperrunner) {
		snprintf(msg, sizeof msg, "too many open executions on this runner (wsgate.maxexecutionsperrunner %d)",
			 g->cfg.wsgate.maxexecutionsperrunner);
		reject_json(v, 429, msg, NULL);
	}
}

/* Writes a complete response (headers and body). 0, or -1 when lws refused. */
static int respond(struct lws *wsi, const struct verdict *v)
{
	unsigned char buf[LWS_PRE + RESPONSE_MAX], *start = buf + LWS_PRE, *p = start,
	                                           *end = buf + sizeof buf - 1;
	size_t len = strlen(v->body);
	if (lws_add_http_common_headers(wsi, (unsigned int)v->status, len ? v->ctype : NULL, len, &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	if (len) {
		unsigned char body[LWS_PRE + sizeof v->body];
		memcpy(body + LWS_PRE, v->body, len);
		if (lws_write(wsi, body + LWS_PRE, len, LWS_WRITE_HTTP_FINAL) < (int)len)
			return -1;
	}
	char st[24];
	log_debug("websocket handshake refused", "runner", v->runner, "status", log_int(st, v->status));
	return 0;
}

int handshake_confirm_upgrade(struct gate *g, struct lws *wsi)
{
	struct verdict v;
	check(g, wsi, &v);
	if (!v.status) {
		char origin[HOST_MAX], host[HOST_MAX];
		if (header(wsi, WSI_TOKEN_ORIGIN, origin, sizeof origin) < 0 ||
		    header(wsi, WSI_TOKEN_HOST, host, sizeof host) < 0 || !wsreq_same_origin(origin, host))
			reject(&v, 403, "text/plain; charset=utf-8", "Forbidden\n");
	}
	if (v.status)
		return respond(wsi, &v) < 0 ? -1 : 1;
	if (!session_new(g, wsi, v.runner, v.exec_id, v.run.alloc_id)) {
		reject_json(&v, 500, "out of memory", "UNKNOWN");
		return respond(wsi, &v) < 0 ? -1 : 1;
	}
	return 0;
}

int handshake_http(struct gate *g, struct lws *wsi)
{
	struct verdict v;
	check(g, wsi, &v);
	if (!v.status) /* WS-2: a valid URL without the upgrade; the execution is left as it was */
		reject(&v, 400, "text/plain; charset=utf-8", "Bad Request\n");
	if (respond(wsi, &v) < 0)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}
