/* jobspec: see jobspec.h. The api field table gives every accepted key path and its Go type;
 * decode walks the parsed body against it, building a new object with canonical key names.
 * Canonicalization then reads that api-shaped object and writes the server shape, struct by
 * struct, in Nomad's declaration order (what a codecgen-built Nomad writes). Fields that
 * nomad-local does not interpret (services, vault, templates, volumes...) are carried through
 * unchanged. */
#include "jobspec.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "apischema.h"
#include "gojson.h"
#include "util.h"

#define SCHEMA_HASH 4096
#define PATH_MAX_LEN 512

#define NS_SEC 1000000000LL

/* ---- schema lookup: lower-cased path -> field ---- */

static int schema_slots[SCHEMA_HASH];
static int schema_ready;

static unsigned hash_lower(const char *s)
{
	unsigned h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)tolower((unsigned char)*s)) * 16777619u;
	return h;
}

static void schema_init(void)
{
	if (schema_ready)
		return;
	for (int i = 0; i < SCHEMA_HASH; i++)
		schema_slots[i] = -1;
	for (int i = 0; i < api_nfields; i++) {
		unsigned h = hash_lower(api_fields[i].path) % SCHEMA_HASH;
		while (schema_slots[h] >= 0)
			h = (h + 1) % SCHEMA_HASH;
		schema_slots[h] = i;
	}
	schema_ready = 1;
}

static const struct api_field *schema_find(const char *path)
{
	unsigned h = hash_lower(path) % SCHEMA_HASH;
	const struct api_field *fold = NULL;
	while (schema_slots[h] >= 0) {
		const struct api_field *f = &api_fields[schema_slots[h]];
		if (strcmp(f->path, path) == 0)
			return f;
		if (!fold && strcasecmp(f->path, path) == 0)
			fold = f;
		h = (h + 1) % SCHEMA_HASH;
	}
	return fold;
}

/* ---- decode ---- */

struct decode_ctx {
	char *err;
	size_t cap;
	int failed;
};

static const char *kind_of(json_object *v, char *tmp, size_t cap, int with_literal)
{
	switch (json_object_get_type(v)) {
	case json_type_string: return "string";
	case json_type_boolean: return "bool";
	case json_type_array: return "array";
	case json_type_object: return "object";
	case json_type_int:
	case json_type_double:
		if (with_literal) {
			snprintf(tmp, cap, "number %s", json_object_get_string(v));
			return tmp;
		}
		return "number";
	default: return "null";
	}
}

/* Go's reflect type string for an api type as declared in the table. */
static void go_type_name(const char *t, char *out, size_t cap)
{
	while (*t == '*')
		t++; /* the decoder reports the pointed-to type */
	char buf[256] = "";
	const char *p = t;
	size_t o = 0;
	while (*p && o + 8 < sizeof buf) {
		if (strncmp(p, "[]", 2) == 0) {
			memcpy(buf + o, "[]", 2);
			o += 2;
			p += 2;
		} else if (*p == '*') {
			buf[o++] = '*';
			p++;
		} else if (strncmp(p, "map[string]", 11) == 0) {
			memcpy(buf + o, "map[string]", 11);
			o += 11;
			p += 11;
		} else {
			break;
		}
	}
	buf[o] = '\0';
	int named = isupper((unsigned char)*p);
	if (strcmp(p, "byte") == 0)
		snprintf(out, cap, "%suint8", buf);
	else
		snprintf(out, cap, "%s%s%s", buf, named ? "api." : "", p);
}

static void type_error(struct decode_ctx *d, json_object *v, const char *struct_name, const char *field_path,
		       const char *type, int literal)
{
	char kt[96], tn[256];
	if (d->failed)
		return;
	d->failed = 1;
	go_type_name(type, tn, sizeof tn);
	snprintf(d->err, d->cap, "json: cannot unmarshal %s into Go struct field %s.%s of type %s",
		 kind_of(v, kt, sizeof kt, literal), struct_name, field_path, tn);
}

static int int_fits(const char *t, json_object *v)
{
	if (json_object_get_type(v) != json_type_int)
		return 0;
	errno = 0;
	int64_t i = json_object_get_int64(v);
	const char *s = json_object_get_string(v);
	int neg = s && s[0] == '-';
	if (errno == ERANGE || (i == INT64_MAX && !neg && strcmp(s, "9223372036854775807") != 0))
		return 0;
	if (strcmp(t, "int8") == 0)
		return i >= -128 && i <= 127;
	if (strcmp(t, "int16") == 0)
		return i >= -32768 && i <= 32767;
	if (strcmp(t, "int32") == 0)
		return i >= INT32_MIN && i <= INT32_MAX;
	if (strcmp(t, "uint8") == 0)
		return i >= 0 && i <= 255;
	if (strcmp(t, "uint16") == 0)
		return i >= 0 && i <= 65535;
	if (strcmp(t, "uint32") == 0)
		return i >= 0 && i <= (int64_t)UINT32_MAX;
	if (strncmp(t, "uint", 4) == 0)
		return i >= 0;
	return 1;
}

static int is_int_type(const char *t)
{
	static const char *ints[] = {"int", "int8", "int16", "int32", "int64", "uint", "uint8",
				     "uint16", "uint32", "uint64", "time.Duration", NULL};
	for (int i = 0; ints[i]; i++)
		if (strcmp(t, ints[i]) == 0)
			return 1;
	return 0;
}

static json_object *decode_value(struct decode_ctx *d, json_object *v, const char *path, const char *type,
				 const char *struct_name, const char *field_path);

static void strip_markers(const char *path, char *out, size_t cap)
{
	size_t o = 0;
	for (const char *p = path; *p && o + 1 < cap; p++) {
		if ((p[0] == '[' && p[1] == ']') || (p[0] == '{' && p[1] == '}')) {
			p++;
			continue;
		}
		out[o++] = *p;
	}
	out[o] = '\0';
}

static json_object *decode_struct(struct decode_ctx *d, json_object *v, const char *path, const char *type_name)
{
	json_object *out = json_object_new_object();
	json_object_object_foreach(v, key, val)
	{
		char child[PATH_MAX_LEN];
		if (snprintf(child, sizeof child, "%s%s%s", path, *path ? "." : "", key) >= (int)sizeof child)
			continue;
		const struct api_field *f = schema_find(child);
		if (!f)
			continue; /* encoding/json ignores unknown keys */
		const char *name = strrchr(f->path, '.');
		name = name ? name + 1 : f->path;
		char fp[PATH_MAX_LEN];
		strip_markers(f->path, fp, sizeof fp);
		json_object *nv = decode_value(d, val, f->path, f->type, type_name, fp);
		if (d->failed) {
			json_object_put(nv);
			json_object_put(out);
			return NULL;
		}
		json_object_object_add(out, name, nv);
	}
	return out;
}

static json_object *decode_value(struct decode_ctx *d, json_object *v, const char *path, const char *type,
				 const char *struct_name, const char *field_path)
{
	const char *t = type;
	while (*t == '*')
		t++;
	if (!v)
		return NULL; /* null: nil pointer, nil slice/map, or zero value */
	enum json_type jt = json_object_get_type(v);
	if (strcmp(t, "interface{}") == 0)
		return json_object_get(v);
	if (strcmp(t, "string") == 0) {
		if (jt != json_type_string) {
			type_error(d, v, struct_name, field_path, type, 0);
			return NULL;
		}
		return json_object_get(v);
	}
	if (strcmp(t, "bool") == 0) {
		if (jt != json_type_boolean) {
			type_error(d, v, struct_name, field_path, type, 0);
			return NULL;
		}
		return json_object_get(v);
	}
	if (is_int_type(t)) {
		if (jt != json_type_int && jt != json_type_double) {
			type_error(d, v, struct_name, field_path, type, 0);
			return NULL;
		}
		if (!int_fits(strcmp(t, "time.Duration") == 0 ? "int64" : t, v)) {
			type_error(d, v, struct_name, field_path, type, 1);
			return NULL;
		}
		return json_object_get(v);
	}
	if (strcmp(t, "float64") == 0 || strcmp(t, "float32") == 0) {
		if (jt != json_type_int && jt != json_type_double) {
			type_error(d, v, struct_name, field_path, type, 0);
			return NULL;
		}
		return json_object_get(v);
	}
	if (strcmp(t, "[]byte") == 0) {
		if (jt != json_type_string) {
			type_error(d, v, struct_name, field_path, type, 0);
			return NULL;
		}
		return json_object_get(v);
	}
	char child[PATH_MAX_LEN];
	if (strncmp(t, "[]", 2) == 0) {
		if (jt != json_type_array) {
			type_error(d, v, struct_name, field_path, type, 0);
			return NULL;
		}
		snprintf(child, sizeof child, "%s[]", path);
		json_object *out = json_object_new_array();
		size_t n = json_object_array_length(v);
		const char *elem = t + 2;
		for (size_t i = 0; i < n; i++) {
			json_object *ev = decode_value(d, json_object_array_get_idx(v, i), child, elem, struct_name,
						       field_path);
			if (d->failed) {
				json_object_put(out);
				return NULL;
			}
			json_object_array_add(out, ev);
		}
		return out;
	}
	if (strncmp(t, "map[string]", 11) == 0) {
		if (jt != json_type_object) {
			type_error(d, v, struct_name, field_path, type, 0);
			return NULL;
		}
		const char *elem = t + 11;
		if (strcmp(elem, "interface{}") == 0)
			return json_object_get(v);
		snprintf(child, sizeof child, "%s{}", path);
		json_object *out = json_object_new_object();
		json_object_object_foreach(v, key, val)
		{
			json_object *ev = decode_value(d, val, child, elem, struct_name, field_path);
			if (d->failed) {
				json_object_put(out);
				return NULL;
			}
			json_object_object_add(out, key, ev);
		}
		return out;
	}
	/* a named struct type */
	if (jt != json_type_object) {
		type_error(d, v, struct_name, field_path, type, 0);
		return NULL;
	}
	return decode_struct(d, v, path, t);
}

/* ---- accessors ---- */

json_object *js_obj(json_object *o, const char *key)
{
	json_object *v = NULL;
	if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

const char *js_str(json_object *o, const char *key, const char *dflt)
{
	json_object *v = js_obj(o, key);
	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : dflt;
}

long long js_int(json_object *o, const char *key, long long dflt)
{
	json_object *v = js_obj(o, key);
	if (!v || !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
		return dflt;
	return (long long)json_object_get_int64(v);
}

int js_bool(json_object *o, const char *key)
{
	json_object *v = js_obj(o, key);
	return v && json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
}

static int has(json_object *o, const char *key) { return js_obj(o, key) != NULL; }

/* ---- building server JSON ---- */

static void put(json_object *o, const char *k, json_object *v) { json_object_object_add(o, k, v); }
static void put_s(json_object *o, const char *k, const char *v) { put(o, k, json_object_new_string(v ? v : "")); }
static void put_i(json_object *o, const char *k, long long v) { put(o, k, json_object_new_int64(v)); }
static void put_b(json_object *o, const char *k, int v) { put(o, k, json_object_new_boolean(v)); }
static void put_null(json_object *o, const char *k) { put(o, k, NULL); }
/* copies the api value (or null) */
static void put_copy(json_object *o, const char *k, json_object *src)
{
	put(o, k, src ? json_object_get(src) : NULL);
}

/* A list that Go would encode as null when empty. */
static void put_list_or_null(json_object *o, const char *k, json_object *list)
{
	if (list && json_object_is_type(list, json_type_array) && json_object_array_length(list) > 0)
		put(o, k, json_object_get(list));
	else
		put_null(o, k);
}

static json_object *canon_constraints(json_object *list)
{
	if (!list || json_object_array_length(list) == 0)
		return NULL;
	json_object *out = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		json_object *c = json_object_array_get_idx(list, i), *n = json_object_new_object();
		put_s(n, "LTarget", js_str(c, "LTarget", ""));
		put_s(n, "RTarget", js_str(c, "RTarget", ""));
		put_s(n, "Operand", js_str(c, "Operand", "="));
		json_object_array_add(out, n);
	}
	return out;
}

static json_object *canon_affinities(json_object *list)
{
	if (!list || json_object_array_length(list) == 0)
		return NULL;
	json_object *out = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		json_object *c = json_object_array_get_idx(list, i), *n = json_object_new_object();
		put_s(n, "LTarget", js_str(c, "LTarget", ""));
		put_s(n, "RTarget", js_str(c, "RTarget", ""));
		put_s(n, "Operand", js_str(c, "Operand", "="));
		put_i(n, "Weight", js_int(c, "Weight", 50));
		json_object_array_add(out, n);
	}
	return out;
}

static json_object *canon_spreads(json_object *list)
{
	if (!list || json_object_array_length(list) == 0)
		return NULL;
	json_object *out = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		json_object *s = json_object_array_get_idx(list, i), *n = json_object_new_object();
		put_s(n, "Attribute", js_str(s, "Attribute", ""));
		put_i(n, "Weight", js_int(s, "Weight", 50));
		json_object *targets = js_obj(s, "SpreadTarget");
		if (targets && json_object_array_length(targets) > 0) {
			json_object *ts = json_object_new_array();
			for (size_t j = 0; j < json_object_array_length(targets); j++) {
				json_object *t = json_object_array_get_idx(targets, j), *nt = json_object_new_object();
				put_s(nt, "Value", js_str(t, "Value", ""));
				put_i(nt, "Percent", js_int(t, "Percent", 0));
				json_object_array_add(ts, nt);
			}
			put(n, "SpreadTarget", ts);
		} else {
			put_null(n, "SpreadTarget");
		}
		json_object_array_add(out, n);
	}
	return out;
}

static json_object *canon_ports(json_object *list)
{
	if (!list || json_object_array_length(list) == 0)
		return NULL;
	json_object *out = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		json_object *p = json_object_array_get_idx(list, i), *n = json_object_new_object();
		/* Port has a struct-wide omitempty */
		if (*js_str(p, "Label", ""))
			put_s(n, "Label", js_str(p, "Label", ""));
		if (js_int(p, "Value", 0))
			put_i(n, "Value", js_int(p, "Value", 0));
		if (js_int(p, "To", 0))
			put_i(n, "To", js_int(p, "To", 0));
		put_s(n, "HostNetwork", *js_str(p, "HostNetwork", "") ? js_str(p, "HostNetwork", "") : "default");
		if (js_bool(p, "IgnoreCollision"))
			put_b(n, "IgnoreCollision", 1);
		json_object_array_add(out, n);
	}
	return out;
}

/* NetworkResource has a struct-wide omitempty. */
static json_object *canon_networks(json_object *list)
{
	if (!list || json_object_array_length(list) == 0)
		return NULL; /* "Networks": [] is stored as null */
	json_object *out = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		json_object *nr = json_object_array_get_idx(list, i), *n = json_object_new_object();
		static const char *strs[] = {"Mode", "Device", "CIDR", "IP", "Hostname", NULL};
		for (int k = 0; strs[k]; k++) {
			const char *s = js_str(nr, strs[k], "");
			if (*s)
				put_s(n, strs[k], s);
			if (k == 4 && js_int(nr, "MBits", 0))
				put_i(n, "MBits", js_int(nr, "MBits", 0));
		}
		if (js_obj(nr, "DNS"))
			put_copy(n, "DNS", js_obj(nr, "DNS"));
		json_object *rp = canon_ports(js_obj(nr, "ReservedPorts"));
		if (rp)
			put(n, "ReservedPorts", rp);
		json_object *dp = canon_ports(js_obj(nr, "DynamicPorts"));
		if (dp)
			put(n, "DynamicPorts", dp);
		if (js_obj(nr, "CNI"))
			put_copy(n, "CNI", js_obj(nr, "CNI"));
		json_object_array_add(out, n);
	}
	return out;
}

struct restart_policy {
	long long attempts, interval, delay;
	char mode[32];
	int render_templates;
};

static void restart_merge(struct restart_policy *rp, json_object *src)
{
	if (!src)
		return;
	if (has(src, "Attempts"))
		rp->attempts = js_int(src, "Attempts", rp->attempts);
	if (has(src, "Interval"))
		rp->interval = js_int(src, "Interval", rp->interval);
	if (has(src, "Delay"))
		rp->delay = js_int(src, "Delay", rp->delay);
	if (has(src, "Mode"))
		snprintf(rp->mode, sizeof rp->mode, "%s", js_str(src, "Mode", rp->mode));
	if (has(src, "RenderTemplates"))
		rp->render_templates = js_bool(src, "RenderTemplates");
}

static json_object *restart_json(const struct restart_policy *rp)
{
	json_object *o = json_object_new_object();
	put_i(o, "Attempts", rp->attempts);
	put_i(o, "Interval", rp->interval);
	put_i(o, "Delay", rp->delay);
	put_s(o, "Mode", rp->mode);
	put_b(o, "RenderTemplates", rp->render_templates);
	return o;
}

static json_object *canon_reschedule(json_object *job, json_object *group, const char *type)
{
	long long attempts = 0, interval = 0, delay = 0, max_delay = 0;
	const char *fn = "";
	int unlimited = 0;
	if (strcmp(type, "system") == 0 && !js_obj(group, "ReschedulePolicy") && !js_obj(job, "Reschedule"))
		return NULL;
	if (strcmp(type, "service") == 0) {
		delay = 30 * NS_SEC, fn = "exponential", max_delay = 3600 * NS_SEC, unlimited = 1;
	} else if (strcmp(type, "batch") == 0) {
		attempts = 1, interval = 24 * 3600 * NS_SEC, delay = 5 * NS_SEC, fn = "constant";
	}
	json_object *srcs[2] = {js_obj(job, "Reschedule"), js_obj(group, "ReschedulePolicy")};
	for (int i = 0; i < 2; i++) {
		json_object *s = srcs[i];
		if (!s)
			continue;
		if (has(s, "Attempts"))
			attempts = js_int(s, "Attempts", attempts);
		if (has(s, "Interval"))
			interval = js_int(s, "Interval", interval);
		if (has(s, "Delay"))
			delay = js_int(s, "Delay", delay);
		if (has(s, "DelayFunction"))
			fn = js_str(s, "DelayFunction", fn);
		if (has(s, "MaxDelay"))
			max_delay = js_int(s, "MaxDelay", max_delay);
		if (has(s, "Unlimited"))
			unlimited = js_bool(s, "Unlimited");
	}
	json_object *o = json_object_new_object();
	put_i(o, "Attempts", attempts);
	put_i(o, "Interval", interval);
	put_i(o, "Delay", delay);
	put_s(o, "DelayFunction", fn);
	put_i(o, "MaxDelay", max_delay);
	put_b(o, "Unlimited", unlimited);
	return o;
}

static json_object *update_json(long long stagger, long long max_parallel, const char *hc, long long min_healthy,
				long long healthy_deadline, long long progress_deadline, int auto_revert,
				int auto_promote, long long canary)
{
	json_object *o = json_object_new_object();
	put_i(o, "Stagger", stagger);
	put_i(o, "MaxParallel", max_parallel);
	put_s(o, "HealthCheck", hc);
	put_i(o, "MinHealthyTime", min_healthy);
	put_i(o, "HealthyDeadline", healthy_deadline);
	put_i(o, "ProgressDeadline", progress_deadline);
	put_b(o, "AutoRevert", auto_revert);
	put_b(o, "AutoPromote", auto_promote);
	put_i(o, "Canary", canary);
	return o;
}

static json_object *canon_group_update(json_object *job, json_object *group, const char *type)
{
	if (strcmp(type, "service") != 0 && strcmp(type, "system") != 0)
		return NULL; /* batch jobs do not keep an update block on their groups */
	json_object *ju = js_obj(job, "Update"), *gu = js_obj(group, "Update");
	long long stagger = 30 * NS_SEC, mp = 1, mh = 10 * NS_SEC, hd = 300 * NS_SEC, pd = 600 * NS_SEC, canary = 0;
	const char *hc = "checks";
	int ar = 0, ap = 0;
	json_object *srcs[2] = {ju, gu};
	for (int i = 0; i < 2; i++) {
		json_object *s = srcs[i];
		if (!s)
			continue;
		stagger = has(s, "Stagger") ? js_int(s, "Stagger", stagger) : stagger;
		mp = has(s, "MaxParallel") ? js_int(s, "MaxParallel", mp) : mp;
		hc = has(s, "HealthCheck") ? js_str(s, "HealthCheck", hc) : hc;
		mh = has(s, "MinHealthyTime") ? js_int(s, "MinHealthyTime", mh) : mh;
		hd = has(s, "HealthyDeadline") ? js_int(s, "HealthyDeadline", hd) : hd;
		pd = has(s, "ProgressDeadline") ? js_int(s, "ProgressDeadline", pd) : pd;
		ar = has(s, "AutoRevert") ? js_bool(s, "AutoRevert") : ar;
		ap = has(s, "AutoPromote") ? js_bool(s, "AutoPromote") : ap;
		canary = has(s, "Canary") ? js_int(s, "Canary", canary) : canary;
	}
	return update_json(stagger, mp, hc, mh, hd, pd, ar, ap, canary);
}

static json_object *canon_resources(json_object *r)
{
	json_object *o = json_object_new_object();
	long long cores = r && has(r, "Cores") ? js_int(r, "Cores", 0) : 0;
	long long cpu;
	if (!r || !has(r, "Cores"))
		cpu = r && has(r, "CPU") ? js_int(r, "CPU", 100) : 100;
	else
		cpu = has(r, "CPU") ? js_int(r, "CPU", 0) : 0;
	put_i(o, "CPU", cpu);
	put_i(o, "Cores", cores);
	put_i(o, "MemoryMB", r && has(r, "MemoryMB") ? js_int(r, "MemoryMB", 300) : 300);
	put_i(o, "MemoryMaxMB", js_int(r, "MemoryMaxMB", 0));
	put_i(o, "DiskMB", js_int(r, "DiskMB", 0));
	put_i(o, "IOPS", js_int(r, "IOPS", 0));
	put_list_or_null(o, "Networks", js_obj(r, "Networks"));
	put_list_or_null(o, "Devices", js_obj(r, "Devices"));
	put_copy(o, "NUMA", js_obj(r, "NUMA"));
	put_i(o, "SecretsMB", js_int(r, "SecretsMB", 0));
	return o;
}

static json_object *identity_json(json_object *src)
{
	json_object *o = json_object_new_object();
	put_s(o, "Name", src ? js_str(src, "Name", "default") : "default");
	json_object *aud = js_obj(src, "Audience");
	if (aud && json_object_array_length(aud) > 0) {
		put(o, "Audience", json_object_get(aud));
	} else {
		json_object *a = json_object_new_array();
		json_object_array_add(a, json_object_new_string("nomadproject.io"));
		put(o, "Audience", a);
	}
	put_s(o, "ChangeMode", js_str(src, "ChangeMode", ""));
	put_s(o, "ChangeSignal", js_str(src, "ChangeSignal", ""));
	put_b(o, "Env", js_bool(src, "Env"));
	put_b(o, "File", js_bool(src, "File"));
	put_s(o, "Filepath", js_str(src, "Filepath", ""));
	put_s(o, "ServiceName", js_str(src, "ServiceName", ""));
	put_i(o, "TTL", js_int(src, "TTL", 0));
	return o;
}

static json_object *canon_task(json_object *t, const struct restart_policy *group_rp)
{
	json_object *o = json_object_new_object();
	put_s(o, "Name", js_str(t, "Name", ""));
	put_s(o, "Driver", js_str(t, "Driver", ""));
	put_s(o, "User", js_str(t, "User", ""));
	put_copy(o, "Config", js_obj(t, "Config"));
	put_copy(o, "Env", js_obj(t, "Env"));
	put_list_or_null(o, "Services", js_obj(t, "Services"));
	put_copy(o, "Vault", js_obj(t, "Vault"));
	put_copy(o, "Consul", js_obj(t, "Consul"));
	put_list_or_null(o, "Templates", js_obj(t, "Templates"));
	put(o, "Constraints", canon_constraints(js_obj(t, "Constraints")));
	put(o, "Affinities", canon_affinities(js_obj(t, "Affinities")));
	put(o, "Resources", canon_resources(js_obj(t, "Resources")));
	struct restart_policy rp = *group_rp;
	restart_merge(&rp, js_obj(t, "RestartPolicy"));
	put(o, "RestartPolicy", restart_json(&rp));
	put_copy(o, "DispatchPayload", js_obj(t, "DispatchPayload"));
	json_object *lc = js_obj(t, "Lifecycle");
	put_copy(o, "Lifecycle", lc && *js_str(lc, "Hook", "") ? lc : NULL);
	put_copy(o, "Meta", js_obj(t, "Meta"));
	long long kt = js_int(t, "KillTimeout", 0);
	put_i(o, "KillTimeout", kt ? kt : 5 * NS_SEC);
	json_object *logc = js_obj(t, "LogConfig"), *l = json_object_new_object();
	put_i(l, "MaxFiles", logc && has(logc, "MaxFiles") ? js_int(logc, "MaxFiles", 10) : 10);
	put_i(l, "MaxFileSizeMB", logc && has(logc, "MaxFileSizeMB") ? js_int(logc, "MaxFileSizeMB", 10) : 10);
	put_b(l, "Disabled", js_bool(logc, "Disabled") || (has(logc, "Enabled") && !js_bool(logc, "Enabled")));
	put(o, "LogConfig", l);
	put_list_or_null(o, "Artifacts", js_obj(t, "Artifacts"));
	put_b(o, "Leader", js_bool(t, "Leader"));
	put_i(o, "ShutdownDelay", js_int(t, "ShutdownDelay", 0));
	put_list_or_null(o, "VolumeMounts", js_obj(t, "VolumeMounts"));
	put_list_or_null(o, "ScalingPolicies", js_obj(t, "ScalingPolicies"));
	put_s(o, "KillSignal", js_str(t, "KillSignal", ""));
	put_s(o, "Kind", js_str(t, "Kind", ""));
	put_copy(o, "CSIPluginConfig", js_obj(t, "CSIPluginConfig"));
	put(o, "Identity", identity_json(js_obj(t, "Identity")));
	put_list_or_null(o, "Identities", js_obj(t, "Identities"));
	put_list_or_null(o, "Actions", js_obj(t, "Actions"));
	put_copy(o, "Schedule", js_obj(t, "Schedule"));
	return o;
}

static void add_constraint(json_object *list, const char *l, const char *r, const char *op)
{
	/* the server's mutator adds an implied constraint only once (a job read back and
	 * registered again already carries it) */
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		json_object *e = json_object_array_get_idx(list, i);
		if (!strcmp(js_str(e, "LTarget", ""), l) && !strcmp(js_str(e, "RTarget", ""), r) &&
		    !strcmp(js_str(e, "Operand", ""), op))
			return;
	}
	json_object *c = json_object_new_object();
	put_s(c, "LTarget", l);
	put_s(c, "RTarget", r);
	put_s(c, "Operand", op);
	json_object_array_add(list, c);
}

static json_object *canon_group(json_object *job, json_object *g, const char *type)
{
	json_object *o = json_object_new_object();
	put_s(o, "Name", js_str(g, "Name", ""));
	put_i(o, "Count", has(g, "Count") ? js_int(g, "Count", 1) : 1);
	put(o, "Update", canon_group_update(job, g, type));
	json_object *mig = js_obj(g, "Migrate");
	if (!mig)
		mig = js_obj(job, "Migrate");
	if (mig || strcmp(type, "service") == 0) {
		json_object *m = json_object_new_object();
		put_i(m, "MaxParallel", mig && has(mig, "MaxParallel") ? js_int(mig, "MaxParallel", 1) : 1);
		put_s(m, "HealthCheck", mig ? js_str(mig, "HealthCheck", "checks") : "checks");
		put_i(m, "MinHealthyTime",
		      mig && has(mig, "MinHealthyTime") ? js_int(mig, "MinHealthyTime", 0) : 10 * NS_SEC);
		put_i(m, "HealthyDeadline",
		      mig && has(mig, "HealthyDeadline") ? js_int(mig, "HealthyDeadline", 0) : 300 * NS_SEC);
		put(o, "Migrate", m);
	} else {
		put_null(o, "Migrate");
	}
	/* user constraints, then the ones the server implies */
	json_object *cons = canon_constraints(js_obj(g, "Constraints"));
	json_object *tasks = js_obj(g, "Tasks");
	struct buf signals = {0};
	for (size_t i = 0; tasks && i < json_object_array_length(tasks); i++) {
		const char *sig = js_str(json_object_array_get_idx(tasks, i), "KillSignal", "");
		if (*sig && !(signals.p && strstr(signals.p, sig))) {
			if (signals.len)
				buf_adds(&signals, ",");
			buf_adds(&signals, sig);
		}
	}
	int bridge = 0;
	json_object *nets = js_obj(g, "Networks");
	for (size_t i = 0; nets && i < json_object_array_length(nets); i++)
		if (strcmp(js_str(json_object_array_get_idx(nets, i), "Mode", ""), "bridge") == 0)
			bridge = 1;
	if (signals.len || bridge) {
		if (!cons)
			cons = json_object_new_array();
		if (signals.len)
			add_constraint(cons, "${attr.os.signals}", signals.p, "set_contains");
		if (bridge) {
			static const char *cni[] = {"bridge", "firewall", "host-local", "loopback", "portmap"};
			for (int i = 0; i < 5; i++) {
				char l[80];
				snprintf(l, sizeof l, "${attr.plugins.cni.version.%s}", cni[i]);
				add_constraint(cons, l, ">= 0.4.0", "semver");
			}
		}
	}
	buf_free(&signals);
	put(o, "Constraints", cons);
	put_copy(o, "Scaling", js_obj(g, "Scaling"));
	struct restart_policy rp;
	if (strcmp(type, "service") == 0 || strcmp(type, "system") == 0)
		rp = (struct restart_policy){2, 1800 * NS_SEC, 15 * NS_SEC, "fail", 0};
	else
		rp = (struct restart_policy){3, 24 * 3600 * NS_SEC, 15 * NS_SEC, "fail", 0};
	restart_merge(&rp, js_obj(g, "RestartPolicy"));
	put(o, "RestartPolicy", restart_json(&rp));
	put_copy(o, "Disconnect", js_obj(g, "Disconnect"));
	json_object *ts = NULL;
	if (tasks && json_object_array_length(tasks) > 0) {
		ts = json_object_new_array();
		for (size_t i = 0; i < json_object_array_length(tasks); i++)
			json_object_array_add(ts, canon_task(json_object_array_get_idx(tasks, i), &rp));
	}
	put(o, "Tasks", ts);
	json_object *ed = js_obj(g, "EphemeralDisk"), *e = json_object_new_object();
	put_b(e, "Sticky", js_bool(ed, "Sticky"));
	put_i(e, "SizeMB", ed && has(ed, "SizeMB") ? js_int(ed, "SizeMB", 300) : 300);
	put_b(e, "Migrate", js_bool(ed, "Migrate"));
	put(o, "EphemeralDisk", e);
	put_copy(o, "Meta", js_obj(g, "Meta"));
	put(o, "ReschedulePolicy", canon_reschedule(job, g, type));
	put(o, "Affinities", canon_affinities(js_obj(g, "Affinities")));
	put(o, "Spreads", canon_spreads(js_obj(g, "Spreads")));
	put(o, "Networks", canon_networks(nets));
	put_copy(o, "Consul", js_obj(g, "Consul"));
	put_list_or_null(o, "Services", js_obj(g, "Services"));
	put_copy(o, "Volumes", js_obj(g, "Volumes"));
	put_copy(o, "ShutdownDelay", js_obj(g, "ShutdownDelay"));
	put_copy(o, "StopAfterClientDisconnect", js_obj(g, "StopAfterClientDisconnect"));
	put_copy(o, "MaxClientDisconnect", js_obj(g, "MaxClientDisconnect"));
	put_b(o, "PreventRescheduleOnLost", js_bool(g, "PreventRescheduleOnLost"));
	return o;
}

static json_object *canon_job(json_object *j, const char *ns, const char *region)
{
	const char *type = js_str(j, "Type", "service");
	if (!has(j, "Type"))
		type = "service";
	json_object *o = json_object_new_object();
	put_b(o, "Stop", js_bool(j, "Stop"));
	put_s(o, "Region", region);
	put_s(o, "Namespace", ns);
	const char *id = js_str(j, "ID", "");
	put_s(o, "ID", id);
	put_s(o, "ParentID", js_str(j, "ParentID", ""));
	put_s(o, "Name", has(j, "Name") ? js_str(j, "Name", "") : id);
	put_s(o, "Type", type);
	put_i(o, "Priority", has(j, "Priority") ? js_int(j, "Priority", 50) : 50);
	put_b(o, "AllAtOnce", js_bool(j, "AllAtOnce"));
	json_object *dcs = js_obj(j, "Datacenters");
	if (dcs && json_object_array_length(dcs) > 0) {
		put(o, "Datacenters", json_object_get(dcs));
	} else {
		json_object *a = json_object_new_array();
		json_object_array_add(a, json_object_new_string("*"));
		put(o, "Datacenters", a);
	}
	const char *pool = js_str(j, "NodePool", "");
	put_s(o, "NodePool", *pool ? pool : "default");
	put(o, "Constraints", canon_constraints(js_obj(j, "Constraints")));
	put(o, "Affinities", canon_affinities(js_obj(j, "Affinities")));
	put(o, "Spreads", canon_spreads(js_obj(j, "Spreads")));
	json_object *groups = js_obj(j, "TaskGroups"), *gs = NULL;
	if (groups && json_object_array_length(groups) > 0) {
		gs = json_object_new_array();
		for (size_t i = 0; i < json_object_array_length(groups); i++)
			json_object_array_add(gs, canon_group(j, json_object_array_get_idx(groups, i), type));
	}
	put(o, "TaskGroups", gs);
	json_object *ju = js_obj(j, "Update");
	long long stagger = 0, mp = 0;
	if (ju && js_int(ju, "MaxParallel", 0) > 0) {
		stagger = js_int(ju, "Stagger", 30 * NS_SEC);
		mp = js_int(ju, "MaxParallel", 0);
	} else if (!ju && strcmp(type, "service") == 0) {
		stagger = 30 * NS_SEC, mp = 1;
	}
	put(o, "Update", update_json(stagger, mp, "", 0, 0, 0, 0, 0, 0));
	put_copy(o, "Multiregion", js_obj(j, "Multiregion"));
	put_copy(o, "Periodic", js_obj(j, "Periodic"));
	put_copy(o, "ParameterizedJob", js_obj(j, "ParameterizedJob"));
	put_b(o, "Dispatched", js_bool(j, "Dispatched"));
	put_s(o, "DispatchIdempotencyToken", js_str(j, "DispatchIdempotencyToken", ""));
	json_object *payload = js_obj(j, "Payload");
	put_copy(o, "Payload", payload && *json_object_get_string(payload) ? payload : NULL);
	put_copy(o, "Meta", js_obj(j, "Meta"));
	put_s(o, "ConsulNamespace", js_str(j, "ConsulNamespace", ""));
	put_s(o, "VaultNamespace", js_str(j, "VaultNamespace", ""));
	put_s(o, "NomadTokenID", "");
	put_s(o, "Status", "");
	put_s(o, "StatusDescription", "");
	put_b(o, "Stable", 0);
	put_i(o, "Version", 0);
	put_i(o, "SubmitTime", 0);
	put_i(o, "CreateIndex", 0);
	put_i(o, "ModifyIndex", 0);
	put_i(o, "JobModifyIndex", 0);
	put_copy(o, "UI", js_obj(j, "UI"));
	put_copy(o, "VersionTag", js_obj(j, "VersionTag"));
	return o;
}

/* ---- validation: go-multierror lists ---- */

struct merr {
	char *items[64];
	int n;
};

static void merr_add(struct merr *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void merr_add(struct merr *m, const char *fmt, ...)
{
	if (m->n >= 64)
		return;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&m->items[m->n], fmt, ap) >= 0)
		m->n++;
	va_end(ap);
}

/* Formats like go-multierror's ListFormatFunc; NULL when empty. Frees the items. */
static char *merr_format(struct merr *m)
{
	if (m->n == 0)
		return NULL;
	struct buf b = {0};
	if (m->n == 1) {
		buf_printf(&b, "1 error occurred:\n\t* %s\n\n", m->items[0]);
	} else {
		buf_printf(&b, "%d errors occurred:\n\t", m->n);
		for (int i = 0; i < m->n; i++)
			buf_printf(&b, "%s* %s", i ? "\n\t" : "", m->items[i]);
		buf_adds(&b, "\n\n");
	}
	for (int i = 0; i < m->n; i++)
		free(m->items[i]);
	m->n = 0;
	return b.p;
}

static char *validate_resources(json_object *r)
{
	struct merr m = {0}, min = {0};
	long long cpu = js_int(r, "CPU", 0), cores = js_int(r, "Cores", 0), mem = js_int(r, "MemoryMB", 0);
	long long max = js_int(r, "MemoryMaxMB", 0), secrets = js_int(r, "SecretsMB", 0);
	if (cores > 0 && cpu > 0)
		merr_add(&m, "Task can only ask for 'cpu' or 'cores' resource, not both.");
	if (cpu < 1 && cores == 0)
		merr_add(&min, "minimum CPU value is 1; got %lld", cpu);
	if (mem < 10)
		merr_add(&min, "minimum MemoryMB value is 10; got %lld", mem);
	char *mins = merr_format(&min);
	if (mins) {
		merr_add(&m, "%s", mins);
		free(mins);
	}
	if (js_int(r, "DiskMB", 0) > 0)
		merr_add(&m, "Task can't ask for disk resources, they have to be specified at the task group level.");
	if (max != 0 && max != -1 && max < mem)
		merr_add(&m, "MemoryMaxMB value (%lld) should be larger than MemoryMB value (%lld)", max, mem);
	if (secrets > mem)
		merr_add(&m, "SecretsMB value (%lld) cannot be larger than MemoryMB value (%lld)", secrets, mem);
	if (secrets < 0)
		merr_add(&m, "SecretsMB value (%lld) cannot be negative", secrets);
	return merr_format(&m);
}

static void fmt_dur(long long ns, char out[40]) { fmt_go_duration(ns, out); }

/* RestartPolicy.Validate returns a multierror; multierror.Append flattens it into the group's
 * list, so its items are added to m directly. */
static void validate_restart(json_object *rp, struct merr *m)
{
	const char *mode = js_str(rp, "Mode", "");
	long long attempts = js_int(rp, "Attempts", 0), interval = js_int(rp, "Interval", 0),
		  delay = js_int(rp, "Delay", 0);
	char a[40], b[40];
	if (strcmp(mode, "delay") != 0 && strcmp(mode, "fail") != 0)
		merr_add(m, "Unsupported restart mode: \"%s\"", mode);
	if (attempts == 0 && strcmp(mode, "fail") != 0)
		merr_add(m, "Restart policy \"%s\" with %lld attempts is ambiguous", mode, attempts);
	if (interval < 5 * NS_SEC) {
		fmt_dur(interval, b);
		merr_add(m, "Interval can not be less than 5s (got %s)", b);
	}
	if (attempts * delay > interval) {
		fmt_dur(interval, a);
		fmt_dur(delay, b);
		merr_add(m, "Nomad can't restart the TaskGroup %lld times in an interval of %s with a delay of %s",
			 attempts, a, b);
	}
}

static char *validate_task(json_object *t)
{
	struct merr m = {0};
	const char *name = js_str(t, "Name", "");
	if (!*name)
		merr_add(&m, "Missing task name");
	if (strchr(name, '/'))
		merr_add(&m, "Task name cannot include slashes");
	if (!*js_str(t, "Driver", ""))
		merr_add(&m, "Missing task driver");
	if (js_int(t, "KillTimeout", 0) < 0)
		merr_add(&m, "KillTimeout must be a positive value");
	if (js_int(t, "ShutdownDelay", 0) < 0)
		merr_add(&m, "ShutdownDelay must be a positive value");
	char *r = validate_resources(js_obj(t, "Resources"));
	if (r) {
		merr_add(&m, "%s", r);
		free(r);
	}
	return merr_format(&m);
}

static char *validate_group(json_object *g)
{
	struct merr m = {0};
	if (!*js_str(g, "Name", ""))
		merr_add(&m, "Missing task group name");
	if (js_int(g, "Count", 0) < 0)
		merr_add(&m, "Task group count can't be negative");
	json_object *tasks = js_obj(g, "Tasks");
	if (!tasks || json_object_array_length(tasks) == 0)
		merr_add(&m, "Missing tasks for task group");
	validate_restart(js_obj(g, "RestartPolicy"), &m);
	for (size_t i = 0; tasks && i < json_object_array_length(tasks); i++) {
		json_object *t = json_object_array_get_idx(tasks, i);
		char *te = validate_task(t);
		if (te) {
			merr_add(&m, "Task %s validation failed: %s", js_str(t, "Name", ""), te);
			free(te);
		}
	}
	return merr_format(&m);
}

static char *validate_job(json_object *j)
{
	struct merr m = {0};
	const char *id = js_str(j, "ID", ""), *type = js_str(j, "Type", "");
	if (!*js_str(j, "Region", ""))
		merr_add(&m, "Missing job region");
	if (!*id)
		merr_add(&m, "Missing job ID");
	else if (strchr(id, ' '))
		merr_add(&m, "Job ID contains a space");
	if (!*js_str(j, "Name", ""))
		merr_add(&m, "Missing job name");
	if (!*js_str(j, "Namespace", ""))
		merr_add(&m, "Job must be in a namespace");
	if (!*type)
		merr_add(&m, "Missing job type");
	else if (strcmp(type, "service") && strcmp(type, "batch") && strcmp(type, "system") &&
		 strcmp(type, "sysbatch") && strcmp(type, "_core"))
		merr_add(&m, "Invalid job type: \"%s\"", type);
	json_object *dcs = js_obj(j, "Datacenters");
	for (size_t i = 0; dcs && i < json_object_array_length(dcs); i++) {
		json_object *dc = json_object_array_get_idx(dcs, i);
		if (!dc || !*json_object_get_string(dc))
			merr_add(&m, "Job datacenter must be non-empty string");
	}
	json_object *groups = js_obj(j, "TaskGroups");
	if (!groups || json_object_array_length(groups) == 0)
		merr_add(&m, "Missing job task groups");
	for (size_t i = 0; groups && i < json_object_array_length(groups); i++) {
		const char *name = js_str(json_object_array_get_idx(groups, i), "Name", "");
		if (!*name) {
			merr_add(&m, "Job task group %zu missing name", i + 1);
			continue;
		}
		for (size_t k = 0; k < i; k++)
			if (strcmp(js_str(json_object_array_get_idx(groups, k), "Name", ""), name) == 0) {
				merr_add(&m, "Job task group %zu redefines '%s' from group %zu", i + 1, name, k + 1);
				break;
			}
	}
	for (size_t i = 0; groups && i < json_object_array_length(groups); i++) {
		json_object *g = json_object_array_get_idx(groups, i);
		char *ge = validate_group(g);
		if (ge) {
			merr_add(&m, "Task group %s validation failed: %s", js_str(g, "Name", ""), ge);
			free(ge);
		}
	}
	long long prio = js_int(j, "Priority", 50);
	if (prio < 1 || prio > 100)
		merr_add(&m, "Job priority must be between [1, 100]");
	return merr_format(&m);
}

/* ---- entry point ---- */

int jobspec_register(const char *body, size_t len, int has_body, const char *query_ns, const char *query_region,
		     const char *path_id, struct jobspec_request *out, char err[JOBSPEC_ERR_MAX])
{
	int is_null = 0;
	memset(out, 0, sizeof *out);
	schema_init();
	if (!has_body || len == 0) {
		snprintf(err, JOBSPEC_ERR_MAX, "Request body is empty");
		return 400;
	}
	json_object *raw = gojson_parse(body, len, GOJSON_DECODER, &is_null, err, JOBSPEC_ERR_MAX);
	if (!raw && !is_null)
		return 400;
	json_object *req = NULL;
	if (raw) {
		if (!json_object_is_type(raw, json_type_object)) {
			char kt[96];
			snprintf(err, JOBSPEC_ERR_MAX, "json: cannot unmarshal %s into Go value of type api.JobRegisterRequest",
				 kind_of(raw, kt, sizeof kt, 0));
			json_object_put(raw);
			return 400;
		}
		struct decode_ctx d = {.err = err, .cap = JOBSPEC_ERR_MAX};
		req = decode_struct(&d, raw, "", "JobRegisterRequest");
		json_object_put(raw);
		if (d.failed)
			return 400;
	}
	json_object *job = js_obj(req, "Job");
	if (!job) {
		snprintf(err, JOBSPEC_ERR_MAX, "Job must be specified");
		json_object_put(req);
		return 400;
	}
	if (!js_obj(job, "ID")) {
		snprintf(err, JOBSPEC_ERR_MAX, "Job ID hasn't been provided");
		json_object_put(req);
		return 400;
	}
	if (path_id && strcmp(js_str(job, "ID", ""), path_id) != 0) {
		snprintf(err, JOBSPEC_ERR_MAX, "Job ID does not match name");
		json_object_put(req);
		return 400;
	}
	long long eval_prio = js_int(req, "EvalPriority", 0);
	if (eval_prio != 0 && (eval_prio < 1 || eval_prio > 100)) {
		snprintf(err, JOBSPEC_ERR_MAX, "Eval priority must be between 1 and 100 inclusively");
		json_object_put(req);
		return 400;
	}
	/* namespace: query > request body > job > default */
	const char *ns = query_ns && *query_ns ? query_ns
			 : *js_str(req, "Namespace", "") ? js_str(req, "Namespace", "")
			 : *js_str(job, "Namespace", "") ? js_str(job, "Namespace", "")
							 : "default";
	/* region: query > request body > job > ours */
	const char *region = query_region && *query_region ? query_region
			     : *js_str(req, "Region", "") ? js_str(req, "Region", "")
			     : js_obj(job, "Region") ? js_str(job, "Region", "")
						      : "";
	if (!*region || strcmp(region, "global") == 0)
		region = "global";
	else {
		snprintf(err, JOBSPEC_ERR_MAX, "No path to region");
		json_object_put(req);
		return 500;
	}
	snprintf(out->ns, sizeof out->ns, "%s", ns);
	out->eval_priority = (int)eval_prio;
	out->enforce_index = js_bool(req, "EnforceIndex");
	out->job_modify_index = (unsigned long long)js_int(req, "JobModifyIndex", 0);
	json_object *canon = canon_job(job, ns, region);
	json_object_put(req);
	char *verr = validate_job(canon);
	if (verr) {
		snprintf(err, JOBSPEC_ERR_MAX, "%s", verr);
		free(verr);
		json_object_put(canon);
		return 500;
	}
	snprintf(out->id, sizeof out->id, "%s", js_str(canon, "ID", ""));
	out->job = canon;
	return 0;
}

/* ---- fingerprints ---- */

static const char *volatile_job_keys[] = {"Status", "StatusDescription", "Stable", "Version", "SubmitTime",
					  "CreateIndex", "ModifyIndex", "JobModifyIndex", "NomadTokenID", NULL};

char *jobspec_fingerprint(json_object *job)
{
	json_object *copy = json_object_new_object();
	json_object_object_foreach(job, k, v)
	{
		int skip = 0;
		for (int i = 0; volatile_job_keys[i]; i++)
			skip |= strcmp(k, volatile_job_keys[i]) == 0;
		if (!skip)
			json_object_object_add(copy, k, v ? json_object_get(v) : NULL);
	}
	char *s = strdup(json_object_to_json_string_ext(copy, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(copy);
	return s;
}

char *jobspec_group_fingerprint(json_object *group)
{
	return strdup(json_object_to_json_string_ext(group, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}
