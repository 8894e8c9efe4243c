/* model: see model.h. Each request body has one parse function that walks the top-level
 * object's keys (case-insensitively, later duplicates win, like Go) and converts each known
 * field through a typed getter; every getter produces Go's error text for the field it was
 * given. json-c saturates integers that overflow 64 bits, so the saturation values themselves
 * are treated as overflow: INT64_MIN/INT64_MAX for signed and UINT64_MAX for unsigned fields
 * are rejected (harmless: no sane request carries them). */
#include "model.h"

#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <libwebsockets.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define JSON_DEPTH 64 /* nesting deeper than this is rejected by the tokener */

/* ---- parsing ---------------------------------------------------------------------------- */

/* Parses the first JSON value of body. Returns 0 with *out set (NULL for a JSON null). */
static int parse_json(const char *body, size_t len, json_object **out, struct perr *e)
{
	size_t i = 0;
	while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
		i++;
	if (i == len)
		return perr_set(e, PERR_BAD_REQUEST, "EOF");
	if (len > INT_MAX)
		return perr_set(e, PERR_TOO_LARGE, "request body too large");
	json_tokener *tok = json_tokener_new_ex(JSON_DEPTH);
	if (!tok)
		return perr_set(e, PERR_UNKNOWN, "out of memory");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS);
	json_object *o = json_tokener_parse_ex(tok, body, (int)len);
	enum json_tokener_error err = json_tokener_get_error(tok);
	if (err == json_tokener_continue) {
		/* the body ended inside or right after a value: the NUL terminates a bare number/literal */
		o = json_tokener_parse_ex(tok, "", 1);
		err = json_tokener_get_error(tok);
		if (err == json_tokener_error_parse_eof || err == json_tokener_continue) {
			json_tokener_free(tok);
			return perr_set(e, PERR_BAD_REQUEST, "unexpected EOF");
		}
	}
	if (err != json_tokener_success) {
		size_t at = json_tokener_get_parse_end(tok);
		json_tokener_free(tok);
		if (err == json_tokener_error_depth)
			return perr_set(e, PERR_BAD_REQUEST, "exceeded max depth");
		if (at >= len)
			return perr_set(e, PERR_BAD_REQUEST, "unexpected EOF");
		unsigned char c = (unsigned char)body[at];
		if (isprint(c))
			return perr_set(e, PERR_BAD_REQUEST, "invalid character '%c' %s", c,
					at == i ? "looking for beginning of value" : "in JSON input");
		return perr_set(e, PERR_BAD_REQUEST, "invalid character '\\x%02x' %s", c,
				at == i ? "looking for beginning of value" : "in JSON input");
	}
	json_tokener_free(tok);
	*out = o;
	return 0;
}

/* Go's name for the JSON type of v, as in "cannot unmarshal <this> into ...". */
static const char *go_json_type(json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_string: return "string";
	case json_type_boolean: return "bool";
	case json_type_object: return "object";
	case json_type_array: return "array";
	case json_type_int:
	case json_type_double: return "number";
	default: return "null";
	}
}

static int type_error(struct perr *e, json_object *v, const char *field, const char *gotype)
{
	if (json_object_is_type(v, json_type_double))
		return perr_set(e, PERR_BAD_REQUEST,
				"json: cannot unmarshal number %s into Go struct field %s of type %s",
				json_object_get_string(v), field, gotype);
	return perr_set(e, PERR_BAD_REQUEST, "json: cannot unmarshal %s into Go struct field %s of type %s",
			go_json_type(v), field, gotype);
}

static int get_int64(json_object *v, const char *field, long long *out, struct perr *e)
{
	if (!v)
		return 0; /* null: keep the zero value */
	if (!json_object_is_type(v, json_type_int))
		return type_error(e, v, field, "int");
	long long n = (long long)json_object_get_int64(v);
	if (n == LLONG_MAX || n == LLONG_MIN)
		return perr_set(e, PERR_BAD_REQUEST,
				"json: cannot unmarshal number %s into Go struct field %s of type int (out of range)",
				json_object_get_string(v), field);
	*out = n;
	return 0;
}

static int get_uint(json_object *v, const char *field, const char *gotype, unsigned long long max,
		    unsigned long long *out, struct perr *e)
{
	if (!v)
		return 0;
	if (!json_object_is_type(v, json_type_int))
		return type_error(e, v, field, gotype);
	if (json_object_get_int64(v) < 0)
		return perr_set(e, PERR_BAD_REQUEST,
				"json: cannot unmarshal number %s into Go struct field %s of type %s",
				json_object_get_string(v), field, gotype);
	unsigned long long n = (unsigned long long)json_object_get_uint64(v);
	if (n == ULLONG_MAX || n > max)
		return perr_set(e, PERR_BAD_REQUEST,
				"json: cannot unmarshal number %s into Go struct field %s of type %s",
				json_object_get_string(v), field, gotype);
	*out = n;
	return 0;
}

static int get_bool(json_object *v, const char *field, int *out, struct perr *e)
{
	if (!v)
		return 0;
	if (!json_object_is_type(v, json_type_boolean))
		return type_error(e, v, field, "bool");
	*out = json_object_get_boolean(v) ? 1 : 0;
	return 0;
}

/* Returns the string (owned by v) or NULL for null; -1 on a type error. */
static int get_string(json_object *v, const char *field, const char **s, size_t *len, struct perr *e)
{
	*s = NULL;
	*len = 0;
	if (!v)
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return type_error(e, v, field, "string");
	*s = json_object_get_string(v);
	*len = (size_t)json_object_get_string_len(v);
	return 0;
}

static char *dup_mem(const char *s, size_t len)
{
	char *p = malloc(len + 1);
	if (p) {
		if (len)
			memcpy(p, s, len);
		p[len] = '\0';
	}
	return p;
}

/* The top-level value must be an object (or null = all defaults). */
static int expect_object(json_object *root, const char *gotype, struct perr *e)
{
	if (root && !json_object_is_type(root, json_type_object))
		return perr_set(e, PERR_BAD_REQUEST, "json: cannot unmarshal %s into Go value of type %s",
				go_json_type(root), gotype);
	return 0;
}

int model_parse_environment(const char *body, size_t len, struct environment *out, struct perr *e)
{
	json_object *root = NULL;
	long long id = out->id;
	memset(out, 0, sizeof *out);
	out->id = id;
	out->ports_null = 1;
	if (parse_json(body, len, &root, e) < 0)
		return -1;
	int rc = expect_object(root, "dto.ExecutionEnvironmentRequest", e);
	if (root && rc == 0) {
	json_object_object_foreach(root, key, v)
	{
		if (rc < 0)
			break;
		if (strcasecmp(key, "prewarmingPoolSize") == 0)
			rc = get_uint(v, "ExecutionEnvironmentRequest.prewarmingPoolSize", "uint", ULLONG_MAX,
				      &out->prewarming_pool_size, e);
		else if (strcasecmp(key, "cpuLimit") == 0)
			rc = get_uint(v, "ExecutionEnvironmentRequest.cpuLimit", "uint", ULLONG_MAX,
				      &out->cpu_limit, e);
		else if (strcasecmp(key, "memoryLimit") == 0)
			rc = get_uint(v, "ExecutionEnvironmentRequest.memoryLimit", "uint", ULLONG_MAX,
				      &out->memory_limit, e);
		else if (strcasecmp(key, "networkAccess") == 0)
			rc = get_bool(v, "ExecutionEnvironmentRequest.networkAccess", &out->network_access, e);
		else if (strcasecmp(key, "image") == 0) {
			const char *s;
			size_t n;
			rc = get_string(v, "ExecutionEnvironmentRequest.image", &s, &n, e);
			if (rc == 0 && s && (n >= sizeof out->image || memchr(s, '\0', n)))
				rc = perr_set(e, PERR_BAD_REQUEST, "image: longer than %zu bytes or contains NUL",
					      sizeof out->image - 1);
			else if (rc == 0)
				snprintf(out->image, sizeof out->image, "%s", s ? s : "");
		} else if (strcasecmp(key, "exposedPorts") == 0) {
			if (!v) {
				out->ports_null = 1;
				out->nports = 0;
				continue;
			}
			if (!json_object_is_type(v, json_type_array)) {
				rc = type_error(e, v, "ExecutionEnvironmentRequest.exposedPorts", "[]uint16");
				continue;
			}
			size_t n = json_object_array_length(v);
			if (n > MODEL_MAX_PORTS) {
				rc = perr_set(e, PERR_BAD_REQUEST, "exposedPorts: at most %d ports", MODEL_MAX_PORTS);
				continue;
			}
			out->ports_null = 0;
			out->nports = 0;
			for (size_t i = 0; i < n && rc == 0; i++) {
				unsigned long long p = 0;
				rc = get_uint(json_object_array_get_idx(v, i), "ExecutionEnvironmentRequest.exposedPorts",
					      "uint16", 65535, &p, e);
				out->ports[out->nports++] = (uint16_t)p;
			}
		}
	}
	}
	json_object_put(root);
	return rc;
}

int model_parse_runner_request(const char *body, size_t len, struct runner_request *out, struct perr *e)
{
	json_object *root = NULL;
	memset(out, 0, sizeof *out);
	if (parse_json(body, len, &root, e) < 0)
		return -1;
	int rc = expect_object(root, "dto.RunnerRequest", e);
	if (root && rc == 0) {
	json_object_object_foreach(root, key, v)
	{
		if (rc < 0)
			break;
		if (strcasecmp(key, "executionEnvironmentId") == 0)
			rc = get_int64(v, "RunnerRequest.executionEnvironmentId", &out->environment_id, e);
		else if (strcasecmp(key, "inactivityTimeout") == 0)
			rc = get_int64(v, "RunnerRequest.inactivityTimeout", &out->inactivity_timeout, e);
	}
	}
	json_object_put(root);
	return rc;
}

void model_execution_free(struct execution_request *r)
{
	free(r->command);
	for (size_t i = 0; i < r->nenv; i++) {
		free(r->env[i].name);
		free(r->env[i].value);
	}
	free(r->env);
	memset(r, 0, sizeof *r);
}

static int parse_env_map(json_object *v, struct execution_request *out, struct perr *e)
{
	if (!v)
		return 0;
	if (!json_object_is_type(v, json_type_object))
		return type_error(e, v, "ExecutionRequest.environment", "map[string]string");
	for (size_t i = 0; i < out->nenv; i++) {
		free(out->env[i].name);
		free(out->env[i].value);
	}
	free(out->env);
	out->nenv = 0;
	out->env = calloc((size_t)json_object_object_length(v) + 1, sizeof *out->env);
	if (!out->env)
		return perr_set(e, PERR_UNKNOWN, "out of memory");
	json_object_object_foreach(v, name, val)
	{
		const char *s;
		size_t n;
		if (val && !json_object_is_type(val, json_type_string))
			return type_error(e, val, "ExecutionRequest.environment", "string");
		if (get_string(val, "ExecutionRequest.environment", &s, &n, e) < 0)
			return -1;
		struct env_var *ev = &out->env[out->nenv++];
		ev->name = dup_mem(name, strlen(name));
		ev->value = dup_mem(s ? s : "", n);
		if (!ev->name || !ev->value)
			return perr_set(e, PERR_UNKNOWN, "out of memory");
	}
	return 0;
}

int model_parse_execution_request(const char *body, size_t len, struct execution_request *out,
				  struct perr *e)
{
	json_object *root = NULL;
	memset(out, 0, sizeof *out);
	if (parse_json(body, len, &root, e) < 0)
		return -1;
	int rc = expect_object(root, "dto.ExecutionRequest", e);
	if (root && rc == 0) {
	json_object_object_foreach(root, key, v)
	{
		if (rc < 0)
			break;
		if (strcasecmp(key, "command") == 0) {
			const char *s;
			size_t n;
			rc = get_string(v, "ExecutionRequest.command", &s, &n, e);
			if (rc == 0) {
				free(out->command);
				out->command = dup_mem(s ? s : "", n);
				out->command_len = n;
			}
		} else if (strcasecmp(key, "privilegedExecution") == 0) {
			rc = get_bool(v, "ExecutionRequest.privilegedExecution", &out->privileged, e);
		} else if (strcasecmp(key, "timeLimit") == 0) {
			rc = get_int64(v, "ExecutionRequest.timeLimit", &out->time_limit, e);
		} else if (strcasecmp(key, "environment") == 0) {
			rc = parse_env_map(v, out, e);
		}
	}
	}
	json_object_put(root);
	if (rc == 0 && !out->command && !(out->command = calloc(1, 1)))
		rc = perr_set(e, PERR_UNKNOWN, "out of memory");
	if (rc < 0)
		model_execution_free(out);
	return rc;
}

void model_files_free(struct files_request *r)
{
	for (size_t i = 0; i < r->ndelete; i++)
		free(r->delete_paths[i]);
	free(r->delete_paths);
	for (size_t i = 0; i < r->ncopy; i++) {
		free(r->copy[i].path);
		free(r->copy[i].content);
	}
	free(r->copy);
	memset(r, 0, sizeof *r);
}

static int is_b64(unsigned char c)
{
	return isalnum(c) || c == '+' || c == '/';
}

/* Go's base64.StdEncoding: padded, '\r' and '\n' ignored, anything else outside the alphabet
 * is "illegal base64 data at input byte N". Validation here, decoding by libwebsockets. */
static int decode_b64(const char *s, size_t n, unsigned char **out, size_t *outlen, struct perr *e)
{
	char *clean = malloc(n + 1);
	size_t m = 0, pad = 0;
	if (!clean)
		return perr_set(e, PERR_UNKNOWN, "out of memory");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\r' || c == '\n')
			continue;
		if (c == '=') {
			pad++;
		} else if (!is_b64(c) || pad) {
			free(clean);
			return perr_set(e, PERR_BAD_REQUEST, "illegal base64 data at input byte %zu", i);
		}
		clean[m++] = (char)c;
	}
	clean[m] = '\0';
	if (m % 4 != 0 || pad > 2) {
		free(clean);
		return perr_set(e, PERR_BAD_REQUEST, "illegal base64 data at input byte %zu", m);
	}
	*outlen = 0;
	*out = NULL;
	if (m == 0) {
		free(clean);
		return 0;
	}
	/* libwebsockets wants slack after the decoded bytes (it NUL-terminates in blocks) */
	size_t cap = m / 4 * 3 + 8;
	*out = malloc(cap);
	int r = *out && m <= INT_MAX / 2 ? lws_b64_decode_string_len(clean, (int)m, (char *)*out, (int)cap) : -1;
	free(clean);
	if (r < 0 || (size_t)r != m / 4 * 3 - pad) {
		free(*out);
		*out = NULL;
		return perr_set(e, PERR_BAD_REQUEST, "illegal base64 data at input byte 0");
	}
	*outlen = (size_t)r;
	return 0;
}

static int parse_copy_list(json_object *v, struct files_request *out, struct perr *e)
{
	if (!v)
		return 0;
	if (!json_object_is_type(v, json_type_array))
		return type_error(e, v, "UpdateFileSystemRequest.copy", "[]dto.File");
	size_t n = json_object_array_length(v);
	out->copy = calloc(n + 1, sizeof *out->copy);
	if (!out->copy)
		return perr_set(e, PERR_UNKNOWN, "out of memory");
	for (size_t i = 0; i < n; i++) {
		json_object *f = json_object_array_get_idx(v, i);
		struct file_copy *fc = &out->copy[out->ncopy++];
		if (f && !json_object_is_type(f, json_type_object))
			return type_error(e, f, "UpdateFileSystemRequest.copy", "dto.File");
		if (f) {
		json_object_object_foreach(f, key, val)
		{
			const char *s;
			size_t len;
			if (strcasecmp(key, "path") == 0) {
				if (get_string(val, "UpdateFileSystemRequest.copy.path", &s, &len, e) < 0)
					return -1;
				free(fc->path);
				fc->path = dup_mem(s ? s : "", len);
				if (!fc->path)
					return perr_set(e, PERR_UNKNOWN, "out of memory");
			} else if (strcasecmp(key, "content") == 0) {
				if (get_string(val, "UpdateFileSystemRequest.copy.content", &s, &len, e) < 0)
					return -1;
				free(fc->content);
				fc->content = NULL;
				fc->len = 0;
				if (s && decode_b64(s, len, &fc->content, &fc->len, e) < 0)
					return -1;
			}
		}
		}
		if (!fc->path && !(fc->path = calloc(1, 1)))
			return perr_set(e, PERR_UNKNOWN, "out of memory");
	}
	return 0;
}

static int parse_delete_list(json_object *v, struct files_request *out, struct perr *e)
{
	if (!v)
		return 0;
	if (!json_object_is_type(v, json_type_array))
		return type_error(e, v, "UpdateFileSystemRequest.delete", "[]dto.FilePath");
	size_t n = json_object_array_length(v);
	out->delete_paths = calloc(n + 1, sizeof *out->delete_paths);
	if (!out->delete_paths)
		return perr_set(e, PERR_UNKNOWN, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const char *s;
		size_t len;
		if (get_string(json_object_array_get_idx(v, i), "UpdateFileSystemRequest.delete", &s, &len, e) < 0)
			return -1;
		if (!(out->delete_paths[out->ndelete++] = dup_mem(s ? s : "", len)))
			return perr_set(e, PERR_UNKNOWN, "out of memory");
	}
	return 0;
}

int model_parse_files_request(const char *body, size_t len, struct files_request *out, struct perr *e)
{
	json_object *root = NULL;
	memset(out, 0, sizeof *out);
	if (parse_json(body, len, &root, e) < 0)
		return -1;
	int rc = expect_object(root, "dto.UpdateFileSystemRequest", e);
	if (root && rc == 0) {
	json_object_object_foreach(root, key, v)
	{
		if (rc < 0)
			break;
		if (strcasecmp(key, "delete") == 0) {
			for (size_t i = 0; i < out->ndelete; i++)
				free(out->delete_paths[i]);
			free(out->delete_paths);
			out->delete_paths = NULL;
			out->ndelete = 0;
			rc = parse_delete_list(v, out, e);
		} else if (strcasecmp(key, "copy") == 0) {
			for (size_t i = 0; i < out->ncopy; i++) {
				free(out->copy[i].path);
				free(out->copy[i].content);
			}
			free(out->copy);
			out->copy = NULL;
			out->ncopy = 0;
			rc = parse_copy_list(v, out, e);
		}
	}
	}
	json_object_put(root);
	if (rc < 0)
		model_files_free(out);
	return rc;
}

int model_parse_env_id(const char *s, long long *out, struct perr *e)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (!*s || *end)
		return perr_set(e, PERR_BAD_REQUEST, "strconv.Atoi: parsing \"%s\": invalid syntax", s);
	if (errno == ERANGE)
		return perr_set(e, PERR_BAD_REQUEST, "strconv.Atoi: parsing \"%s\": value out of range", s);
	*out = v;
	return 0;
}

int model_parse_bool(const char *s, int def, int *out, struct perr *e)
{
	static const char *yes[] = {"1", "t", "T", "TRUE", "true", "True"};
	static const char *no[] = {"0", "f", "F", "FALSE", "false", "False"};
	if (!s || !*s) {
		*out = def;
		return 0;
	}
	for (size_t i = 0; i < 6; i++) {
		if (strcmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return perr_set(e, PERR_BAD_REQUEST, "strconv.ParseBool: parsing \"%s\": invalid syntax", s);
}

/* ---- rendering -------------------------------------------------------------------------- */

static char *render(json_object *o)
{
	if (!o)
		return NULL;
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	char *r = s ? strdup(s) : NULL;
	json_object_put(o);
	return r;
}

static json_object *ports_array(const struct environment *env)
{
	if (env->ports_null)
		return NULL;
	json_object *a = json_object_new_array();
	for (int i = 0; i < env->nports; i++)
		json_object_array_add(a, json_object_new_int(env->ports[i]));
	return a;
}

char *model_ports_to_json(const struct environment *env)
{
	json_object *a = ports_array(env);
	return a ? render(a) : strdup("null");
}

int model_ports_from_json(const char *s, struct environment *env, struct perr *e)
{
	json_object *a = NULL;
	env->ports_null = 1;
	env->nports = 0;
	if (!s || !*s)
		return 0;
	if (parse_json(s, strlen(s), &a, e) < 0)
		return -1;
	if (!a)
		return 0;
	int rc = 0;
	if (!json_object_is_type(a, json_type_array) || json_object_array_length(a) > MODEL_MAX_PORTS) {
		rc = perr_set(e, PERR_UNKNOWN, "stored exposedPorts is not a port list");
	} else {
		env->ports_null = 0;
		for (size_t i = 0; i < json_object_array_length(a); i++)
			env->ports[env->nports++] = (uint16_t)json_object_get_int(json_object_array_get_idx(a, i));
	}
	json_object_put(a);
	return rc;
}

static json_object *mapped_ports_array(const struct mapped_port *ports, size_t n)
{
	json_object *a = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		json_object *p = json_object_new_object();
		json_object_object_add(p, "exposedPort", json_object_new_int(ports[i].exposed_port));
		json_object_object_add(p, "hostAddress", json_object_new_string(ports[i].host_address));
		json_object_array_add(a, p);
	}
	return a;
}

static json_object *environment_object(const struct environment *env)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "prewarmingPoolSize", json_object_new_uint64(env->prewarming_pool_size));
	json_object_object_add(o, "cpuLimit", json_object_new_uint64(env->cpu_limit));
	json_object_object_add(o, "memoryLimit", json_object_new_uint64(env->memory_limit));
	json_object_object_add(o, "image", json_object_new_string(env->image));
	json_object_object_add(o, "networkAccess", json_object_new_boolean(env->network_access));
	json_object_object_add(o, "exposedPorts", ports_array(env));
	json_object_object_add(o, "id", json_object_new_int64(env->id));
	return o;
}

char *model_render_environment(const struct environment *env)
{
	return render(environment_object(env));
}

char *model_render_environments(const struct environment *envs, size_t n)
{
	json_object *o = json_object_new_object();
	json_object *a = NULL;
	if (n > 0) {
		a = json_object_new_array_ext((int)n);
		for (size_t i = 0; i < n; i++)
			json_object_array_add(a, environment_object(&envs[i]));
	}
	json_object_object_add(o, "executionEnvironments", a);
	return render(o);
}

char *model_render_runner(const char *runner_id, const struct mapped_port *ports, size_t n)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "runnerId", json_object_new_string(runner_id));
	json_object_object_add(o, "mappedPorts", mapped_ports_array(ports, n));
	return render(o);
}

char *model_render_statistics(const struct env_stats *s, size_t n)
{
	json_object *o = json_object_new_object();
	for (size_t i = 0; i < n; i++) {
		char key[24];
		json_object *v = json_object_new_object();
		json_object_object_add(v, "id", json_object_new_int64(s[i].id));
		json_object_object_add(v, "prewarmingPoolSize", json_object_new_uint64(s[i].prewarming_pool_size));
		json_object_object_add(v, "idleRunners", json_object_new_uint64(s[i].idle));
		json_object_object_add(v, "usedRunners", json_object_new_uint64(s[i].used));
		snprintf(key, sizeof key, "%lld", s[i].id);
		json_object_object_add(o, key, v);
	}
	return render(o);
}

char *model_render_execution_response(const char *websocket_url)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "websocketUrl", json_object_new_string(websocket_url));
	return render(o);
}

char *model_render_error(const char *message, const char *error_code)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "message", json_object_new_string(message ? message : ""));
	if (error_code)
		json_object_object_add(o, "errorCode", json_object_new_string(error_code));
	return render(o);
}

char *model_render_string(const char *s)
{
	return render(json_object_new_string(s));
}

char *model_mapped_ports_to_json(const struct mapped_port *ports, size_t n)
{
	return render(mapped_ports_array(ports, n));
}

int model_mapped_ports_from_json(const char *s, struct mapped_port *ports, int max, int *n, struct perr *e)
{
	json_object *a = NULL;
	*n = 0;
	if (!s || !*s || strcmp(s, "[]") == 0) /* the common case, on the claim path */
		return 0;
	if (parse_json(s, strlen(s), &a, e) < 0)
		return -1;
	if (a && !json_object_is_type(a, json_type_array)) {
		json_object_put(a);
		return perr_set(e, PERR_UNKNOWN, "stored mappedPorts is not a list");
	}
	for (size_t i = 0; a && i < json_object_array_length(a) && *n < max; i++) {
		json_object *p = json_object_array_get_idx(a, i), *v;
		struct mapped_port *mp = &ports[(*n)++];
		memset(mp, 0, sizeof *mp);
		if (json_object_object_get_ex(p, "exposedPort", &v))
			mp->exposed_port = (uint16_t)json_object_get_int(v);
		if (json_object_object_get_ex(p, "hostAddress", &v))
			snprintf(mp->host_address, sizeof mp->host_address, "%s", json_object_get_string(v));
	}
	json_object_put(a);
	return 0;
}

char *model_stored_execution(const char *runner_id, const struct execution_request *x)
{
	json_object *o = json_object_new_object(), *env = json_object_new_object();
	json_object_object_add(o, "runnerId", json_object_new_string(runner_id));
	json_object_object_add(o, "command", json_object_new_string_len(x->command, (int)x->command_len));
	json_object_object_add(o, "privilegedExecution", json_object_new_boolean(x->privileged));
	json_object_object_add(o, "timeLimit", json_object_new_int64(x->time_limit));
	for (size_t i = 0; i < x->nenv; i++)
		json_object_object_add(env, x->env[i].name, json_object_new_string(x->env[i].value));
	json_object_object_add(o, "environment", env);
	return render(o);
}

int model_parse_stored_execution(const char *s, char *runner_id, size_t cap, struct execution_request *x,
				 struct perr *e)
{
	json_object *o = NULL, *v;
	if (parse_json(s, strlen(s), &o, e) < 0)
		return -1;
	if (!o || !json_object_object_get_ex(o, "runnerId", &v) || !json_object_is_type(v, json_type_string)) {
		json_object_put(o);
		return perr_set(e, PERR_UNKNOWN, "stored execution has no runner");
	}
	snprintf(runner_id, cap, "%s", json_object_get_string(v));
	json_object_put(o);
	return model_parse_execution_request(s, strlen(s), x, e);
}
