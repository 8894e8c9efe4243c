/* exec: Nomad's alloc exec WebSocket (/v1/client/allocation/<id>/exec).
 *
 * The command runs inside the allocation's sandbox (its cgroup, namespaces, root and
 * /workspace), with the task's environment, on a pty when tty=true (stderr merged, 80x24 until
 * a tty_size frame) or on pipes. Frames follow docs/nomad-api.md:
 * stdout/stderr data as base64 in chunks of at most EXEC_FRAME_MAX bytes, both close frames
 * after the process ended, then {"exited":true,"result":{...}} (exit_code omitted for 0) and
 * a TCP close without a close frame. Errors before the upgrade are plain HTTP 500s; after it,
 * close frames 1008/1011 with Nomad's texts. A process killed because its allocation was
 * OOM-killed reports exit code 128, as Docker does for an exec'd process.
 */
#ifndef NL_EXEC_H
#define NL_EXEC_H

#include "httpd.h"

#define EXEC_FRAME_MAX 1024
#define EXEC_READ_MAX 65536
#define EXEC_OUT_HIGH (1024 * 1024)
#define EXEC_OUT_LOW (256 * 1024)
#define EXEC_STDIN_MAX (1024 * 1024)
#define EXEC_DRAIN_MS 1000
#define EXEC_OOM_WAIT_MS 300

/* Handles GET /v1/client/allocation/<alloc_id>/exec. token_ok: the request's token is valid. */
void exec_handle(struct http_conn *c, struct http_req *r, const char *alloc_id, int token_ok);
int exec_sessions(void);

#endif
