/* nomad: see nomad.h. Module notes:
 * - One curl easy handle per struct nomad, reset per request, so TCP (and TLS) connections are
 *   reused between calls. Bodies are collected into a growing buffer bounded by BODY_MAX.
 * - Only HTTP 200 is success, as in Nomad's Go client; the error text is Nomad's plain body.
 * - JSON from Nomad is read leniently: a missing field is zero, as Allocation JSON omits empty
 *   fields (docs/nomad-api.md 1.4).
 */
#include "nomad.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <uuid/uuid.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"

#define BODY_MAX (256L * 1024 * 1024) /* a full allocation list of a big cluster fits */
#define DEFAULT_TIMEOUT_MS 10000
#define CONNECT_TIMEOUT_MS 3000

struct nomad {
	struct nomad_endpoint ep;
	CURL *curl;
	char base[CONFIG_STR + 32];
};

struct buf {
	char *p;
	size_t len;
	int overflow;
};

void nomad_endpoint_from_config(struct nomad_endpoint *ep, const struct config *c)
{
	memset(ep, 0, sizeof *ep);
	snprintf(ep->host, sizeof ep->host, "%s", c->nomad.address);
	ep->port = c->nomad.port;
	ep->tls = c->nomad.tls.active;
	snprintf(ep->cafile, sizeof ep->cafile, "%s", c->nomad.tls.cafile);
	snprintf(ep->certfile, sizeof ep->certfile, "%s", c->nomad.tls.certfile);
	snprintf(ep->keyfile, sizeof ep->keyfile, "%s", c->nomad.tls.keyfile);
	snprintf(ep->token, sizeof ep->token, "%s", c->nomad.token);
	snprintf(ep->namespace, sizeof ep->namespace, "%s", c->nomad.namespace);
}

void nomad_base_url(const struct nomad_endpoint *ep, char *out, size_t cap)
{
	int v6 = strchr(ep->host, ':') != NULL;
	snprintf(out, cap, "%s://%s%s%s:%d", ep->tls ? "https" : "http", v6 ? "[" : "", ep->host, v6 ? "]" : "",
		 ep->port);
}

const char *nomad_ca_file(const struct nomad_endpoint *ep)
{
	if (ep->cafile[0])
		return ep->cafile;
	/* OpenSSL's own override of its default store, then the bundle libcurl was built to trust
	 * (Debian: /etc/ssl/certs/ca-certificates.crt) */
	const char *env = getenv("SSL_CERT_FILE");
	if (env && *env)
		return env;
	const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
	if (v && v->age >= CURLVERSION_SEVENTH && v->cainfo && *v->cainfo)
		return v->cainfo;
	return NULL;
}

struct nomad *nomad_open(const struct nomad_endpoint *ep)
{
	static int curl_ready;
	if (!curl_ready) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		curl_ready = 1;
	}
	struct nomad *n = calloc(1, sizeof *n);
	if (!n)
		return NULL;
	n->ep = *ep;
	nomad_base_url(ep, n->base, sizeof n->base);
	return n;
}

void nomad_close(struct nomad *n)
{
	if (!n)
		return;
	if (n->curl)
		curl_easy_cleanup(n->curl);
	free(n);
}

const struct nomad_endpoint *nomad_get_endpoint(const struct nomad *n) { return &n->ep; }

static size_t collect(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct buf *b = ud;
	size_t n = size * nmemb;
	if (b->len + n > (size_t)BODY_MAX) {
		b->overflow = 1;
		return 0;
	}
	char *q = realloc(b->p, b->len + n + 1);
	if (!q)
		return 0;
	b->p = q;
	memcpy(b->p + b->len, ptr, n);
	b->len += n;
	b->p[b->len] = '\0';
	return n;
}

/* Query-escapes s (Go's url.QueryEscape) into out. */
static void qescape(const char *s, char *out, size_t cap)
{
	size_t o = 0;
	for (; *s && o + 4 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, cap - o, "%%%02X", c);
	}
	out[o] = '\0';
}

/* Sets the options every request shares on a fresh or reset handle. A body is JSON: curl would
 * label it application/x-www-form-urlencoded, which Nomad ignores and a proxy in front of it may
 * not. */
static void common_options(const struct nomad *n, CURL *c, struct curl_slist **headers, int json_body)
{
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(n->ep.timeout_ms ? n->ep.timeout_ms : DEFAULT_TIMEOUT_MS));
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	if (n->ep.tls) {
		if (nomad_ca_file(&n->ep))
			curl_easy_setopt(c, CURLOPT_CAINFO, nomad_ca_file(&n->ep));
		if (n->ep.certfile[0])
			curl_easy_setopt(c, CURLOPT_SSLCERT, n->ep.certfile);
		if (n->ep.keyfile[0])
			curl_easy_setopt(c, CURLOPT_SSLKEY, n->ep.keyfile);
	}
	*headers = curl_slist_append(*headers, "Expect:");
	if (json_body)
		*headers = curl_slist_append(*headers, "Content-Type: application/json");
	if (n->ep.token[0]) {
		char h[CONFIG_STR + 32];
		snprintf(h, sizeof h, "X-Nomad-Token: %s", n->ep.token);
		*headers = curl_slist_append(*headers, h);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, *headers);
}

/* path is relative to /v1 and may carry a query; ?namespace= is added. */
static void make_url(const struct nomad *n, const char *path, char *out, size_t cap)
{
	char ns[CONFIG_STR * 3];
	qescape(n->ep.namespace, ns, sizeof ns);
	snprintf(out, cap, "%s/v1/%s%snamespace=%s", n->base, path, strchr(path, '?') ? "&" : "?", ns);
}

static int classify_(CURLcode rc, long status, struct buf *b, const char *what, struct perr *e);

/* Nomad's answer to a registration with EnforceIndex over a job that changed or went away (500,
 * nomad/job_endpoint.go RegisterEnforceIndexErrPrefix): an outcome, not Nomad trouble. */
static int enforce_conflict(long status, const struct perr *e)
{
	return status == 500 && strstr(e->msg, "Enforcing job modify index") != NULL;
}

/* Classifies a finished transfer. Returns 0 on HTTP 200 with *body set (caller frees). Every
 * failure but a 404 (callers read it as "no such job/allocation") is counted in the metrics. */
static int classify(CURLcode rc, long status, struct buf *b, const char *what, struct perr *e)
{
	struct perr mine;
	if (!e)
		e = &mine;
	int r = classify_(rc, status, b, what, e);
	if (r < 0 && !(rc == CURLE_OK && status == 404) && !enforce_conflict(status, e))
		metrics_nomad_error(e->kind);
	return r;
}

static int classify_(CURLcode rc, long status, struct buf *b, const char *what, struct perr *e)
{
	if (rc != CURLE_OK) {
		free(b->p);
		b->p = NULL;
		if (b->overflow)
			return perr_set(e, PERR_NOMAD_INTERNAL, "%s: response larger than %ld bytes", what, BODY_MAX);
		return perr_set(e, PERR_NOMAD_UNREACHABLE, "%s: nomad unreachable: %s", what, curl_easy_strerror(rc));
	}
	if (status == 200 && b->len > 0)
		return 0;
	char text[512];
	size_t n = b->len < sizeof text - 1 ? b->len : sizeof text - 1;
	memcpy(text, b->p ? b->p : "", n);
	text[n] = '\0';
	while (n > 0 && isspace((unsigned char)text[n - 1]))
		text[--n] = '\0';
	free(b->p);
	b->p = NULL;
	if (status == 200)
		return perr_set(e, PERR_NOMAD_INTERNAL, "%s: empty response from nomad", what);
	return perr_set(e, status == 429 || status >= 500 ? PERR_NOMAD_OVERLOAD : PERR_NOMAD_INTERNAL,
			"%s: Unexpected response code: %ld (%s)", what, status, text);
}

/* One synchronous request. body may be NULL. On success *out (NUL-terminated, caller frees);
 * *status always set when an HTTP answer arrived. */
static int request(struct nomad *n, const char *method, const char *path, const char *body, char **out,
		   long *status, struct perr *e)
{
	char url[4096];
	struct buf b = {0};
	struct curl_slist *headers = NULL;
	*status = 0;
	if (!n->curl && !(n->curl = curl_easy_init()))
		return perr_set(e, PERR_UNKNOWN, "out of memory");
	curl_easy_reset(n->curl);
	make_url(n, path, url, sizeof url);
	curl_easy_setopt(n->curl, CURLOPT_URL, url);
	curl_easy_setopt(n->curl, CURLOPT_CUSTOMREQUEST, method);
	if (body) {
		curl_easy_setopt(n->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(n->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	}
	curl_easy_setopt(n->curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(n->curl, CURLOPT_WRITEDATA, &b);
	common_options(n, n->curl, &headers, body != NULL);
	CURLcode rc = curl_easy_perform(n->curl);
	curl_easy_getinfo(n->curl, CURLINFO_RESPONSE_CODE, status);
	curl_slist_free_all(headers);
	char what[300];
	snprintf(what, sizeof what, "%s /v1/%.200s", method, path);
	if (classify(rc, *status, &b, what, e) < 0)
		return -1;
	*out = b.p;
	return 0;
}

static json_object *parse(const char *text, struct perr *e, const char *what)
{
	json_tokener *tok = json_tokener_new_ex(JSON_TOKENER_DEFAULT_DEPTH);
	json_object *o = tok ? json_tokener_parse_ex(tok, text, (int)strlen(text)) : NULL;
	if (tok && json_tokener_get_error(tok) == json_tokener_continue)
		o = json_tokener_parse_ex(tok, "", 1);
	if (!o || (tok && json_tokener_get_error(tok) != json_tokener_success)) {
		json_object_put(o);
		o = NULL;
		perr_set(e, PERR_NOMAD_INTERNAL, "%s: nomad sent invalid JSON", what);
	}
	json_tokener_free(tok);
	return o;
}

/* GET that returns parsed JSON; 0 and *o on 200, 1 on 404, -1 otherwise. */
static int get_json(struct nomad *n, const char *path, json_object **o, struct perr *e)
{
	char *body = NULL;
	long status;
	if (request(n, "GET", path, NULL, &body, &status, e) < 0)
		return status == 404 ? 1 : -1;
	*o = parse(body, e, path);
	free(body);
	return *o ? 0 : -1;
}

static void escape_path_segment(const char *s, char *out, size_t cap)
{
	/* url.PathEscape: like QueryEscape but space is %20; our ids have no spaces anyway */
	qescape(s, out, cap);
}

/* ---- small JSON readers (missing = zero) ----------------------------------------------- */

static json_object *get(json_object *o, const char *key)
{
	json_object *v = NULL;
	if (o && json_object_is_type(o, json_type_object))
		json_object_object_get_ex(o, key, &v);
	return v;
}

static void get_str(json_object *o, const char *key, char *out, size_t cap)
{
	json_object *v = get(o, key);
	snprintf(out, cap, "%s", v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "");
}

static long long get_int(json_object *o, const char *key)
{
	json_object *v = get(o, key);
	return v && (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double))
		       ? (long long)json_object_get_int64(v)
		       : 0;
}

/* ---- jobs ------------------------------------------------------------------------------ */

static int job_register(struct nomad *n, json_object *job, const unsigned long long *modify_index, char *eval_id,
			struct perr *e)
{
	json_object *req = json_object_new_object();
	json_object_object_add(req, "Job", json_object_get(job));
	if (modify_index) {
		json_object_object_add(req, "EnforceIndex", json_object_new_boolean(1));
		json_object_object_add(req, "JobModifyIndex", json_object_new_uint64(*modify_index));
	}
	const char *body = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	char *resp = NULL;
	long status;
	int rc = request(n, "PUT", "jobs", body, &resp, &status, e);
	json_object_put(req);
	if (rc < 0)
		return modify_index && enforce_conflict(status, e) ? 1 : -1;
	json_object *o = parse(resp, e, "PUT /v1/jobs");
	free(resp);
	if (!o)
		return -1;
	if (eval_id)
		get_str(o, "EvalID", eval_id, 40);
	char warnings[512];
	get_str(o, "Warnings", warnings, sizeof warnings);
	if (warnings[0])
		log_debug("nomad register warnings", "warnings", warnings);
	json_object_put(o);
	return 0;
}

int nomad_job_register(struct nomad *n, json_object *job, char *eval_id, struct perr *e)
{
	return job_register(n, job, NULL, eval_id, e);
}

int nomad_job_register_over(struct nomad *n, json_object *job, unsigned long long modify_index, char *eval_id,
			    struct perr *e)
{
	return job_register(n, job, &modify_index, eval_id, e);
}

/* Nomad's ids (allocations, evaluations) are UUIDs: anything else never goes into a path. */
static int valid_uuidish(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 40)
		return 0;
	for (; *s; s++)
		if (!isxdigit((unsigned char)*s) && *s != '-')
			return 0;
	return 1;
}

/* ---- evaluations ---------------------------------------------------------------------- */

/* One group's AllocMetric on a line: the counts that are not zero and the maps that are not
 * empty, in the order Nomad declares them (the reference prints the whole Go struct). */
static void metric_line(const char *group, json_object *m, char *out, size_t cap)
{
	static const char *const keys[] = {"NodesEvaluated",     "NodesFiltered",      "NodesInPool",
					   "NodesAvailable",     "ClassFiltered",      "ConstraintFiltered",
					   "NodesExhausted",     "ClassExhausted",     "DimensionExhausted",
					   "QuotaExhausted",     "ResourcesExhausted", "CoalescedFailures"};
	size_t o = (size_t)snprintf(out, cap, "%s:", group);
	int any = 0;
	for (size_t i = 0; i < sizeof keys / sizeof *keys && o < cap; i++) {
		json_object *v = get(m, keys[i]);
		if (!v)
			continue;
		if (json_object_is_type(v, json_type_int)) {
			if (json_object_get_int64(v) == 0)
				continue;
			o += (size_t)snprintf(out + o, cap - o, "%s %s %lld", any ? "," : "", keys[i],
					      (long long)json_object_get_int64(v));
		} else if ((json_object_is_type(v, json_type_object) && json_object_object_length(v) > 0) ||
			   (json_object_is_type(v, json_type_array) && json_object_array_length(v) > 0)) {
			o += (size_t)snprintf(out + o, cap - o, "%s %s %s", any ? "," : "", keys[i],
					      json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
		} else {
			continue;
		}
		any = 1;
	}
	if (!any && o < cap)
		snprintf(out + o, cap - o, " no node evaluated (none in the job's datacenters and node pool)");
}

int nomad_eval_outcome(json_object *eval, char *why, size_t cap)
{
	char status[32], id[64], blocked[64];
	get_str(eval, "Status", status, sizeof status);
	get_str(eval, "ID", id, sizeof id);
	get_str(eval, "BlockedEval", blocked, sizeof blocked);
	/* the outcomes MonitorEvaluation waits for; pending and blocked are not one */
	if (strcmp(status, "complete") != 0 && strcmp(status, "canceled") != 0 && strcmp(status, "failed") != 0)
		return -1;
	json_object *failed = get(eval, "FailedTGAllocs");
	if (!failed || !json_object_is_type(failed, json_type_object) || json_object_object_length(failed) == 0) {
		if (strcmp(status, "complete") == 0)
			return 0;
		snprintf(why, cap, "evaluation could not complete: \"%s\"", status);
		return 1;
	}
	size_t o = (size_t)snprintf(why, cap,
				    "evaluation \"%s\" finished with status \"%s\" but failed to place all allocations",
				    id, status);
	json_object_object_foreach(failed, group, metric)
	{
		char line[1024];
		metric_line(group, metric, line, sizeof line);
		if (o < cap)
			o += (size_t)snprintf(why + o, cap - o, "\n%s", line);
	}
	if (blocked[0] && o < cap)
		snprintf(why + o, cap - o, "\nEvaluation \"%s\" waiting for additional capacity to place remainder", blocked);
	return 1;
}

int nomad_eval_wait(struct nomad *n, const char *eval_id, int timeout_ms, char *why, size_t cap, struct perr *e)
{
	char path[128];
	long long start = clock_mono_ms();
	int pause = 20;
	if (!eval_id || !valid_uuidish(eval_id))
		return 0; /* nothing to wait for (a periodic job gets no evaluation) */
	snprintf(path, sizeof path, "evaluation/%s", eval_id);
	for (;;) {
		json_object *o = NULL;
		int r = get_json(n, path, &o, e);
		if (r < 0)
			return -1;
		if (r == 0) {
			int out = nomad_eval_outcome(o, why, cap);
			json_object_put(o);
			if (out >= 0)
				return out;
		}
		long long left = timeout_ms - (clock_mono_ms() - start);
		if (left <= 0)
			return 2;
		struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)(left < pause ? left : pause) * 1000000L};
		nanosleep(&ts, NULL);
		pause = pause * 2 > 250 ? 250 : pause * 2;
	}
}

int nomad_job_read(struct nomad *n, const char *id, json_object **job, struct perr *e)
{
	char path[512], esc[MODEL_RUNNER_ID_MAX * 3];
	escape_path_segment(id, esc, sizeof esc);
	snprintf(path, sizeof path, "job/%s", esc);
	int r = get_json(n, path, job, e);
	return r == 0 ? 1 : r == 1 ? 0 : -1;
}

static int cmp_stub(const void *a, const void *b)
{
	return strcmp(((const struct nomad_job_stub *)a)->id, ((const struct nomad_job_stub *)b)->id);
}

int nomad_jobs_list(struct nomad *n, const char *prefix, struct nomad_job_stub **out, size_t *count,
		    struct perr *e)
{
	char path[512], esc[MODEL_RUNNER_ID_MAX * 3];
	json_object *arr;
	*out = NULL;
	*count = 0;
	qescape(prefix, esc, sizeof esc);
	snprintf(path, sizeof path, "jobs?prefix=%s", esc);
	if (get_json(n, path, &arr, e) != 0)
		return -1;
	if (!json_object_is_type(arr, json_type_array)) {
		json_object_put(arr);
		return perr_set(e, PERR_NOMAD_INTERNAL, "GET /v1/jobs: not a list");
	}
	size_t len = json_object_array_length(arr);
	*out = calloc(len + 1, sizeof **out);
	if (!*out) {
		json_object_put(arr);
		return perr_set(e, PERR_UNKNOWN, "out of memory");
	}
	for (size_t i = 0; i < len; i++) {
		json_object *s = json_object_array_get_idx(arr, i);
		struct nomad_job_stub *st = &(*out)[(*count)++];
		get_str(s, "ID", st->id, sizeof st->id);
		get_str(s, "Status", st->status, sizeof st->status);
		st->submit_time = get_int(s, "SubmitTime");
	}
	json_object_put(arr);
	qsort(*out, *count, sizeof **out, cmp_stub);
	return 0;
}

int nomad_job_purge(struct nomad *n, const char *id, struct perr *e)
{
	char path[512], esc[MODEL_RUNNER_ID_MAX * 3], *body = NULL;
	long status;
	escape_path_segment(id, esc, sizeof esc);
	snprintf(path, sizeof path, "job/%s?purge=true", esc);
	if (request(n, "DELETE", path, NULL, &body, &status, e) < 0)
		return -1;
	free(body);
	return 0;
}

/* Runs count requests with at most `parallel` in flight on a curl multi handle: request i is
 * method + path_of(i) with body_of(i) (may be NULL). results[i] (may be NULL) receives 0 or -1.
 * Returns the number that failed; e describes the first failure. */
struct batch_req {
	const char *method;
	char path[512];
	char *body; /* owned */
};

static int run_batch(struct nomad *n, struct batch_req *reqs, size_t count, int parallel, int *results,
		     struct perr *e)
{
	struct slot {
		CURL *c;
		struct curl_slist *headers;
		struct buf b;
		size_t index;
	} *slots;
	CURLM *multi = curl_multi_init();
	int failed = 0, running = 0;
	size_t next = 0;
	if (parallel < 1)
		parallel = 1;
	slots = calloc((size_t)parallel, sizeof *slots);
	if (!multi || !slots) {
		curl_multi_cleanup(multi);
		free(slots);
		return perr_set(e, PERR_UNKNOWN, "out of memory"), (int)count;
	}
	perr_clear(e);
	do {
		for (int i = 0; i < parallel && next < count; i++) {
			if (slots[i].c)
				continue;
			char url[4096];
			struct batch_req *rq = &reqs[next];
			make_url(n, rq->path, url, sizeof url);
			slots[i].c = curl_easy_init();
			slots[i].index = next++;
			memset(&slots[i].b, 0, sizeof slots[i].b);
			curl_easy_setopt(slots[i].c, CURLOPT_URL, url);
			curl_easy_setopt(slots[i].c, CURLOPT_CUSTOMREQUEST, rq->method);
			if (rq->body) {
				curl_easy_setopt(slots[i].c, CURLOPT_POSTFIELDS, rq->body);
				curl_easy_setopt(slots[i].c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(rq->body));
			}
			curl_easy_setopt(slots[i].c, CURLOPT_WRITEFUNCTION, collect);
			curl_easy_setopt(slots[i].c, CURLOPT_WRITEDATA, &slots[i].b);
			curl_easy_setopt(slots[i].c, CURLOPT_PRIVATE, &slots[i]);
			common_options(n, slots[i].c, &slots[i].headers, rq->body != NULL);
			curl_multi_add_handle(multi, slots[i].c);
		}
		curl_multi_perform(multi, &running);
		CURLMsg *msg;
		int left;
		while ((msg = curl_multi_info_read(multi, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			struct slot *sl;
			long status = 0;
			char what[600];
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&sl);
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
			struct batch_req *rq = &reqs[sl->index];
			snprintf(what, sizeof what, "%s /v1/%s", rq->method, rq->path);
			struct perr one;
			int rc = classify(msg->data.result, status, &sl->b, what, &one);
			if (results)
				results[sl->index] = rc;
			if (rc < 0) {
				if (!failed && e)
					*e = one;
				failed++;
			}
			free(sl->b.p);
			curl_multi_remove_handle(multi, sl->c);
			curl_easy_cleanup(sl->c);
			curl_slist_free_all(sl->headers);
			sl->c = NULL;
			sl->headers = NULL;
		}
		if (running || next < count)
			curl_multi_poll(multi, NULL, 0, 100, NULL);
	} while (running || next < count);
	curl_multi_cleanup(multi);
	free(slots);
	return failed;
}

int nomad_jobs_purge(struct nomad *n, char *const *ids, size_t count, int parallel, struct perr *e)
{
	struct batch_req *reqs = calloc(count + 1, sizeof *reqs);
	if (!reqs)
		return perr_set(e, PERR_UNKNOWN, "out of memory"), (int)count;
	for (size_t i = 0; i < count; i++) {
		char esc[MODEL_RUNNER_ID_MAX * 3];
		escape_path_segment(ids[i], esc, sizeof esc);
		reqs[i].method = "DELETE";
		snprintf(reqs[i].path, sizeof reqs[i].path, "job/%s?purge=true", esc);
	}
	int failed = run_batch(n, reqs, count, parallel, NULL, e);
	free(reqs);
	return failed;
}

int nomad_jobs_register(struct nomad *n, json_object *const *jobs, size_t count, int parallel, int *results,
			struct perr *e)
{
	struct batch_req *reqs = calloc(count + 1, sizeof *reqs);
	if (!reqs)
		return perr_set(e, PERR_UNKNOWN, "out of memory"), (int)count;
	for (size_t i = 0; i < count; i++) {
		json_object *req = json_object_new_object();
		json_object_object_add(req, "Job", json_object_get(jobs[i]));
		reqs[i].method = "PUT";
		snprintf(reqs[i].path, sizeof reqs[i].path, "jobs");
		reqs[i].body = strdup(json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(req);
	}
	int failed = run_batch(n, reqs, count, parallel, results, e);
	for (size_t i = 0; i < count; i++)
		free(reqs[i].body);
	free(reqs);
	return failed;
}

/* ---- allocations ----------------------------------------------------------------------- */

static long long get_time_ns(json_object *o, const char *key)
{
	/* CreateTime/ModifyTime are unix ns integers in allocations */
	return get_int(o, key);
}

int nomad_alloc_from_json(json_object *o, struct nomad_alloc *a, struct perr *e)
{
	memset(a, 0, sizeof *a);
	if (!o || !json_object_is_type(o, json_type_object))
		return perr_set(e, PERR_NOMAD_INTERNAL, "allocation is not an object");
	get_str(o, "ID", a->id, sizeof a->id);
	get_str(o, "JobID", a->job_id, sizeof a->job_id);
	get_str(o, "TaskGroup", a->task_group, sizeof a->task_group);
	get_str(o, "NodeID", a->node_id, sizeof a->node_id);
	get_str(o, "NodeName", a->node_name, sizeof a->node_name);
	get_str(o, "ClientStatus", a->client_status, sizeof a->client_status);
	get_str(o, "DesiredStatus", a->desired_status, sizeof a->desired_status);
	get_str(o, "PreviousAllocation", a->previous_allocation, sizeof a->previous_allocation);
	get_str(o, "NextAllocation", a->next_allocation, sizeof a->next_allocation);
	a->create_time = get_time_ns(o, "CreateTime");
	a->modify_time = get_time_ns(o, "ModifyTime");
	a->modify_index = get_int(o, "ModifyIndex");

	json_object *ts = get(get(o, "TaskStates"), "default-task");
	if (ts) {
		char state[32];
		get_str(ts, "State", state, sizeof state);
		a->task_running = strcmp(state, "running") == 0;
		a->restarts = (int)get_int(ts, "Restarts");
		json_object *events = get(ts, "Events");
		for (size_t i = 0; events && json_object_is_type(events, json_type_array) &&
				   i < json_object_array_length(events);
		     i++) {
			char oom[16];
			get_str(get(json_object_array_get_idx(events, i), "Details"), "oom_killed", oom, sizeof oom);
			if (strcmp(oom, "true") == 0 || strcmp(oom, "1") == 0 || strcasecmp(oom, "t") == 0)
				a->oom_events++;
		}
	}
	json_object *ports = get(get(get(o, "AllocatedResources"), "Shared"), "Ports");
	for (size_t i = 0; ports && json_object_is_type(ports, json_type_array) && i < json_object_array_length(ports) &&
			   a->nports < MODEL_MAX_PORTS;
	     i++) {
		json_object *p = json_object_array_get_idx(ports, i);
		struct mapped_port *mp = &a->ports[a->nports++];
		char ip[64];
		get_str(p, "HostIP", ip, sizeof ip);
		mp->exposed_port = (uint16_t)get_int(p, "To");
		if (strchr(ip, ':'))
			snprintf(mp->host_address, sizeof mp->host_address, "[%s]:%lld", ip, get_int(p, "Value"));
		else
			snprintf(mp->host_address, sizeof mp->host_address, "%s:%lld", ip, get_int(p, "Value"));
	}
	return 0;
}

int nomad_alloc_oom_killed(const struct nomad_alloc *a)
{
	return a->oom_events > 0 && a->oom_events >= a->restarts;
}

int nomad_alloc_terminal(const struct nomad_alloc *a)
{
	return strcmp(a->client_status, "complete") == 0 || strcmp(a->client_status, "failed") == 0 ||
	       strcmp(a->client_status, "lost") == 0 || strcmp(a->desired_status, "stop") == 0 ||
	       strcmp(a->desired_status, "evict") == 0;
}

static int cmp_alloc_newest_first(const void *x, const void *y)
{
	const struct nomad_alloc *a = x, *b = y;
	return a->create_time > b->create_time ? -1 : a->create_time < b->create_time;
}

static int alloc_list(struct nomad *n, const char *path, struct nomad_alloc **out, size_t *count, struct perr *e)
{
	json_object *arr;
	*out = NULL;
	*count = 0;
	if (get_json(n, path, &arr, e) != 0)
		return -1;
	if (!json_object_is_type(arr, json_type_array)) {
		json_object_put(arr);
		return perr_set(e, PERR_NOMAD_INTERNAL, "GET /v1/%s: not a list", path);
	}
	size_t len = json_object_array_length(arr);
	*out = calloc(len + 1, sizeof **out);
	if (!*out) {
		json_object_put(arr);
		return perr_set(e, PERR_UNKNOWN, "out of memory");
	}
	for (size_t i = 0; i < len; i++)
		if (nomad_alloc_from_json(json_object_array_get_idx(arr, i), &(*out)[*count], e) == 0)
			(*count)++;
	json_object_put(arr);
	qsort(*out, *count, sizeof **out, cmp_alloc_newest_first);
	return 0;
}

int nomad_job_allocations(struct nomad *n, const char *job_id, struct nomad_alloc **out, size_t *count,
			  struct perr *e)
{
	char path[512], esc[MODEL_RUNNER_ID_MAX * 3];
	escape_path_segment(job_id, esc, sizeof esc);
	snprintf(path, sizeof path, "job/%s/allocations?all=false", esc);
	return alloc_list(n, path, out, count, e);
}

/* Nomad's allocation list holds stubs: AllocatedResources (the port mappings) is set only when
 * resources=true is asked for (command/agent/alloc_endpoint.go AllocsRequest; structs.go
 * Allocation.Stub fills it only when fields.Resources). The job's allocation list never has it
 * (nomad/job_endpoint.go Allocations calls Stub(nil)): take ports from here or from an event. */
int nomad_allocations(struct nomad *n, struct nomad_alloc **out, size_t *count, struct perr *e)
{
	return alloc_list(n, "allocations?resources=true", out, count, e);
}

int nomad_allocation(struct nomad *n, const char *alloc_id, struct nomad_alloc *out, struct perr *e)
{
	char path[128];
	json_object *o;
	if (!valid_uuidish(alloc_id))
		return 0;
	snprintf(path, sizeof path, "allocation/%s", alloc_id);
	int r = get_json(n, path, &o, e);
	if (r != 0)
		return r == 1 ? 0 : -1;
	r = nomad_alloc_from_json(o, out, e);
	json_object_put(o);
	return r < 0 ? -1 : 1;
}

int nomad_node_status(struct nomad *n, const char *node_id, char *status, size_t cap, struct perr *e)
{
	char path[128];
	json_object *o;
	if (!valid_uuidish(node_id))
		return 0;
	snprintf(path, sizeof path, "node/%s", node_id);
	int r = get_json(n, path, &o, e);
	if (r != 0)
		return r == 1 ? 0 : -1;
	get_str(o, "Status", status, cap);
	json_object_put(o);
	return 1;
}

/* ---- naming ----------------------------------------------------------------------------- */

void nomad_template_job_id(long long env, char *out, size_t cap)
{
	snprintf(out, cap, "template-%lld", env);
}

static int parse_ll(const char *s, size_t n, long long *out)
{
	char buf[24];
	if (n == 0 || n >= sizeof buf)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	memcpy(buf, s, n);
	buf[n] = '\0';
	char *end;
	*out = strtoll(buf, &end, 10);
	return *end == '\0';
}

int nomad_is_template_job_id(const char *id, long long *env)
{
	if (strncmp(id, "template-", 9) != 0)
		return 0;
	return parse_ll(id + 9, strlen(id + 9), env);
}

int nomad_runner_env(const char *id, long long *env)
{
	const char *dash = strchr(id, '-');
	if (!dash || !dash[1])
		return 0;
	return parse_ll(id, (size_t)(dash - id), env);
}

void nomad_new_runner_id(long long env, char *out, size_t cap)
{
	uuid_t u;
	char s[37];
	uuid_generate_time(u); /* version 1, as the reference's runner ids */
	uuid_unparse_lower(u, s);
	snprintf(out, cap, "%lld-%s", env, s);
}
