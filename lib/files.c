/* files: see files.h.
 *
 * ls lines (from GNU ls -l --time-style=+%s --literal):
 *   -rwxr--r-- 1 root root 16 1761734000 test.txt
 *   lrwxrwxrwx 1 user user  0 1761734000 cwd -> /workspace
 *   crw-rw-rw- 1 root root 1, 3 1761734000 null          (devices: skipped, no size)
 *   ./dir:                                                (recursive: directory header)
 *   total 8                                               (skipped)
 * The reference matches the header pattern first; we match the entry pattern first, so a file
 * whose name ends in ':' is still a file. A name containing a newline continues on the next line
 * (--literal prints it raw); a line that directly follows an entry and is neither an entry, a
 * header nor blank is taken as the rest of that entry's name.
 */
#include "files.h"

#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_BYTES (FILES_NAME_MAX * 2 + 256)

/* ---- ls ------------------------------------------------------------------------------------ */

static int is_type(char c) { return c && strchr("-aAbcCdDlMnpPsw?", c) != NULL; }
static int is_perm(char c) { return c && strchr("-rwxXsStT", c) != NULL; }

/* Splits off the next space-separated token; returns it or NULL. */
static char *token(char **s)
{
	while (**s == ' ')
		(*s)++;
	if (!**s)
		return NULL;
	char *t = *s;
	while (**s && **s != ' ')
		(*s)++;
	if (**s)
		*(*s)++ = '\0';
	return t;
}

static int all_digits(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

int ls_parse_line(const char *line, char *buf, size_t cap, struct file_entry *e)
{
	size_t n = strlen(line);
	if (n + 1 > cap || n < 11)
		return 0;
	memcpy(buf, line, n + 1);
	memset(e, 0, sizeof *e);
	char *s = buf;
	if (!is_type(s[0]))
		return 0;
	for (int i = 1; i <= 9; i++)
		if (!is_perm(s[i]))
			return 0;
	int acl = s[10] == '+';
	if (s[10 + acl] != ' ')
		return 0;
	e->entry_type = s[0];
	memcpy(e->permissions, s + 1, 9);
	e->permissions[9] = acl ? '+' : '\0';
	e->permissions[10] = '\0';
	s += 10 + acl;
	char *links = token(&s), *owner = token(&s), *group = token(&s), *size = token(&s), *mtime = token(&s);
	if (!links || !owner || !group || !size || !mtime || !all_digits(links) || !all_digits(size))
		return 0;
	/* mtime may be negative for files from before 1970 */
	if (!all_digits(mtime[0] == '-' ? mtime + 1 : mtime))
		return 0;
	/* token() took the one space after the time: the name starts here, leading spaces included */
	if (!*s)
		return 0;
	e->owner = owner;
	e->group = group;
	e->size = strtoull(size, NULL, 10);
	e->mtime = strtoll(mtime, NULL, 10);
	e->name = s;
	if (e->entry_type == 'l') {
		char *arrow = strstr(s, " -> ");
		if (arrow) {
			*arrow = '\0';
			e->link_target = arrow + 4;
		}
	}
	return 1;
}

struct ls_parser {
	files_entry_fn fn;
	void *ud;
	char line[LINE_MAX_BYTES];
	size_t len;
	int overlong;          /* the current line exceeded the buffer: it is dropped */
	char prefix[FILES_NAME_MAX];
	/* the last entry, held back one line in case its name continues on the next line */
	int pending;
	char pbuf[LINE_MAX_BYTES];
	char pname[FILES_NAME_MAX * 2];
	struct file_entry pentry;
	int count;
	int stopped;
};

struct ls_parser *ls_parser_new(files_entry_fn fn, void *ud)
{
	struct ls_parser *p = calloc(1, sizeof *p);
	if (p) {
		p->fn = fn;
		p->ud = ud;
	}
	return p;
}

void ls_parser_free(struct ls_parser *p) { free(p); }

static void flush_pending(struct ls_parser *p)
{
	if (!p->pending || p->stopped)
		return;
	p->pending = 0;
	p->pentry.name = p->pname;
	p->count++;
	if (p->fn && p->fn(p->ud, &p->pentry))
		p->stopped = 1;
}

static void handle_line(struct ls_parser *p, char *line)
{
	struct file_entry e;
	char buf[LINE_MAX_BYTES];
	if (ls_parse_line(line, buf, sizeof buf, &e)) {
		flush_pending(p);
		memcpy(p->pbuf, buf, sizeof buf);
		/* re-point the strings into pbuf */
		p->pentry = e;
		p->pentry.owner = p->pbuf + (e.owner - buf);
		p->pentry.group = p->pbuf + (e.group - buf);
		p->pentry.link_target = e.link_target ? p->pbuf + (e.link_target - buf) : NULL;
		snprintf(p->pname, sizeof p->pname, "%s%s", p->prefix, e.name);
		p->pending = 1;
		return;
	}
	size_t n = strlen(line);
	int entry_like = n > 10 && is_type(line[0]) && is_perm(line[1]) && is_perm(line[9]) &&
			 (line[10] == ' ' || line[10] == '+');
	if (n == 0 || entry_like || (strncmp(line, "total ", 6) == 0 && all_digits(line + 6))) {
		/* blank, total, or an entry we do not report (a device: "1, 3" instead of a size) */
		flush_pending(p);
		return;
	}
	if (line[n - 1] == ':' && !p->pending) {
		/* "./dir:" -> prefix "./dir/" (a trailing "/" of the listed path is not doubled) */
		line[--n] = '\0';
		while (n > 1 && line[n - 1] == '/')
			line[--n] = '\0';
		snprintf(p->prefix, sizeof p->prefix, "%s/", line);
		return;
	}
	if (p->pending) {
		/* the entry's name contained a newline */
		size_t have = strlen(p->pname);
		if (p->pentry.link_target) {
			/* a target cannot be told from a name here: append to the target's line */
			flush_pending(p);
			return;
		}
		snprintf(p->pname + have, sizeof p->pname - have, "\n%s", line);
		return;
	}
	if (line[n - 1] == ':') {
		line[--n] = '\0';
		while (n > 1 && line[n - 1] == '/')
			line[--n] = '\0';
		snprintf(p->prefix, sizeof p->prefix, "%s/", line);
	}
}

int ls_parser_feed(struct ls_parser *p, const char *data, size_t len)
{
	if (p->stopped)
		return -1;
	for (size_t i = 0; i < len && !p->stopped; i++) {
		char c = data[i];
		if (c == '\n') {
			p->line[p->len] = '\0';
			if (!p->overlong)
				handle_line(p, p->line);
			p->len = 0;
			p->overlong = 0;
			continue;
		}
		if (p->len + 1 >= sizeof p->line) {
			p->overlong = 1;
			continue;
		}
		p->line[p->len++] = c;
	}
	return p->stopped ? -1 : 0;
}

int ls_parser_finish(struct ls_parser *p)
{
	if (p->len && !p->overlong && !p->stopped) {
		p->line[p->len] = '\0';
		handle_line(p, p->line);
		p->len = 0;
	}
	flush_pending(p);
	return p->count;
}

/* ---- paths and quoting ----------------------------------------------------------------------- */

void files_clean_path(const char *in, char *out, size_t cap)
{
	/* Go's path.Clean, on a copy */
	size_t n = strlen(in);
	if (cap < 2)
		return;
	if (n == 0) {
		snprintf(out, cap, ".");
		return;
	}
	int rooted = in[0] == '/';
	size_t w = 0, r = 0, dotdot = 0;
	if (rooted) {
		out[w++] = '/';
		r = 1;
		dotdot = 1;
	}
	while (r < n && w + 1 < cap) {
		if (in[r] == '/') {
			r++;
		} else if (in[r] == '.' && (r + 1 == n || in[r + 1] == '/')) {
			r++;
		} else if (in[r] == '.' && in[r + 1] == '.' && (r + 2 == n || in[r + 2] == '/')) {
			r += 2;
			if (w > dotdot) {
				w--;
				while (w > dotdot && out[w] != '/')
					w--;
			} else if (!rooted) {
				if (w > 0 && w + 1 < cap)
					out[w++] = '/';
				if (w + 2 < cap) {
					out[w++] = '.';
					out[w++] = '.';
				}
				dotdot = w;
			}
		} else {
			if ((rooted && w != 1) || (!rooted && w != 0))
				if (w + 1 < cap)
					out[w++] = '/';
			for (; r < n && in[r] != '/' && w + 1 < cap; r++)
				out[w++] = in[r];
		}
	}
	if (w == 0)
		out[w++] = '.';
	out[w] = '\0';
}

ssize_t files_shell_quote(const char *s, char *out, size_t cap)
{
	size_t w = 0;
	if (cap < 3)
		return -1;
	out[w++] = '\'';
	for (; *s; s++) {
		if (*s == '\'') {
			if (w + 4 >= cap)
				return -1;
			memcpy(out + w, "'\\''", 4);
			w += 4;
		} else {
			if (w + 1 >= cap)
				return -1;
			out[w++] = *s;
		}
	}
	if (w + 2 > cap)
		return -1;
	out[w++] = '\'';
	out[w] = '\0';
	return (ssize_t)w;
}

/* ---- tar ------------------------------------------------------------------------------------- */

struct tar_stream {
	const struct file_copy *copies;
	size_t n, next;
	struct archive *a;
	unsigned char *buf; /* what libarchive wrote and the reader has not taken yet */
	size_t len, off, cap;
	int closed;
	int failed;
};

static la_ssize_t tar_write(struct archive *a, void *ud, const void *data, size_t len)
{
	(void)a;
	struct tar_stream *t = ud;
	if (t->len + len > t->cap) {
		size_t cap = t->cap ? t->cap : 65536;
		while (cap < t->len + len)
			cap *= 2;
		unsigned char *nb = realloc(t->buf, cap);
		if (!nb) {
			t->failed = 1;
			return -1;
		}
		t->buf = nb;
		t->cap = cap;
	}
	memcpy(t->buf + t->len, data, len);
	t->len += len;
	return (la_ssize_t)len;
}

struct tar_stream *tar_stream_new(const struct file_copy *copies, size_t n, struct perr *e)
{
	struct tar_stream *t = calloc(1, sizeof *t);
	if (!t)
		return perr_set(e, PERR_UNKNOWN, "out of memory"), NULL;
	t->copies = copies;
	t->n = n;
	t->a = archive_write_new();
	/* ustar with pax extensions only where a name needs them, as Go's archive/tar */
	if (!t->a || archive_write_set_format_pax_restricted(t->a) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(t->a, 0) != ARCHIVE_OK ||
	    archive_write_open(t->a, t, NULL, tar_write, NULL) != ARCHIVE_OK) {
		perr_set(e, PERR_UNKNOWN, "tar: %s", t->a ? archive_error_string(t->a) : "out of memory");
		tar_stream_free(t);
		return NULL;
	}
	return t;
}

/* C.UTF-8, made once per process (glibc has it built in); NULL if the C library lacks it. */
static locale_t utf8_locale(void)
{
	static locale_t loc;
	static int tried;
	if (!tried) {
		tried = 1;
		loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	}
	return loc;
}

/* Writes the next entry (or the end of the archive) into t->buf. */
static int produce(struct tar_stream *t, struct perr *e)
{
	if (t->next == t->n) {
		if (archive_write_close(t->a) != ARCHIVE_OK)
			return perr_set(e, PERR_UNKNOWN, "tar: %s", archive_error_string(t->a));
		t->closed = 1;
		return 0;
	}
	const struct file_copy *c = &t->copies[t->next++];
	size_t plen = strlen(c->path);
	char *clean = malloc(plen + 3);
	if (!clean)
		return perr_set(e, PERR_UNKNOWN, "out of memory");
	files_clean_path(c->path, clean, plen + 3);
	int dir = plen > 0 && c->path[plen - 1] == '/';
	struct archive_entry *en = archive_entry_new();
	archive_entry_set_pathname(en, clean);
	archive_entry_set_filetype(en, dir ? AE_IFDIR : AE_IFREG);
	archive_entry_set_perm(en, dir ? 01777 : 0744);
	archive_entry_set_size(en, dir ? 0 : (la_int64_t)c->len);
	archive_entry_set_uid(en, 0);
	archive_entry_set_gid(en, 0);
	archive_entry_set_mtime(en, 0, 0);
	/* Names are UTF-8 (they come from JSON). Under the worker's C locale libarchive cannot convert
	 * them and marks them hdrcharset=BINARY, which GNU tar warns about for every entry; in a UTF-8
	 * locale it writes pax's plain UTF-8 `path`. The locale is switched for this thread only.
	 * (archive_entry_set_pathname_utf8 would be the direct way, but libarchive 3.6 crashes on it
	 * under the C locale.) A name that is not valid UTF-8 still goes out as raw bytes. */
	locale_t prev = utf8_locale() ? uselocale(utf8_locale()) : (locale_t)0;
	int rc = archive_write_header(t->a, en);
	if (prev)
		uselocale(prev);
	if (rc == ARCHIVE_OK && !dir && c->len > 0 && archive_write_data(t->a, c->content, c->len) != (la_ssize_t)c->len)
		rc = ARCHIVE_FATAL;
	archive_entry_free(en);
	free(clean);
	if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN)
		return perr_set(e, PERR_BAD_REQUEST, "tar: %s: %s", c->path, archive_error_string(t->a));
	return 0;
}

ssize_t tar_stream_read(struct tar_stream *t, void *buf, size_t cap, struct perr *e)
{
	/* Fill buf whole until the archive ends: a reader sees 512-byte-aligned chunks whenever cap is
	 * a multiple of 512, whatever the entry boundaries (tar on a pipe may take a short read for a
	 * whole record; the command reads full records too, so neither side alone has to be right). */
	size_t got = 0;
	while (got < cap) {
		if (t->off == t->len) {
			if (t->closed)
				break;
			t->off = t->len = 0;
			if (produce(t, e) < 0 || t->failed)
				return t->failed ? perr_set(e, PERR_UNKNOWN, "out of memory") : -1;
			continue;
		}
		size_t n = t->len - t->off < cap - got ? t->len - t->off : cap - got;
		memcpy((char *)buf + got, t->buf + t->off, n);
		t->off += n;
		got += n;
	}
	return (ssize_t)got;
}

void tar_stream_free(struct tar_stream *t)
{
	if (!t)
		return;
	if (t->a)
		archive_write_free(t->a);
	free(t->buf);
	free(t);
}
