/* config: the service configuration, one table for every key.
 *
 * Keys are the reference service's (server.*, nomad.*, logger.*, influxdb.*, ...) plus our own
 * redis.*, wsgate.*, refill.*, metrics.* and limits. Sources, highest precedence first:
 *   1. environment variables POSEIDON_<SECTION>_<KEY> (upper case, '.' -> '_'),
 *   2. the YAML file given by `-config PATH`, else $POSEIDON_CONFIG, else ./configuration.yaml
 *      when it exists,
 *   3. the defaults in config.c's table.
 * A value that does not parse or is out of range is an error naming the key and its source.
 * Unknown keys in the file are logged and ignored, so a reference configuration can be reused.
 * The struct has fixed-size strings: nothing in it needs freeing.
 */
#ifndef POSEIDON_CONFIG_H
#define POSEIDON_CONFIG_H

#include <stdio.h>

#include "err.h"

#define CONFIG_STR 256
#define CONFIG_PATH 1024

struct config_tls {
	int active;
	char certfile[CONFIG_PATH];
	char keyfile[CONFIG_PATH];
	char cafile[CONFIG_PATH];
};

struct config {
	struct {
		char address[CONFIG_STR];
		int port;
		char token[CONFIG_STR];
		struct config_tls tls;
		int interactivestderr;
		char templatejobfile[CONFIG_PATH];
		struct {
			double prewarmingpoolthreshold;
			long long prewarmingpoolreloadtimeout;
		} alert;
		long long maxbodysize;  /* bytes; larger request bodies get 413 */
		char publicscheme[8];   /* "" (derive), "ws" or "wss" for websocketUrl */
	} server;
	struct {
		int enabled;
		char address[CONFIG_STR];
		int port;
		char token[CONFIG_STR];
		struct config_tls tls;
		char namespace[CONFIG_STR];
		int disableforcepull;
		struct {
			char mode[CONFIG_STR];
		} network;
	} nomad;
	struct {
		char level[16];
		char formatter[32];
	} logger;
	struct {
		char release[CONFIG_STR];
	} sentry;
	struct {
		char address[CONFIG_STR];
		int port;
		char password[CONFIG_STR];
		int db;
		char prefix[64];
		int timeoutms;
	} redis;
	struct {
		char address[CONFIG_STR];
		int port;
		int maxexecutions;          /* open executions one gateway serves at once */
		int maxexecutionsperrunner; /* of them on one runner */
	} wsgate;
	struct {
		int parallelism;  /* concurrent Nomad registrations/purges */
		int starttimeout; /* seconds a runner may take to start before it is replaced */
		int tickms;       /* pause between refill passes */
	} refill;
	struct {
		int interval; /* seconds between full Redis/Nomad comparisons */
	} reconcile;
	struct {
		int public;  /* GET /metrics answers without the Poseidon-Token */
		int flushms; /* how often a process adds its figures to Redis */
	} metrics;
	struct {
		char url[CONFIG_STR]; /* empty: no push */
		char token[CONFIG_STR];
		char organization[CONFIG_STR];
		char bucket[CONFIG_STR];   /* InfluxDB 2 (with organization) */
		char database[CONFIG_STR]; /* InfluxDB 1, when no bucket is set */
		char stage[CONFIG_STR];    /* sent as the tag stage */
		int interval;              /* seconds between pushes */
	} influxdb;
};

/* Fills every field with its default. */
void config_defaults(struct config *c);

/* The usual start-up: defaults, then the file (from argv's -config, $POSEIDON_CONFIG or
 * ./configuration.yaml), then the process environment. On error returns -1 with e naming the
 * key. argv may be NULL. */
int config_load(struct config *c, int argc, char **argv, struct perr *e);

/* Applies one YAML file on top of c. A missing file is an error. */
int config_apply_file(struct config *c, const char *path, struct perr *e);

/* Applies POSEIDON_* variables from envp (NULL-terminated "K=V" strings) on top of c. */
int config_apply_env(struct config *c, char *const *envp, struct perr *e);

/* Sets one key ("server.port") from its text form, as the file and env loaders do.
 * source names the origin for error messages. Returns 1 if the key is unknown, 0 if set, -1 on
 * a bad value. */
int config_set(struct config *c, const char *key, const char *value, const char *source,
	       struct perr *e);

/* Finds "-config PATH", "--config PATH" or "-config=PATH" in argv; NULL when absent. */
const char *config_path_from_args(int argc, char **argv);

/* Formats key's current value into out (booleans as true/false). 0, or -1 for an unknown key. */
int config_get(const struct config *c, const char *key, char *out, size_t cap);

/* Writes the key table (key, env variable, default, description) as a Markdown table. */
void config_write_reference(FILE *f);

/* Applies logger.level and registers the secrets with lib/log. */
int config_apply_logging(const struct config *c, struct perr *e);

#endif
