/* contract: the integration tests' record of what the API answered, for tests/contract/validate.mjs.
 *
 * When POSEIDON_CONTRACT_LOG names a file, every HTTP exchange that the harness's helpers (h_http,
 * and wsc_request for the WebSocket route) make with a path under /api/v1, and every text message
 * a wsclient connection upgraded on such a path receives, is appended to it as one JSON line:
 *   {"kind":"http","test":T,"method":M,"path":P,"status":S,"contentType":C|null,"body64":B[,"truncated":true]}
 *   {"kind":"ws","test":T,"path":P,"data64":B}
 * (T the test program, P the path with its query, B base64; a body that is not JSON is cut at
 * 1 MiB and marked truncated). The filter on /api/v1 keeps out the
 * requests tests send to nomad-local (/v1/...) and to non-API paths (/, /status/, /metrics).
 * Each line is one write(2) on an O_APPEND descriptor, so threads and successive test programs
 * can share the file. Without the variable nothing is recorded and nothing costs. */
#ifndef POSEIDON_TESTS_CONTRACT_H
#define POSEIDON_TESTS_CONTRACT_H

#include <stddef.h>

/* 1 when recording is on and path_query (a path, or a full http(s):// URL) is under /api/v1. */
int contract_wanted(const char *path_or_url);
/* One HTTP exchange. headers is the raw response head (several blocks allowed: the last counts
 * for Content-Type); body/len the response body. */
void contract_http(const char *method, const char *path_or_url, long status, const char *headers,
                   const void *body, size_t len);
/* One WebSocket text message received on the upgraded connection to path. */
void contract_ws(const char *path, const void *data, size_t len);

#endif
