/* wsreq: what a request to poseidon-wsgate asks for, decided without I/O (docs/api.md
 * section 3, WS-1/2, AUTH-6).
 *
 * The gateway's one route is GET /api/v1/runners/{runnerId}/websocket?executionID=<id>. Its checks
 * run in the reference's order, each answered before the next is looked at: method (405), token
 * (401), runner (410), execution (404), upgrade (400), Origin (403). This module holds the parts
 * of that decision that need no Redis: the route match and gorilla/websocket's same-origin rule.
 */
#ifndef POSEIDON_WSREQ_H
#define POSEIDON_WSREQ_H

#include <stddef.h>

#define WSREQ_PATH_PREFIX "/api/v1/runners/"
#define WSREQ_PATH_SUFFIX "/websocket"

/* 1 and the runner id in out when path (decoded, without query) is the WebSocket route of a
 * runner; 0 for any other path or an id that does not fit cap. */
int wsreq_runner_from_path(const char *path, char *out, size_t cap);

/* gorilla's checkSameOrigin: no Origin header (NULL or "") passes; otherwise the host[:port] of
 * the Origin URL must equal the Host header, ignoring ASCII case. 1 passes, 0 is a 403. */
int wsreq_same_origin(const char *origin, const char *host);

#endif
