/* api: the route table of nomad-local's HTTP API and its handlers.
 *
 * Maps method + path to handlers the way Nomad's mux does (exact paths, "/v1/job/" style
 * prefixes with sub-resources, 405 "Invalid method", 404 with an empty body for unknown
 * paths), checks the ACL token when one is configured (X-Nomad-Token or Authorization:
 * Bearer; missing: "Permission denied", unknown: "ACL token not found", both 403), and writes
 * JSON with Nomad's headers (X-Nomad-Index, X-Nomad-Knownleader, X-Nomad-Lastcontact). Handlers
 * are short: jobspec decodes, sched changes state, render shapes the answer.
 */
#ifndef NL_API_H
#define NL_API_H

#include "httpd.h"

struct api_config {
	const char *token;     /* "" or NULL: ACLs disabled */
	const char *http_addr; /* advertised ip:port */
	const char *hostname;
};

void api_init(const struct api_config *cfg);
void api_handle(struct http_conn *c, struct http_req *r);

#endif
