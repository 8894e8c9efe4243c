/* model: our API's JSON, in and out (docs/api.md), and nothing else.
 *
 * Parsing mirrors Go's encoding/json as the reference service uses it, because CodeOcean was
 * written against it: unknown fields are ignored, missing fields and JSON null keep the zero
 * value (environment id 0 is real), keys match case-insensitively, only the first JSON value of
 * a body is read. Typing is strict: a wrong type, a negative unsigned, a port outside 0..65535
 * or an integer beyond int64/uint64 is a PERR_BAD_REQUEST whose message reads like Go's
 * ("EOF", "unexpected EOF", "invalid character ...", "json: cannot unmarshal ...").
 * Renderers return malloc'd NUL-terminated strings the caller frees; they never fail except
 * on allocation failure (NULL).
 */
#ifndef POSEIDON_MODEL_H
#define POSEIDON_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define MODEL_IMAGE_MAX 1024
#define MODEL_MAX_PORTS 64
#define MODEL_RUNNER_ID_MAX 128

/* PUT /execution-environments/{id} body, and the stored environment. */
struct environment {
	long long id; /* from the URL, never from the body */
	unsigned long long prewarming_pool_size;
	unsigned long long cpu_limit;    /* MHz */
	unsigned long long memory_limit; /* MB */
	char image[MODEL_IMAGE_MAX];
	int network_access;
	int ports_null; /* exposedPorts was absent or null: rendered as null */
	int nports;
	uint16_t ports[MODEL_MAX_PORTS];
};

/* POST /runners body. */
struct runner_request {
	long long environment_id;
	long long inactivity_timeout; /* seconds; 0 = none, negative = expire at once */
};

/* POST /runners/{id}/execute body. Strings are owned by the struct: model_execution_free. */
struct env_var {
	char *name;
	char *value;
};
struct execution_request {
	char *command;   /* never NULL after a successful parse */
	size_t command_len;
	int privileged;
	long long time_limit; /* seconds; 0 = unlimited */
	size_t nenv;
	struct env_var *env;
};

/* PATCH /runners/{id}/files body. Owned by the struct: model_files_free. */
struct file_copy {
	char *path;
	unsigned char *content; /* decoded bytes (may be NULL when len == 0) */
	size_t len;
};
struct files_request {
	size_t ndelete;
	char **delete_paths;
	size_t ncopy;
	struct file_copy *copy;
};

/* One entry of GET /runners/{id}/mappedPorts. */
struct mapped_port {
	uint16_t exposed_port;
	char host_address[64]; /* "ip:port" */
};

/* One environment's counters for GET /statistics/execution-environments. */
struct env_stats {
	long long id;
	unsigned long long prewarming_pool_size;
	unsigned long long idle;
	unsigned long long used;
	unsigned long long starting; /* not rendered: for the refill daemon */
	long long generation;        /* not rendered */
};

int model_parse_environment(const char *body, size_t len, struct environment *out, struct perr *e);
int model_parse_runner_request(const char *body, size_t len, struct runner_request *out,
			       struct perr *e);
int model_parse_execution_request(const char *body, size_t len, struct execution_request *out,
				  struct perr *e);
void model_execution_free(struct execution_request *r);
int model_parse_files_request(const char *body, size_t len, struct files_request *out,
			      struct perr *e);
void model_files_free(struct files_request *r);

/* Parses an environment id URL segment like Go's strconv.Atoi: digits only is the router's
 * job; here only the range. On overflow the message is Go's ("strconv.Atoi: parsing ...").*/
int model_parse_env_id(const char *s, long long *out, struct perr *e);
/* Go's strconv.ParseBool spellings; empty -> def. -1 with Go's message on anything else. */
int model_parse_bool(const char *s, int def, int *out, struct perr *e);

/* exposedPorts as stored in Redis: "null" or "[1,2]"; and back. */
char *model_ports_to_json(const struct environment *env);
int model_ports_from_json(const char *s, struct environment *env, struct perr *e);

char *model_render_environment(const struct environment *env);
char *model_render_environments(const struct environment *envs, size_t n);
char *model_render_runner(const char *runner_id, const struct mapped_port *ports, size_t n);
char *model_render_statistics(const struct env_stats *s, size_t n);
char *model_render_execution_response(const char *websocket_url);
/* {"message": msg} when error_code is NULL, else {"message": msg, "errorCode": error_code}. */
char *model_render_error(const char *message, const char *error_code);
/* A JSON string literal (with quotes) for s; GET /version's body. */
char *model_render_string(const char *s);


/* A prepared execution as stored in Redis: the request plus its runner id. */
char *model_stored_execution(const char *runner_id, const struct execution_request *x);
int model_parse_stored_execution(const char *s, char *runner_id, size_t cap, struct execution_request *x,
				 struct perr *e);

/* A runner's mapped ports as stored in Redis (the API's JSON array) and back. */
char *model_mapped_ports_to_json(const struct mapped_port *ports, size_t n);
int model_mapped_ports_from_json(const char *s, struct mapped_port *ports, int max, int *n,
				 struct perr *e);

#endif
