/* util: small helpers shared by the modules of nomad-local: growable byte buffers, time
 * formats as Nomad writes them, UUIDs, base64, SHA-1 (for the WebSocket handshake), URL
 * decoding and file-system helpers (atomic writes, recursive mkdir/rm).
 */
#ifndef NL_UTIL_H
#define NL_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A growable byte buffer; always NUL-terminated when p != NULL. */
struct buf {
	char *p;
	size_t len, cap;
};
int buf_reserve(struct buf *b, size_t extra);
int buf_add(struct buf *b, const void *data, size_t len);
int buf_adds(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes. */
void buf_consume(struct buf *b, size_t n);
void buf_free(struct buf *b);

/* Wall clock in unix nanoseconds. */
int64_t now_ns(void);
/* The machine's memory in MB (what the node offers and the scheduler places against). */
long long node_memory_mb(void);
/* RFC 3339 with up to 9 fractional digits, trailing zeros trimmed, UTC ("Z"), as Go writes
 * time.Time. out must hold 40 bytes. */
void fmt_time_rfc3339(int64_t unix_ns, char out[40]);
/* Go's time.Duration.String() (e.g. "5s", "1h0m0s", "16.5s"). out must hold 40 bytes. */
void fmt_go_duration(int64_t ns, char out[40]);

/* A random (v4) UUID, lower case, 36 chars + NUL. */
void uuid_v4(char out[37]);
int is_uuid(const char *s);

/* Standard base64 with padding. enc: out must hold 4*((n+2)/3)+1. dec: returns length or -1. */
size_t b64_encode(const unsigned char *in, size_t n, char *out);
ssize_t b64_decode(const char *in, size_t n, unsigned char *out);

void sha1(const unsigned char *data, size_t len, unsigned char out[20]);

/* Percent-decodes s[0..n) into out (size >= n+1); plus_space turns '+' into ' ' (query
 * strings). Returns the decoded length or -1 on a malformed escape. */
ssize_t url_decode(const char *s, size_t n, char *out, int plus_space);

/* Writes data to path through path.tmp + rename. 0 or -1 (errno set). */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* Reads a whole file (at most max bytes) into a malloc'd NUL-terminated buffer. Caller frees. */
char *read_file(const char *path, size_t max, size_t *len_out);
int mkdir_p(const char *path, mode_t mode);
/* Removes a tree without following symlinks and without crossing mount points, relative to
 * directory descriptors (no depth limit from PATH_MAX). 0, or -1 with errno of the first thing
 * that could not be removed (the rest is removed all the same). */
int rm_rf(const char *path);
/* Copies the tree at src (a file, a symlink or a directory, not following symlinks) to dst,
 * which must not exist; modes are kept, owners are root's. 0 or -1. */
int copy_tree(const char *src, const char *dst);
/* Writes a short string to an existing file (cgroup and proc knobs). 0 or -1. */
int write_str(const char *path, const char *s);

/* In a child between fork and exec: every signal back to its default action and none blocked,
 * whatever the agent inherited (a shell's `cmd &` starts it with SIGINT and SIGQUIT ignored) or
 * installed itself, as container runtimes do before they start a container's process. */
void signals_reset_for_exec(void);

/* Encodes any byte outside [A-Za-z0-9._-] as %XX so that a job ID is a safe file name. */
void file_name_escape(const char *in, char *out, size_t cap);

#endif
