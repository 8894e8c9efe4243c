/* files: what runs through exec for the file routes, on our side of the pipe.
 *
 * - ls: an incremental parser of `ls -l --time-style=+%s -1 --literal [--recursive] PATH` output
 *   into the API's FileHeader entries (docs/api.md FIL-12..20, docs/nomad-api.md 7.3), fed with
 *   output chunks as they arrive, emitting each entry through a callback (so a listing is
 *   streamed, never held whole).
 * - tar: a pull-based producer of the tar stream a file copy sends to `tar --extract` (FIL-1..11):
 *   libarchive writes one entry at a time into a small buffer that the exec's stdin drains, so the
 *   archive never exists whole in memory. Directories ("dir/") are mode 1777, files 0744, owner
 *   root, paths cleaned like Go's path.Clean.
 * - shell quoting for everything that reaches a command line.
 * All functions are pure (no I/O) and safe for hostile input.
 */
#ifndef POSEIDON_FILES_H
#define POSEIDON_FILES_H

#include <stddef.h>
#include <sys/types.h>

#include "err.h"
#include "model.h"

#define FILES_NAME_MAX 4096

/* One FileHeader. Strings point into the parser and are valid during the callback only. */
struct file_entry {
	const char *name;
	char entry_type;        /* one of -aAbcCdDlMnpPsw? */
	const char *link_target; /* NULL unless a link whose target ls could read */
	unsigned long long size;
	long long mtime;
	char permissions[11];   /* "rwxr-xr-x" plus "+" with an ACL */
	const char *owner;
	const char *group;
};

typedef int (*files_entry_fn)(void *ud, const struct file_entry *e);

struct ls_parser;
/* Returns NULL on allocation failure. */
struct ls_parser *ls_parser_new(files_entry_fn fn, void *ud);
/* Feeds output bytes; entries are emitted when their line is complete. A callback returning
 * nonzero stops the parser (later feeds return -1). */
int ls_parser_feed(struct ls_parser *p, const char *data, size_t len);
/* Ends the input: a last line without newline is parsed. Returns entries emitted in total. */
int ls_parser_finish(struct ls_parser *p);
void ls_parser_free(struct ls_parser *p);

/* Parses one ls line into e (strings point into a copy held by the caller's buf of at least
 * strlen(line)+1 bytes). Returns 1 for an entry, 0 for a line that is none (total, devices
 * with major/minor, blank). Exposed for tests. */
int ls_parse_line(const char *line, char *buf, size_t cap, struct file_entry *e);

/* Go's path.Clean ("./a//b/" -> "a/b", "" -> ".", "/../x" -> "/x"). out must hold strlen(in)+2. */
void files_clean_path(const char *in, char *out, size_t cap);
/* Single-quotes s for a POSIX shell ('it'\''s'). Returns the length written, or -1 if cap is too
 * small. */
ssize_t files_shell_quote(const char *s, char *out, size_t cap);

/* The tar stream of a copy request. */
struct tar_stream;
/* copies is borrowed and must outlive the stream. */
struct tar_stream *tar_stream_new(const struct file_copy *copies, size_t n, struct perr *e);
/* Fills buf with cap bytes of the archive, fewer only for its last piece (so every piece is a
 * multiple of 512 bytes when cap is); 0 at its end, -1 on error (e). */
ssize_t tar_stream_read(struct tar_stream *t, void *buf, size_t cap, struct perr *e);
void tar_stream_free(struct tar_stream *t);

#endif
