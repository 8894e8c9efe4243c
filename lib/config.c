/* config: see config.h. The table `keys` below is the single source of truth: defaults,
 * types, ranges, environment names and the generated reference in docs/ all come from it.
 * YAML is read with libyaml's document API and flattened into dotted keys; sequences are not
 * used by any key we honour and are skipped with a warning, like unknown keys. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

#include "log.h"

enum ktype { K_STR, K_INT, K_BOOL, K_FLOAT, K_LEVEL, K_SCHEME };

struct key {
	const char *name;
	enum ktype type;
	size_t off, size;
	long long min, max; /* K_INT / K_FLOAT ranges */
	const char *def;
	const char *doc;
};

#define F(field) offsetof(struct config, field), sizeof(((struct config *)0)->field)
#define STR(n, field, def, doc) {n, K_STR, F(field), 0, 0, def, doc}
#define INT(n, field, lo, hi, def, doc) {n, K_INT, F(field), lo, hi, def, doc}
#define BOOL(n, field, def, doc) {n, K_BOOL, F(field), 0, 1, def, doc}

static const struct key keys[] = {
	STR("server.address", server.address, "127.0.0.1", "Address the front end listens on (lighttpd.conf reads POSEIDON_SERVER_ADDRESS)."),
	INT("server.port", server.port, 1, 65535, "7200", "Port of the HTTP front end."),
	STR("server.token", server.token, "", "Poseidon-Token required on every route but /health and /version; empty disables auth."),
	BOOL("server.tls.active", server.tls.active, "false", "Clients reach the service over TLS: websocketUrl uses wss."),
	STR("server.tls.certfile", server.tls.certfile, "", "TLS certificate for the front end (used by the web server's config)."),
	STR("server.tls.keyfile", server.tls.keyfile, "", "TLS key for the front end (used by the web server's config)."),
	STR("server.tls.cafile", server.tls.cafile, "", "CA file for self checks."),
	BOOL("server.interactivestderr", server.interactivestderr, "true", "Deliver stderr as separate `stderr` messages; false merges it into stdout."),
	STR("server.templatejobfile", server.templatejobfile, "", "Nomad JSON job template for environments; empty uses deploy/template-job.json."),
	{"server.alert.prewarmingpoolthreshold", K_FLOAT, F(server.alert.prewarmingpoolthreshold), 0, 1, "0", "/health answers 503 when idle/poolsize falls below this ratio (0 disables)."},
	INT("server.alert.prewarmingpoolreloadtimeout", server.alert.prewarmingpoolreloadtimeout, 0, INT_MAX, "0", "Accepted for the reference's configuration files and not used: poseidon-refill replaces runners that do not start within refill.starttimeout and reconciles with Nomad every reconcile.interval, which is what the reference's reload was for."),
	INT("server.maxbodysize", server.maxbodysize, 1024, LLONG_MAX / 2, "67108864", "Largest accepted request body in bytes; larger bodies get 413, from the web server in front before it stores them (lighttpd takes this value; set nginx's and Apache's sites to it)."),
	{"server.publicscheme", K_SCHEME, F(server.publicscheme), 0, 0, "", "Scheme of websocketUrl: empty derives it from TLS and X-Forwarded-Proto, or ws / wss."},
	BOOL("nomad.enabled", nomad.enabled, "true", "Use Nomad (always true here; kept for compatibility)."),
	STR("nomad.address", nomad.address, "127.0.0.1", "Nomad API host."),
	INT("nomad.port", nomad.port, 1, 65535, "4646", "Nomad API port."),
	STR("nomad.token", nomad.token, "", "Nomad ACL token sent as X-Nomad-Token."),
	BOOL("nomad.tls.active", nomad.tls.active, "false", "Talk to Nomad over HTTPS."),
	STR("nomad.tls.cafile", nomad.tls.cafile, "", "CA certificate to verify Nomad."),
	STR("nomad.tls.certfile", nomad.tls.certfile, "", "Client certificate for Nomad mTLS."),
	STR("nomad.tls.keyfile", nomad.tls.keyfile, "", "Client key for Nomad mTLS."),
	STR("nomad.namespace", nomad.namespace, "default", "Nomad namespace of all jobs."),
	BOOL("nomad.disableforcepull", nomad.disableforcepull, "false", "Do not force image pulls for new runners."),
	STR("nomad.network.mode", nomad.network.mode, "bridge", "Network mode of runners whose environment has networkAccess."),
	{"logger.level", K_LEVEL, F(logger.level), 0, 0, "info", "debug, info, warn or error."},
	STR("logger.formatter", logger.formatter, "logfmt", "Accepted for compatibility; lines are always logfmt."),
	STR("sentry.release", sentry.release, "", "Body of GET /version; empty uses the build's git describe."),
	STR("redis.address", redis.address, "127.0.0.1", "Redis host (or a unix socket path starting with /)."),
	INT("redis.port", redis.port, 1, 65535, "6379", "Redis port."),
	STR("redis.password", redis.password, "", "Redis AUTH password."),
	INT("redis.db", redis.db, 0, 15, "0", "Redis database number."),
	STR("redis.prefix", redis.prefix, "poseidon:", "Prefix of every Redis key."),
	INT("redis.timeoutms", redis.timeoutms, 10, 60000, "2000", "Connect and command timeout for Redis in milliseconds."),
	STR("wsgate.address", wsgate.address, "127.0.0.1", "Address poseidon-wsgate listens on (the web server proxies to it)."),
	INT("wsgate.port", wsgate.port, 1, 65535, "7201", "Port poseidon-wsgate listens on."),
	INT("wsgate.maxexecutions", wsgate.maxexecutions, 1, 1000000, "2000", "Executions one poseidon-wsgate runs at once (connected, or ending after their client left); beyond, a connection is refused with 503."),
	INT("wsgate.maxexecutionsperrunner", wsgate.maxexecutionsperrunner, 1, 10000, "16", "Connected executions on one runner (per gateway); beyond, a connection is refused with 429."),
	INT("refill.parallelism", refill.parallelism, 1, 256, "8", "Runner jobs poseidon-refill registers or purges at the same time."),
	INT("refill.starttimeout", refill.starttimeout, 5, 86400, "300", "Seconds a new runner may take to run before it is replaced."),
	INT("refill.tickms", refill.tickms, 10, 60000, "200", "Milliseconds between two refill passes."),
	INT("reconcile.interval", reconcile.interval, 1, 86400, "30", "Seconds between full comparisons of Redis with Nomad."),
	BOOL("metrics.public", metrics.public, "false", "Serve GET /metrics without the Poseidon-Token (for a Prometheus without credentials)."),
	INT("metrics.flushms", metrics.flushms, 10, 60000, "1000", "Milliseconds between two additions of a process's figures to Redis (what /metrics may lag behind)."),
	STR("influxdb.url", influxdb.url, "", "InfluxDB base URL; when set, poseidon-refill (the leader) pushes the metrics as line protocol."),
	STR("influxdb.token", influxdb.token, "", "InfluxDB token, sent as `Authorization: Token ...`."),
	STR("influxdb.organization", influxdb.organization, "", "InfluxDB 2 organization (with influxdb.bucket)."),
	STR("influxdb.bucket", influxdb.bucket, "", "InfluxDB 2 bucket: writes go to /api/v2/write."),
	STR("influxdb.database", influxdb.database, "", "InfluxDB 1 database, used when no bucket is set: writes go to /write."),
	STR("influxdb.stage", influxdb.stage, "", "Value of the tag `stage` on every pushed point (empty: no tag)."),
	INT("influxdb.interval", influxdb.interval, 1, 3600, "10", "Seconds between two pushes to InfluxDB."),
};

#define NKEYS (sizeof keys / sizeof keys[0])

static const struct key *find_key(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcasecmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

/* Go's strconv.ParseBool spellings, plus YAML's yes/no/on/off. */
static int parse_bool(const char *s, int *out)
{
	static const char *yes[] = {"1", "t", "T", "TRUE", "true", "True", "yes", "Yes", "YES", "on", "On", "ON"};
	static const char *no[] = {"0", "f", "F", "FALSE", "false", "False", "no", "No", "NO", "off", "Off", "OFF"};
	for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
		if (strcmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

static int set_value(struct config *c, const struct key *k, const char *v, const char *source,
		     struct perr *e)
{
	char *field = (char *)c + k->off;
	char *end;
	errno = 0;
	switch (k->type) {
	case K_STR:
		if (strlen(v) >= k->size)
			return perr_set(e, PERR_BAD_REQUEST, "config %s (%s): value longer than %zu bytes",
					k->name, source, k->size - 1);
		memcpy(field, v, strlen(v) + 1);
		return 0;
	case K_INT: {
		long long n = strtoll(v, &end, 10);
		if (errno || end == v || *end || n < k->min || n > k->max)
			return perr_set(e, PERR_BAD_REQUEST,
					"config %s (%s): \"%s\" is not an integer in %lld..%lld", k->name,
					source, v, k->min, k->max);
		if (k->size == sizeof(int))
			*(int *)field = (int)n;
		else
			*(long long *)field = n;
		return 0;
	}
	case K_BOOL:
		if (parse_bool(v, (int *)field) < 0)
			return perr_set(e, PERR_BAD_REQUEST, "config %s (%s): \"%s\" is not a boolean",
					k->name, source, v);
		return 0;
	case K_FLOAT: {
		double d = strtod(v, &end);
		if (errno || end == v || *end || !isfinite(d) || d < (double)k->min || d > (double)k->max)
			return perr_set(e, PERR_BAD_REQUEST,
					"config %s (%s): \"%s\" is not a number in %lld..%lld", k->name,
					source, v, k->min, k->max);
		*(double *)field = d;
		return 0;
	}
	case K_LEVEL: {
		enum log_level l;
		if (log_parse_level(v, &l) < 0)
			return perr_set(e, PERR_BAD_REQUEST,
					"config %s (%s): \"%s\" is not one of debug, info, warn, error",
					k->name, source, v);
		snprintf(field, k->size, "%s", v);
		return 0;
	}
	case K_SCHEME:
		if (*v && strcmp(v, "ws") != 0 && strcmp(v, "wss") != 0)
			return perr_set(e, PERR_BAD_REQUEST, "config %s (%s): \"%s\" is not ws or wss",
					k->name, source, v);
		snprintf(field, k->size, "%s", v);
		return 0;
	}
	return perr_set(e, PERR_UNKNOWN, "config %s: bad key type", k->name);
}

int config_set(struct config *c, const char *key, const char *value, const char *source,
	       struct perr *e)
{
	const struct key *k = find_key(key);
	if (!k)
		return 1;
	return set_value(c, k, value, source, e);
}

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof *c);
	for (size_t i = 0; i < NKEYS; i++) {
		struct perr e;
		if (set_value(c, &keys[i], keys[i].def, "default", &e) < 0)
			abort(); /* a broken default is a programming error */
	}
}

/* Walks a YAML mapping, joining keys with '.', and applies every scalar leaf. */
static int apply_node(struct config *c, yaml_document_t *doc, yaml_node_t *node, const char *prefix,
		      const char *path, struct perr *e)
{
	char source[CONFIG_PATH + 16];
	snprintf(source, sizeof source, "file %s", path);
	if (node->type == YAML_SCALAR_NODE) {
		const char *v = (const char *)node->data.scalar.value;
		if (!*prefix)
			return 0; /* an empty document */
		/* "~" and "null" leave the default in place, as Go's decoder does. */
		if (node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
		    (strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || !*v))
			return 0;
		int r = config_set(c, prefix, v, source, e);
		if (r == 1)
			log_warn("unknown configuration key ignored", "key", prefix, "file", path);
		return r < 0 ? -1 : 0;
	}
	if (node->type == YAML_SEQUENCE_NODE) {
		if (find_key(prefix))
			return perr_set(e, PERR_BAD_REQUEST, "config %s (%s): expected a scalar, got a list",
					prefix, source);
		log_warn("unknown configuration key ignored", "key", prefix, "file", path);
		return 0;
	}
	if (node->type != YAML_MAPPING_NODE)
		return 0;
	if (*prefix && find_key(prefix))
		return perr_set(e, PERR_BAD_REQUEST, "config %s (%s): expected a scalar, got a mapping",
				prefix, source);
	for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);
		yaml_node_t *v = yaml_document_get_node(doc, p->value);
		if (!k || !v || k->type != YAML_SCALAR_NODE)
			return perr_set(e, PERR_BAD_REQUEST, "config file %s: mapping keys must be scalars", path);
		char name[256];
		int n = snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "." : "",
				 (const char *)k->data.scalar.value);
		if (n < 0 || (size_t)n >= sizeof name)
			return perr_set(e, PERR_BAD_REQUEST, "config file %s: key too long", path);
		if (apply_node(c, doc, v, name, path, e) < 0)
			return -1;
	}
	return 0;
}

int config_apply_file(struct config *c, const char *path, struct perr *e)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return perr_set(e, PERR_BAD_REQUEST, "config file %s: %s", path, strerror(errno));
	yaml_parser_t parser;
	yaml_document_t doc;
	int rc = 0;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		rc = perr_set(e, PERR_BAD_REQUEST, "config file %s: line %zu: %s", path,
			      parser.problem_mark.line + 1, parser.problem ? parser.problem : "invalid YAML");
	} else {
		yaml_node_t *root = yaml_document_get_root_node(&doc);
		if (root)
			rc = apply_node(c, &doc, root, "", path, e);
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&parser);
	fclose(f);
	return rc;
}

/* "POSEIDON_SERVER_ALERT_PREWARMINGPOOLTHRESHOLD" for "server.alert.prewarmingpoolthreshold". */
static void env_name(const char *key, char *out, size_t cap)
{
	size_t n = (size_t)snprintf(out, cap, "POSEIDON_");
	for (const char *p = key; *p && n + 1 < cap; p++)
		out[n++] = *p == '.' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
	out[n] = '\0';
}

int config_apply_env(struct config *c, char *const *envp, struct perr *e)
{
	if (!envp)
		return 0;
	for (size_t i = 0; i < NKEYS; i++) {
		char name[128];
		env_name(keys[i].name, name, sizeof name);
		size_t n = strlen(name);
		for (char *const *v = envp; *v; v++) {
			if (strncmp(*v, name, n) == 0 && (*v)[n] == '=') {
				char source[160];
				snprintf(source, sizeof source, "environment %s", name);
				if (set_value(c, &keys[i], *v + n + 1, source, e) < 0)
					return -1;
			}
		}
	}
	return 0;
}

const char *config_path_from_args(int argc, char **argv)
{
	for (int i = 1; argv && i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-config") == 0 || strcmp(a, "--config") == 0)
			return i + 1 < argc ? argv[i + 1] : "";
		if (strncmp(a, "-config=", 8) == 0)
			return a + 8;
		if (strncmp(a, "--config=", 9) == 0)
			return a + 9;
	}
	return NULL;
}

extern char **environ;

int config_load(struct config *c, int argc, char **argv, struct perr *e)
{
	config_defaults(c);
	const char *path = config_path_from_args(argc, argv);
	if (path && !*path)
		return perr_set(e, PERR_BAD_REQUEST, "-config needs a file path");
	if (!path || !*path)
		path = getenv("POSEIDON_CONFIG");
	if ((!path || !*path) && access("configuration.yaml", F_OK) == 0)
		path = "configuration.yaml";
	if (path && *path && config_apply_file(c, path, e) < 0)
		return -1;
	return config_apply_env(c, environ, e);
}

int config_apply_logging(const struct config *c, struct perr *e)
{
	enum log_level l;
	if (log_parse_level(c->logger.level, &l) < 0)
		return perr_set(e, PERR_BAD_REQUEST, "config logger.level: bad level %s", c->logger.level);
	log_set_level(l);
	log_add_secret(c->server.token);
	log_add_secret(c->nomad.token);
	log_add_secret(c->redis.password);
	log_add_secret(c->influxdb.token);
	return 0;
}

int config_get(const struct config *c, const char *key, char *out, size_t cap)
{
	const struct key *k = find_key(key);
	const char *field;
	if (!k)
		return -1;
	field = (const char *)c + k->off;
	switch (k->type) {
	case K_INT:
		if (k->size == sizeof(int))
			snprintf(out, cap, "%d", *(const int *)field);
		else
			snprintf(out, cap, "%lld", *(const long long *)field);
		break;
	case K_BOOL: snprintf(out, cap, "%s", *(const int *)field ? "true" : "false"); break;
	case K_FLOAT: snprintf(out, cap, "%g", *(const double *)field); break;
	default: snprintf(out, cap, "%s", field); break;
	}
	return 0;
}

void config_write_reference(FILE *f)
{
	fprintf(f, "| key | environment variable | default | meaning |\n|---|---|---|---|\n");
	for (size_t i = 0; i < NKEYS; i++) {
		char name[128];
		env_name(keys[i].name, name, sizeof name);
		fprintf(f, "| `%s` | `%s` | `%s` | %s |\n", keys[i].name, name,
			*keys[i].def ? keys[i].def : "\"\"", keys[i].doc);
	}
}
