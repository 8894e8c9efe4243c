/* api: see api.h. */
#include "api.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "events.h"
#include "exec.h"
#include "jobspec.h"
#include "log.h"
#include "render.h"
#include "sched.h"
#include "state.h"
#include "util.h"

#define TEXT "text/plain; charset=utf-8"
#define QUERY_VALUE_MAX 4096

static struct api_config cfg;
static struct render_node_info node;

void api_init(const struct api_config *c)
{
	cfg = *c;
	node.http_addr = c->http_addr;
	node.hostname = c->hostname;
	node.cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
	node.memory_mb = node_memory_mb();
	long long mhz = 0;
	FILE *f = fopen("/proc/cpuinfo", "re");
	char line[256];
	while (f && fgets(line, sizeof line, f)) {
		double v;
		if (sscanf(line, "cpu MHz : %lf", &v) == 1) {
			mhz = (long long)v;
			break;
		}
	}
	if (f)
		fclose(f);
	node.cpu_mhz_total = (mhz ? mhz : 2000) * node.cpus;
}

/* ---- responses ---- */

static void error(struct http_conn *c, struct http_req *r, int status, const char *msg)
{
	if (status >= 500)
		log_error("request failed", "method", r->method, "path", r->path, "status",
			  log_int((char[24]){0}, status), "error", msg);
	else
		log_info("request failed", "method", r->method, "path", r->path, "status",
			 log_int((char[24]){0}, status), "error", msg);
	http_respond(c, status, TEXT, NULL, msg, strlen(msg));
}

static uint64_t read_index(void) { return st.index ? st.index : 1; }

static void reply_json(struct http_conn *c, struct http_req *r, json_object *o, int is_read, uint64_t index)
{
	char hdr[160], pretty[8];
	if (is_read)
		snprintf(hdr, sizeof hdr, "X-Nomad-Index: %llu\r\nX-Nomad-Knownleader: true\r\nX-Nomad-Lastcontact: 0\r\n",
			 (unsigned long long)index);
	else
		snprintf(hdr, sizeof hdr, "X-Nomad-Index: %llu\r\n", (unsigned long long)index);
	int is_pretty = 0;
	if (http_query(r, "pretty", pretty, sizeof pretty))
		is_pretty = strcmp(pretty, "0") != 0;
	if (is_pretty) {
		struct buf b = {0};
		buf_adds(&b, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
		buf_adds(&b, "\n");
		http_respond(c, 200, "application/json", hdr, b.p ? b.p : "", b.len);
		buf_free(&b);
	} else {
		const char *s = render_string(o);
		http_respond(c, 200, "application/json", hdr, s, strlen(s));
	}
	json_object_put(o);
}

static void invalid_method(struct http_conn *c, struct http_req *r) { error(c, r, 405, "Invalid method"); }

/* ---- request helpers ---- */

/* Go's strconv.ParseBool */
static int parse_go_bool(const char *s, int *out)
{
	static const char *t[] = {"1", "t", "T", "TRUE", "true", "True", NULL};
	static const char *f[] = {"0", "f", "F", "FALSE", "false", "False", NULL};
	for (int i = 0; t[i]; i++)
		if (strcmp(s, t[i]) == 0) {
			*out = 1;
			return 0;
		}
	for (int i = 0; f[i]; i++)
		if (strcmp(s, f[i]) == 0) {
			*out = 0;
			return 0;
		}
	return -1;
}

/* parseBool of command/agent/http.go: absent = dflt; a bad value is a 500 with its text */
static int query_bool(struct http_conn *c, struct http_req *r, const char *key, int dflt, int *out, int qq)
{
	char v[QUERY_VALUE_MAX];
	*out = dflt;
	if (!http_query(r, key, v, sizeof v) || !v[0])
		return 0;
	if (parse_go_bool(v, out) == 0)
		return 0;
	char msg[QUERY_VALUE_MAX + 200];
	snprintf(msg, sizeof msg,
		 qq ? "Failed to parse value of \"%s\"q (%s) as a bool: strconv.ParseBool: parsing \"%s\": invalid syntax"
		    : "Failed to parse value of \"%s\" (%s) as a bool: strconv.ParseBool: parsing \"%s\": invalid syntax",
		 key, v, v);
	error(c, r, 500, msg);
	return -1;
}

static int valid_go_duration(const char *s)
{
	if (*s == '-' || *s == '+')
		s++;
	if (strcmp(s, "0") == 0)
		return 1;
	if (!*s)
		return 0;
	while (*s) {
		int digits = 0;
		while (isdigit((unsigned char)*s) || *s == '.') {
			digits++;
			s++;
		}
		if (!digits)
			return 0;
		static const char *units[] = {"ns", "us", "\xc2\xb5s", "\xce\xbcs", "ms", "s", "m", "h", NULL};
		int matched = 0;
		for (int i = 0; units[i]; i++) {
			size_t l = strlen(units[i]);
			if (strncmp(s, units[i], l) == 0 && !(l == 1 && s[0] == 'm' && s[1] == 's')) {
				s += l;
				matched = 1;
				break;
			}
		}
		if (!matched)
			return 0;
	}
	return 1;
}

/* s.parse(): blocking-query parameters are validated (nomad-local answers at once). */
static int query_common(struct http_conn *c, struct http_req *r)
{
	char v[QUERY_VALUE_MAX];
	if (http_query(r, "wait", v, sizeof v) && v[0] && !valid_go_duration(v)) {
		http_respond(c, 400, TEXT, NULL, "Invalid wait time", 17);
		return -1;
	}
	if (http_query(r, "index", v, sizeof v) && v[0]) {
		char *end;
		strtoull(v, &end, 10);
		if (*end || v[0] == '-' || v[0] == '+') {
			http_respond(c, 400, TEXT, NULL, "Invalid index", 13);
			return -1;
		}
	}
	return 0;
}

static void query_ns(struct http_req *r, char *ns, size_t cap)
{
	if (!http_query(r, "namespace", ns, cap) || !ns[0])
		snprintf(ns, cap, "default");
}

static int ns_match(const char *want, const char *have) { return strcmp(want, "*") == 0 || strcmp(want, have) == 0; }

/* 0 when allowed; else writes the 403 */
static int acl(struct http_conn *c, struct http_req *r)
{
	if (!cfg.token || !cfg.token[0])
		return 0;
	char tok[512] = "";
	const char *h = http_header(r, "X-Nomad-Token");
	if (h && *h) {
		snprintf(tok, sizeof tok, "%s", h);
	} else if ((h = http_header(r, "Authorization")) && *h) {
		const char *sp = strchr(h, ' ');
		if (sp && strncasecmp(h, "bearer", (size_t)(sp - h)) == 0 && sp - h == 6) {
			while (*sp == ' ')
				sp++;
			snprintf(tok, sizeof tok, "%s", sp);
			tok[strcspn(tok, " ")] = '\0';
		}
	}
	size_t n = strlen(tok);
	while (n && (tok[n - 1] == ' ' || tok[n - 1] == '\t'))
		tok[--n] = '\0';
	if (!tok[0]) {
		error(c, r, 403, "Permission denied");
		return -1;
	}
	if (strcmp(tok, cfg.token) != 0) {
		error(c, r, 403, "ACL token not found");
		return -1;
	}
	return 0;
}

static int token_valid(struct http_req *r)
{
	if (!cfg.token || !cfg.token[0])
		return 1;
	const char *h = http_header(r, "X-Nomad-Token");
	char tok[512] = "";
	if (h)
		snprintf(tok, sizeof tok, "%s", h);
	else if ((h = http_header(r, "Authorization")) && strncasecmp(h, "bearer ", 7) == 0)
		snprintf(tok, sizeof tok, "%s", h + 7);
	tok[strcspn(tok, " \t")] = '\0';
	return strcmp(tok, cfg.token) == 0;
}

/* ---- jobs ---- */

static int cmp_job(const void *a, const void *b)
{
	const struct nl_job *x = *(struct nl_job *const *)a, *y = *(struct nl_job *const *)b;
	int c = strcmp(x->ns, y->ns);
	return c ? c : strcmp(x->id, y->id);
}

static void jobs_list(struct http_conn *c, struct http_req *r)
{
	char ns[256], prefix[1024];
	int meta;
	if (acl(c, r) < 0 || query_common(c, r) < 0 || query_bool(c, r, "meta", 0, &meta, 0) < 0)
		return;
	query_ns(r, ns, sizeof ns);
	http_query(r, "prefix", prefix, sizeof prefix);
	struct nl_job **list = calloc((size_t)st.njobs + 1, sizeof *list);
	int n = 0;
	for (int i = 0; list && i < st.njobs; i++)
		if (ns_match(ns, st.jobs[i]->ns) && strncmp(st.jobs[i]->id, prefix, strlen(prefix)) == 0)
			list[n++] = st.jobs[i];
	if (n > 1)
		qsort(list, (size_t)n, sizeof *list, cmp_job);
	json_object *arr = json_object_new_array();
	for (int i = 0; i < n; i++)
		json_object_array_add(arr, render_job_stub(list[i], meta));
	free(list);
	reply_json(c, r, arr, 1, read_index());
}

static void job_register(struct http_conn *c, struct http_req *r, const char *path_id)
{
	char ns[256] = "", region[256] = "";
	char *err = malloc(JOBSPEC_ERR_MAX);
	struct jobspec_request req;
	if (!err) {
		error(c, r, 500, "out of memory");
		return;
	}
	if (acl(c, r) < 0) {
		free(err);
		return;
	}
	http_query(r, "namespace", ns, sizeof ns);
	http_query(r, "region", region, sizeof region);
	int status = jobspec_register(r->body, r->body_len, r->has_body, ns, region, path_id, &req, err);
	if (status) {
		error(c, r, status, err);
		free(err);
		return;
	}
	if (sched_enforce_index(&req, err, JOBSPEC_ERR_MAX) < 0) {
		json_object_put(req.job);
		error(c, r, 500, err);
		free(err);
		return;
	}
	free(err);
	json_object *resp = sched_register(&req);
	reply_json(c, r, resp, 0, (uint64_t)js_int(resp, "Index", 0));
}

static void job_get(struct http_conn *c, struct http_req *r, const char *id)
{
	char ns[256];
	if (acl(c, r) < 0 || query_common(c, r) < 0)
		return;
	query_ns(r, ns, sizeof ns);
	struct nl_job *j = state_job(ns, id);
	if (!j) {
		char hdr[160];
		snprintf(hdr, sizeof hdr, "X-Nomad-Index: %llu\r\nX-Nomad-Knownleader: true\r\nX-Nomad-Lastcontact: 0\r\n",
			 (unsigned long long)read_index());
		log_info("request failed", "method", r->method, "path", r->path, "status", "404", "error",
			 "job not found");
		http_respond(c, 404, TEXT, hdr, "job not found", 13);
		return;
	}
	reply_json(c, r, json_object_get(j->spec), 1, j->modify_index);
}

static void job_delete(struct http_conn *c, struct http_req *r, const char *id)
{
	char ns[256], v[64];
	int purge, global;
	if (query_bool(c, r, "purge", 0, &purge, 0) < 0 || query_bool(c, r, "global", 0, &global, 0) < 0)
		return;
	if (http_query(r, "eval_priority", v, sizeof v) && v[0]) {
		char *end;
		long p = strtol(v, &end, 10);
		if (*end) {
			char msg[300];
			snprintf(msg, sizeof msg,
				 "Failed to parse value of \"eval_priority\" (%s) as a int: strconv.Atoi: parsing \"%s\": invalid syntax",
				 v, v);
			error(c, r, 500, msg);
			return;
		}
		if (p > 0 && (p < 1 || p > 100)) {
			error(c, r, 400, "Eval priority must be between 1 and 100 inclusively");
			return;
		}
	}
	int nsd;
	if (query_bool(c, r, "no_shutdown_delay", 0, &nsd, 1) < 0)
		return;
	if (acl(c, r) < 0)
		return;
	query_ns(r, ns, sizeof ns);
	json_object *resp = sched_deregister(ns, id, purge);
	reply_json(c, r, resp, 0, (uint64_t)js_int(resp, "Index", 0));
}

static int cmp_alloc_desc(const void *a, const void *b)
{
	const struct nl_alloc *x = *(struct nl_alloc *const *)a, *y = *(struct nl_alloc *const *)b;
	return x->create_index < y->create_index ? 1 : x->create_index > y->create_index ? -1 : 0;
}

static void allocs_reply(struct http_conn *c, struct http_req *r, struct nl_alloc **list, int n, int resources)
{
	if (n > 1)
		qsort(list, (size_t)n, sizeof *list, cmp_alloc_desc);
	json_object *arr = json_object_new_array();
	for (int i = 0; i < n; i++)
		json_object_array_add(arr, render_alloc_stub(list[i], resources));
	reply_json(c, r, arr, 1, read_index());
}

static void job_allocations(struct http_conn *c, struct http_req *r, const char *id)
{
	char ns[256], v[64];
	int all = 0;
	if (strcmp(r->method, "GET") != 0) {
		invalid_method(c, r);
		return;
	}
	if (http_query(r, "all", v, sizeof v) && parse_go_bool(v, &all) < 0)
		all = 0; /* Nomad ignores an unparsable value */
	if (acl(c, r) < 0 || query_common(c, r) < 0)
		return;
	query_ns(r, ns, sizeof ns);
	struct nl_job *j = state_job(ns, id);
	struct nl_alloc **list = calloc((size_t)st.nallocs + 1, sizeof *list);
	int n = 0;
	for (int i = 0; list && i < st.nallocs; i++) {
		struct nl_alloc *a = st.allocs[i];
		if (strcmp(a->job_id, id) || !ns_match(ns, a->ns))
			continue;
		if (!all && j && a->job_create_index != j->create_index)
			continue;
		list[n++] = a;
	}
	/* Stub(nil): a job's allocation list never carries AllocatedResources, whatever is asked
	 * (nomad/job_endpoint.go Allocations) */
	allocs_reply(c, r, list, n, 0);
	free(list);
}

static void job_summary(struct http_conn *c, struct http_req *r, const char *id)
{
	char ns[256];
	if (strcmp(r->method, "GET") != 0) {
		invalid_method(c, r);
		return;
	}
	if (acl(c, r) < 0 || query_common(c, r) < 0)
		return;
	query_ns(r, ns, sizeof ns);
	struct nl_job *j = state_job(ns, id);
	if (!j) {
		error(c, r, 404, "job not found");
		return;
	}
	reply_json(c, r, render_job_summary(j), 1, read_index());
}

static void job_evaluations(struct http_conn *c, struct http_req *r, const char *id)
{
	char ns[256];
	if (strcmp(r->method, "GET") != 0) {
		invalid_method(c, r);
		return;
	}
	if (acl(c, r) < 0 || query_common(c, r) < 0)
		return;
	query_ns(r, ns, sizeof ns);
	json_object *arr = json_object_new_array();
	for (int i = 0; i < st.nevals; i++)
		if (strcmp(st.evals[i]->job_id, id) == 0 && ns_match(ns, st.evals[i]->ns))
			json_object_array_add(arr, render_eval(st.evals[i]));
	reply_json(c, r, arr, 1, read_index());
}

static int has_suffix(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && strcmp(s + a - b, suf) == 0;
}

static void job_specific(struct http_conn *c, struct http_req *r, const char *rest)
{
	static const char *unsupported[] = {"/evaluate", "/periodic/force", "/plan", "/dispatch", "/dispatch/payload",
					    "/versions", "/revert", "/deployments", "/deployment", "/stable",
					    "/scale", "/services", "/submission", "/actions", "/action", NULL};
	char id[1024];
	if (has_suffix(rest, "/allocations")) {
		snprintf(id, sizeof id, "%.*s", (int)(strlen(rest) - 12), rest);
		job_allocations(c, r, id);
		return;
	}
	if (has_suffix(rest, "/summary")) {
		snprintf(id, sizeof id, "%.*s", (int)(strlen(rest) - 8), rest);
		job_summary(c, r, id);
		return;
	}
	if (has_suffix(rest, "/evaluations")) {
		snprintf(id, sizeof id, "%.*s", (int)(strlen(rest) - 12), rest);
		job_evaluations(c, r, id);
		return;
	}
	for (int i = 0; unsupported[i]; i++)
		if (has_suffix(rest, unsupported[i])) {
			error(c, r, 404, "resource not found");
			return;
		}
	if (strcmp(r->method, "GET") == 0)
		job_get(c, r, rest);
	else if (strcmp(r->method, "PUT") == 0 || strcmp(r->method, "POST") == 0)
		job_register(c, r, rest);
	else if (strcmp(r->method, "DELETE") == 0)
		job_delete(c, r, rest);
	else
		invalid_method(c, r);
}

/* ---- allocations, evaluations, nodes ---- */

static void allocs_list(struct http_conn *c, struct http_req *r)
{
	char ns[256], prefix[128], v[64];
	if (strcmp(r->method, "GET") != 0) {
		invalid_method(c, r);
		return;
	}
	if (acl(c, r) < 0 || query_common(c, r) < 0)
		return;
	query_ns(r, ns, sizeof ns);
	http_query(r, "prefix", prefix, sizeof prefix);
	int resources = 0;
	if (http_query(r, "resources", v, sizeof v) && v[0] && parse_go_bool(v, &resources) < 0) {
		char msg[300];
		snprintf(msg, sizeof msg,
			 "Failed to parse value of \"resources\" (%s) as a bool: strconv.ParseBool: parsing \"%s\": invalid syntax",
			 v, v);
		error(c, r, 500, msg);
		return;
	}
	struct nl_alloc **list = calloc((size_t)st.nallocs + 1, sizeof *list);
	int n = 0;
	for (int i = 0; list && i < st.nallocs; i++)
		if (ns_match(ns, st.allocs[i]->ns) && strncmp(st.allocs[i]->id, prefix, strlen(prefix)) == 0)
			list[n++] = st.allocs[i];
	allocs_reply(c, r, list, n, resources);
	free(list);
}

static void alloc_get(struct http_conn *c, struct http_req *r, const char *rest)
{
	if (strchr(rest, '/')) {
		error(c, r, 404, "resource not found");
		return;
	}
	if (strcmp(r->method, "GET") != 0) {
		invalid_method(c, r);
		return;
	}
	if (acl(c, r) < 0 || query_common(c, r) < 0)
		return;
	struct nl_alloc *a = state_alloc(rest);
	if (!a) {
		error(c, r, 404, "alloc not found");
		return;
	}
	reply_json(c, r, render_alloc(a, 1), 1, a->modify_index);
}

static void evals_list(struct http_conn *c, struct http_req *r)
{
	char ns[256];
	if (strcmp(r->method, "GET") != 0) {
		invalid_method(c, r);
		return;
	}
	if (acl(c, r) < 0 || query_common(c, r) < 0)
		return;
	query_ns(r, ns, sizeof ns);
	json_object *arr = json_object_new_array();
	for (int i = 0; i < st.nevals; i++)
		if (ns_match(ns, st.evals[i]->ns))
			json_object_array_add(arr, render_eval(st.evals[i]));
	reply_json(c, r, arr, 1, read_index());
}

static void eval_get(struct http_conn *c, struct http_req *r, const char *rest)
{
	if (strchr(rest, '/')) {
		error(c, r, 404, "resource not found");
		return;
	}
	if (strcmp(r->method, "GET") != 0) {
		invalid_method(c, r);
		return;
	}
	if (acl(c, r) < 0 || query_common(c, r) < 0)
		return;
	struct nl_eval *e = state_eval(rest);
	if (!e) {
		error(c, r, 404, "eval not found");
		return;
	}
	reply_json(c, r, render_eval(e), 1, e->modify_index);
}

static void node_get(struct http_conn *c, struct http_req *r, const char *rest)
{
	char id[128];
	const char *slash = strchr(rest, '/');
	snprintf(id, sizeof id, "%.*s", slash ? (int)(slash - rest) : (int)strlen(rest), rest);
	if (slash && strcmp(slash, "/allocations") != 0) {
		error(c, r, 404, "resource not found");
		return;
	}
	if (strcmp(r->method, "GET") != 0) {
		invalid_method(c, r);
		return;
	}
	if (acl(c, r) < 0 || query_common(c, r) < 0)
		return;
	/* Nomad also resolves an unambiguous ID prefix here */
	if (!id[0] || strncmp(st.node_id, id, strlen(id)) != 0) {
		error(c, r, 404, "node not found");
		return;
	}
	if (slash) {
		json_object *arr = json_object_new_array();
		for (int i = 0; i < st.nallocs; i++)
			json_object_array_add(arr, render_alloc(st.allocs[i], 1));
		reply_json(c, r, arr, 1, read_index());
		return;
	}
	reply_json(c, r, render_node(&node), 1, 1);
}

static void nodes_list(struct http_conn *c, struct http_req *r)
{
	if (strcmp(r->method, "GET") != 0) {
		invalid_method(c, r);
		return;
	}
	if (acl(c, r) < 0 || query_common(c, r) < 0)
		return;
	json_object *arr = json_object_new_array();
	json_object_array_add(arr, render_node_stub(&node));
	reply_json(c, r, arr, 1, 1);
}

/* ---- event stream ---- */

static void event_stream(struct http_conn *c, struct http_req *r)
{
	char v[QUERY_VALUE_MAX], ns[256];
	if (strcmp(r->method, "GET") != 0) {
		invalid_method(c, r);
		return;
	}
	long long index = 0;
	if (http_query(r, "index", v, sizeof v) && v[0]) {
		char *end;
		index = strtoll(v, &end, 10);
		if (*end || (v[0] == '+' && 0)) {
			char msg[QUERY_VALUE_MAX + 100];
			snprintf(msg, sizeof msg, "Unable to parse index: strconv.Atoi: parsing \"%s\": invalid syntax", v);
			error(c, r, 400, msg);
			return;
		}
	}
	struct ev_topic topics[EVENTS_MAX_TOPICS];
	int nt = 0;
	size_t pos = 0;
	while (http_query_next(r, "topic", &pos, v, sizeof v)) {
		char *colon = strchr(v, ':');
		if (colon && strchr(colon + 1, ':')) {
			char msg[QUERY_VALUE_MAX + 200];
			snprintf(msg, sizeof msg,
				 "Invalid topic query: error parsing topics: Invalid key value pair for topic, topic: %s", v);
			error(c, r, 400, msg);
			return;
		}
		if (nt == EVENTS_MAX_TOPICS)
			continue;
		if (colon) {
			*colon = '\0';
			snprintf(topics[nt].topic, sizeof topics[nt].topic, "%s", v);
			snprintf(topics[nt].key, sizeof topics[nt].key, "%s", colon + 1);
		} else {
			snprintf(topics[nt].topic, sizeof topics[nt].topic, "%s", v);
			snprintf(topics[nt].key, sizeof topics[nt].key, "*");
		}
		nt++;
	}
	if (cfg.token && cfg.token[0] && !token_valid(r)) {
		error(c, r, 403, "Permission denied");
		return;
	}
	query_ns(r, ns, sizeof ns);
	log_debug("event stream subscribed", "peer", http_peer(c), "namespace", ns);
	events_subscribe(c, ns, topics, nt, index < 0 ? 0 : (uint64_t)index);
}

/* ---- router ---- */

static int starts(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

void api_handle(struct http_conn *c, struct http_req *r)
{
	const char *p = r->path;
	log_debug("request", "method", r->method, "path", p, "peer", http_peer(c));
	if (strcmp(p, "/v1/jobs") == 0) {
		if (strcmp(r->method, "GET") == 0)
			jobs_list(c, r);
		else if (strcmp(r->method, "PUT") == 0 || strcmp(r->method, "POST") == 0)
			job_register(c, r, NULL);
		else
			invalid_method(c, r);
	} else if (strcmp(p, "/v1/jobs/parse") == 0) {
		if (strcmp(r->method, "PUT") != 0 && strcmp(r->method, "POST") != 0)
			invalid_method(c, r);
		else
			error(c, r, 400, "Failed to parse job: nomad-local does not parse HCL; register JSON jobs");
	} else if (starts(p, "/v1/job/")) {
		job_specific(c, r, p + 8);
	} else if (strcmp(p, "/v1/allocations") == 0) {
		allocs_list(c, r);
	} else if (starts(p, "/v1/allocation/")) {
		alloc_get(c, r, p + 15);
	} else if (strcmp(p, "/v1/evaluations") == 0) {
		evals_list(c, r);
	} else if (starts(p, "/v1/evaluation/")) {
		eval_get(c, r, p + 15);
	} else if (strcmp(p, "/v1/nodes") == 0) {
		nodes_list(c, r);
	} else if (starts(p, "/v1/node/")) {
		node_get(c, r, p + 9);
	} else if (strcmp(p, "/v1/agent/self") == 0) {
		if (strcmp(r->method, "GET") != 0) {
			invalid_method(c, r);
			return;
		}
		if (acl(c, r) < 0)
			return;
		reply_json(c, r, render_agent_self(&node, cfg.token && cfg.token[0]), 1, read_index());
	} else if (strcmp(p, "/v1/status/leader") == 0) {
		static const char leader[] = "\"127.0.0.1:4647\"";
		http_respond(c, 200, "application/json", NULL, leader, sizeof leader - 1);
	} else if (strcmp(p, "/v1/event/stream") == 0) {
		event_stream(c, r);
	} else if (starts(p, "/v1/client/allocation/")) {
		const char *rest = p + 22, *slash = strchr(rest, '/');
		if (slash && strcmp(slash, "/exec") == 0 && slash > rest) {
			char id[64];
			snprintf(id, sizeof id, "%.*s", (int)(slash - rest), rest);
			exec_handle(c, r, id, token_valid(r));
		} else {
			error(c, r, 404, "resource not found");
		}
	} else {
		/* Nomad's root fall-through: 404 without a body */
		log_info("request for unknown path", "method", r->method, "path", p);
		http_respond(c, 404, NULL, NULL, "", 0);
	}
}
