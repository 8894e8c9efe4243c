/* http: see http.h. Responses are written with FCGX_FPrintF/FCGX_PutStr on the request's out
 * stream; lighttpd turns the "Status:" line into the HTTP status. */
#include "http.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "model.h"

#define DRAIN_CHUNK 65536

int http_req_init(struct http_req *r, FCGX_Request *fcgi, struct perr *e)
{
	memset(r, 0, sizeof *r);
	r->fcgi = fcgi;
	r->method = FCGX_GetParam("REQUEST_METHOD", fcgi->envp);
	if (!r->method)
		r->method = "GET";
	const char *uri = FCGX_GetParam("REQUEST_URI", fcgi->envp);
	if (!uri || !*uri) {
		/* some servers only give SCRIPT_NAME + PATH_INFO */
		const char *sn = FCGX_GetParam("SCRIPT_NAME", fcgi->envp);
		const char *pi = FCGX_GetParam("PATH_INFO", fcgi->envp);
		snprintf(r->path, sizeof r->path, "%s%s", sn ? sn : "", pi ? pi : "");
		r->query = FCGX_GetParam("QUERY_STRING", fcgi->envp);
		if (!r->query)
			r->query = "";
		return 0;
	}
	const char *q = strchr(uri, '?');
	size_t n = q ? (size_t)(q - uri) : strlen(uri);
	if (n >= sizeof r->path)
		return perr_set(e, PERR_BAD_REQUEST, "request path too long");
	memcpy(r->path, uri, n);
	r->path[n] = '\0';
	r->query = q ? q + 1 : "";
	return 0;
}

void http_req_free(struct http_req *r)
{
	free(r->body);
	r->body = NULL;
}

const char *http_param(const struct http_req *r, const char *name)
{
	return FCGX_GetParam(name, r->fcgi->envp);
}

const char *http_header(const struct http_req *r, const char *name)
{
	char key[128] = "HTTP_";
	size_t n = 5;
	for (const char *p = name; *p && n + 1 < sizeof key; p++)
		key[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
	key[n] = '\0';
	return FCGX_GetParam(key, r->fcgi->envp);
}

static void drain(struct http_req *r)
{
	char buf[4096];
	while (FCGX_GetStr(buf, sizeof buf, r->fcgi->in) > 0)
		;
}

int http_read_body(struct http_req *r, size_t max, struct perr *e)
{
	const char *cl = http_param(r, "CONTENT_LENGTH");
	size_t want = cl && *cl ? strtoull(cl, NULL, 10) : 0;
	size_t cap = want ? want : DRAIN_CHUNK, len = 0;
	if (r->body)
		return 0;
	if (want > max) {
		drain(r);
		return perr_set(e, PERR_TOO_LARGE, "request body of %zu bytes exceeds the limit of %zu bytes",
				want, max);
	}
	char *buf = malloc(cap + 1);
	if (!buf)
		return perr_set(e, PERR_UNKNOWN, "out of memory");
	for (;;) {
		if (len == cap) {
			/* at the limit: a body of exactly max bytes ends here, a longer one is refused
			 * (the web server in front enforces the same limit, to the byte) */
			char more;
			if (cap >= max && FCGX_GetStr(&more, 1, r->fcgi->in) <= 0)
				break;
			if (cap >= max) {
				free(buf);
				drain(r);
				return perr_set(e, PERR_TOO_LARGE, "request body exceeds the limit of %zu bytes", max);
			}
			cap = cap * 2 > max ? max : cap * 2;
			char *nb = realloc(buf, cap + 1);
			if (!nb) {
				free(buf);
				return perr_set(e, PERR_UNKNOWN, "out of memory");
			}
			buf = nb;
		}
		int got = FCGX_GetStr(buf + len, (int)(cap - len > DRAIN_CHUNK * 16 ? DRAIN_CHUNK * 16 : cap - len),
				      r->fcgi->in);
		if (got <= 0)
			break;
		len += (size_t)got;
	}
	buf[len] = '\0';
	r->body = buf;
	r->body_len = len;
	return 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int http_unescape(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];
		if (c == '%') {
			if (i + 2 >= n)
				return -1;
			int h = hexval((unsigned char)s[i + 1]), l = hexval((unsigned char)s[i + 2]);
			if (h < 0 || l < 0)
				return -1;
			c = h * 16 + l;
			i += 2;
		}
		if (c == 0 || o + 1 >= cap)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

int http_query(const char *query, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	for (const char *p = query; p && *p;) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		size_t kl = eq ? (size_t)(eq - p) : len;
		if (kl == nl && strncmp(p, name, nl) == 0) {
			if (!eq) {
				out[0] = '\0';
				return 1;
			}
			/* '+' means space in query strings */
			char tmp[HTTP_QUERY_VALUE_MAX];
			size_t vl = len - kl - 1;
			if (vl >= sizeof tmp)
				return -1;
			for (size_t i = 0; i < vl; i++)
				tmp[i] = eq[1 + i] == '+' ? ' ' : eq[1 + i];
			return http_unescape(tmp, vl, out, cap) < 0 ? -1 : 1;
		}
		p = amp ? amp + 1 : NULL;
	}
	return 0;
}

int http_status_of(enum perr_kind kind, const char **error_code)
{
	*error_code = NULL;
	switch (kind) {
	case PERR_OK: return 200;
	case PERR_BAD_REQUEST: return 400;
	case PERR_NOT_FOUND: return 404;
	case PERR_GONE: return 410;
	case PERR_TOO_LARGE: return 413;
	case PERR_FAILED_DEPENDENCY: return 424;
	case PERR_NOMAD_UNREACHABLE: *error_code = "NOMAD_UNREACHABLE"; return 500;
	case PERR_NOMAD_OVERLOAD: *error_code = "NOMAD_OVERLOAD"; return 500;
	case PERR_NOMAD_INTERNAL: *error_code = "NOMAD_INTERNAL_SERVER_ERROR"; return 500;
	case PERR_STORE:
	case PERR_UNKNOWN: *error_code = "UNKNOWN"; return 500;
	}
	*error_code = "UNKNOWN";
	return 500;
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 410: return "Gone";
	case 413: return "Payload Too Large";
	case 424: return "Failed Dependency";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	}
	return "Status";
}

void http_begin(struct http_req *r, int status, const char *headers)
{
	if (r->responded)
		return;
	r->responded = 1;
	r->status = status;
	FCGX_FPrintF(r->fcgi->out, "Status: %d %s\r\n%s\r\n", status, reason(status), headers ? headers : "");
}

void http_respond(struct http_req *r, int status, const char *content_type, const char *body, size_t len)
{
	char headers[256];
	if (r->responded)
		return;
	if (content_type)
		snprintf(headers, sizeof headers, "Content-Type: %s\r\nContent-Length: %zu\r\n", content_type, len);
	else
		snprintf(headers, sizeof headers, "Content-Length: %zu\r\n", len);
	http_begin(r, status, status == 204 ? "" : headers);
	if (len && status != 204)
		FCGX_PutStr(body, (int)len, r->fcgi->out);
}

void http_respond_empty(struct http_req *r, int status)
{
	http_respond(r, status, NULL, "", 0);
}

void http_respond_json(struct http_req *r, int status, const char *json)
{
	if (!json) {
		http_respond(r, 500, "application/json", "{\"message\":\"out of memory\",\"errorCode\":\"UNKNOWN\"}", 48);
		return;
	}
	http_respond(r, status, "application/json", json, strlen(json));
}

void http_respond_error(struct http_req *r, const struct perr *e)
{
	const char *code;
	int status = http_status_of(e->kind, &code);
	char *body = model_render_error(e->msg, code);
	http_respond_json(r, status, body);
	free(body);
}

int http_match(const char *pattern, const char *path, struct http_params *p)
{
	p->n = 0;
	while (*pattern && *path) {
		if (*pattern != '/' || *path != '/')
			return 0;
		pattern++, path++;
		const char *pe = strchr(pattern, '/'), *se = strchr(path, '/');
		size_t pl = pe ? (size_t)(pe - pattern) : strlen(pattern);
		size_t sl = se ? (size_t)(se - path) : strlen(path);
		if (pl > 2 && pattern[0] == '{' && pattern[pl - 1] == '}') {
			if (sl == 0 || p->n >= HTTP_MAX_PARAMS)
				return 0;
			int digits = pl > 6 && strncmp(pattern + pl - 5, ":int}", 5) == 0;
			size_t namelen = pl - 2 - (digits ? 4 : 0);
			if (digits)
				for (size_t i = 0; i < sl; i++)
					if (!isdigit((unsigned char)path[i]))
						return 0;
			if (namelen >= sizeof p->name[0] ||
			    http_unescape(path, sl, p->value[p->n], sizeof p->value[0]) < 0)
				return 0;
			memcpy(p->name[p->n], pattern + 1, namelen);
			p->name[p->n][namelen] = '\0';
			p->n++;
		} else if (pl != sl || strncmp(pattern, path, pl) != 0) {
			return 0;
		}
		pattern += pl;
		path += sl;
	}
	return *pattern == '\0' && *path == '\0';
}

const char *http_get_param(const struct http_params *p, const char *name)
{
	for (int i = 0; i < p->n; i++)
		if (strcmp(p->name[i], name) == 0)
			return p->value[i];
	return NULL;
}

int http_token_equal(const char *presented, const char *expected)
{
	size_t pl = presented ? strlen(presented) : 0, el = strlen(expected);
	unsigned char diff = (unsigned char)(pl != el);
	/* always walk the expected token's length: time does not depend on the presented bytes */
	for (size_t i = 0; i < el; i++)
		diff |= (unsigned char)expected[i] ^ (unsigned char)(i < pl ? presented[i] : 0);
	return diff == 0 && el > 0;
}
