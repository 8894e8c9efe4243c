/* poseidon-api file routes (docs/api.md FIL-1..25): copy/delete, list, download.
 *
 * Each runs one command in the runner through Nomad's exec (lib/nomad_exec, synchronous mode)
 * straight to the runner's allocation, whose id Redis holds: no Nomad REST call on the way.
 * Every file route is an activity: it pushes the runner's inactivity deadline.
 * Listing parses ls's output as it arrives and streams each entry out (the head with the first
 * one, so a missing path is still a clean 424); download streams cat's output into the response; copy streams the tar
 * archive into tar's stdin, one entry at a time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "commands.h"
#include "files.h"
#include "log.h"
#include "metrics.h"
#include "model.h"
#include "nomad_exec.h"

#define LIST_TIMEOUT_MS 600000 /* as long as a download: a million files take a while */
#define COPY_TIMEOUT_MS 600000
#define DOWNLOAD_TIMEOUT_MS 600000
#define MAX_COPY_FILES 100000
#define MAX_DELETES 100000
#define OUTPUT_KEEP 4096 /* bytes of tar's stdout/stderr kept for the error message */

/* The claimed runner of this request, with its deadline pushed; answers 410 when it is gone. */
int api_runner(struct api *a, struct http_req *r, const struct http_params *p, int touch, struct runner *run)
{
	struct perr e;
	int found = store_runner_lookup(a->store, http_get_param(p, "runnerId"), touch, run, &e);
	if (found < 0) {
		api_fail(r, &e);
		return -1;
	}
	if (!found || !run->alloc_id[0]) {
		perr_set(&e, PERR_GONE, "abstract manager wrapped: no runner found with this id");
		api_fail(r, &e);
		return -1;
	}
	return 0;
}

/* Whether line, run as bash -c, fits into an exec request (NOMAD_EXEC_PATH_MAX). */
static int fits(struct api *a, const struct runner *run, const char *line)
{
	char path[NOMAD_EXEC_PATH_MAX];
	const char *argv[] = {"/bin/bash", "-c", line, NULL};
	struct nomad_exec_opts o = {.alloc_id = run->alloc_id, .argv = argv};
	return nomad_exec_request_path(path, sizeof path, nomad_get_endpoint(a->nomad)->namespace, &o, NULL) >= 0;
}

/* A command line handed to bash on stdin, around the command's own output callbacks. */
struct via_stdin {
	const struct nomad_exec_io *io;
	const char *p;
	size_t left;
};

static ssize_t via_read(void *ud, void *buf, size_t cap)
{
	struct via_stdin *v = ud;
	size_t n = v->left < cap ? v->left : cap;
	memcpy(buf, v->p, n);
	v->p += n;
	v->left -= n;
	return (ssize_t)n;
}

static int via_out(void *ud, const char *data, size_t len)
{
	struct via_stdin *v = ud;
	return v->io && v->io->on_stdout ? v->io->on_stdout(v->io->ud, data, len) : 0;
}

static int via_err(void *ud, const char *data, size_t len)
{
	struct via_stdin *v = ud;
	return v->io && v->io->on_stderr ? v->io->on_stderr(v->io->ud, data, len) : 0;
}

/* Runs a command line in the runner (bash -c, no tty) to its end. A NULL line (a value too long
 * or no memory) is an error without any exec. A line too long for the exec request (a long,
 * much-escaped path) travels on stdin when the command reads none of its own. */
static int run_in(struct api *a, const struct runner *run, const char *line, const struct nomad_exec_io *io,
		  int timeout_ms, int *code, struct perr *e)
{
	if (!line)
		return perr_set(e, PERR_UNKNOWN, "out of memory");
	const char *argv[] = {"/bin/bash", "-c", line, NULL};
	struct nomad_exec_opts o = {.alloc_id = run->alloc_id, .argv = argv};
	struct via_stdin v = {.io = io, .p = line, .left = strlen(line)};
	struct nomad_exec_io w = {.read_stdin = via_read, .on_stdout = via_out, .on_stderr = via_err, .ud = &v};
	if ((!io || !io->read_stdin) && !fits(a, run, line)) {
		argv[2] = CMD_LINE_FROM_STDIN;
		io = &w;
	}
	return nomad_exec_run(nomad_get_endpoint(a->nomad), &o, io, timeout_ms, code, NULL, e);
}

/* Whether run went away while its command ran (a DELETE, an environment replaced or deleted, the
 * inactivity reaper): the command's failure is then the runner's 410, not the exec's 500. */
static int runner_gone(struct api *a, const struct runner *run, struct perr *e)
{
	struct runner now;
	struct perr le;
	if (store_runner_lookup(a->store, run->id, 0, &now, &le) != 0)
		return 0; /* alive, or Redis cannot tell: the exec's own failure stands */
	perr_set(e, PERR_GONE, "abstract manager wrapped: no runner found with this id");
	return 1;
}

/* Maps an exec failure to the API's error: the runner gone is its 410, Nomad unreachable keeps its
 * code, a request the exec could not carry is the client's 400, the rest UNKNOWN. */
static void exec_failed(struct api *a, struct http_req *r, const struct runner *run, struct perr *e,
			const char *what)
{
	if (runner_gone(a, run, e)) {
		api_fail(r, e);
		return;
	}
	if (e->kind != PERR_NOMAD_UNREACHABLE && e->kind != PERR_BAD_REQUEST)
		e->kind = PERR_UNKNOWN;
	perr_wrap(e, what);
	api_fail(r, e);
}

static int query_bool(struct http_req *r, const char *name, int def)
{
	char v[16];
	int b;
	struct perr e;
	/* FIL-16: missing or unparsable means the default */
	if (http_query(r->query, name, v, sizeof v) != 1 || model_parse_bool(v, def, &b, &e) < 0)
		return def;
	return b;
}

/* ---- list ------------------------------------------------------------------------------------ */

struct listing {
	struct http_req *r;
	struct ls_parser *parser;
	int started; /* the response head went out */
	int entries;
};

static int list_entry(void *ud, const struct file_entry *fe)
{
	struct listing *l = ud;
	json_object *o = json_object_new_object();
	char type[2] = {fe->entry_type, '\0'};
	json_object_object_add(o, "name", json_object_new_string(fe->name));
	json_object_object_add(o, "entryType", json_object_new_string(type));
	if (fe->link_target)
		json_object_object_add(o, "linkTarget", json_object_new_string(fe->link_target));
	json_object_object_add(o, "size", json_object_new_uint64(fe->size));
	json_object_object_add(o, "modificationTime", json_object_new_int64(fe->mtime));
	json_object_object_add(o, "permissions", json_object_new_string(fe->permissions));
	json_object_object_add(o, "owner", json_object_new_string(fe->owner));
	json_object_object_add(o, "group", json_object_new_string(fe->group));
	/* streamed as ls goes, so a listing of a million files costs the worker no more memory than
	 * one of ten (the FastCGI stream's buffer pushes back on ls through the exec); the head goes
	 * out with the first entry, so a path that does not exist (ls fails with none) is still a
	 * clean 424 */
	if (!l->started) {
		l->started = 1;
		http_begin(l->r, 200, "Content-Type: application/json\r\n");
		FCGX_PutS("{\"files\":[", l->r->fcgi->out);
	} else {
		FCGX_PutChar(',', l->r->fcgi->out);
	}
	FCGX_PutS(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
		  l->r->fcgi->out);
	json_object_put(o);
	l->entries++;
	return 0;
}

static int list_output(void *ud, const char *data, size_t len)
{
	struct listing *l = ud;
	return ls_parser_feed(l->parser, data, len) < 0 ? -1 : 0;
}

/* FIL-12..20. */
void h_files_list(struct api *a, struct http_req *r, const struct http_params *p)
{
	struct runner run;
	struct perr e;
	char path[COMMANDS_PATH_MAX + 1];
	if (api_runner(a, r, p, 1, &run) < 0)
		return;
	int has = http_query(r->query, "path", path, sizeof path);
	if (has < 0) {
		perr_set(&e, PERR_BAD_REQUEST, "path: longer than %d bytes or badly encoded", COMMANDS_PATH_MAX);
		api_fail(r, &e);
		return;
	}
	if (has == 0 || !path[0])
		snprintf(path, sizeof path, "./");
	char *line = cmd_list_files(path, query_bool(r, "recursive", 1), query_bool(r, "privilegedExecution", 0));
	struct listing l = {.r = r};
	l.parser = ls_parser_new(list_entry, &l);
	struct nomad_exec_io io = {.on_stdout = list_output, .ud = &l};
	int code = -1;
	int rc = l.parser ? run_in(a, &run, line, &io, LIST_TIMEOUT_MS, &code, &e)
			  : perr_set(&e, PERR_UNKNOWN, "out of memory");
	if (rc == 0)
		ls_parser_finish(l.parser);
	if (l.started) {
		/* FIL-15: an ls that listed something and then complained (an unreadable link target) is a
		 * 200; an exec that broke off leaves the JSON unterminated, which tells the client */
		if (rc == 0)
			FCGX_PutS("]}", r->fcgi->out);
		else
			log_warn("listing ended early", "runner", run.id, "path", path, "error", e.msg);
	} else if (rc < 0) {
		exec_failed(a, r, &run, &e, "could not list files");
	} else if (code != 0) {
		/* FIL-19: we answer the spec's 424 for a path that does not exist (DIS-3); ls killed with
		 * its runner is the runner's 410 */
		if (!runner_gone(a, &run, &e))
			perr_set(&e, PERR_FAILED_DEPENDENCY, "file not found or insufficient permissions");
		api_fail(r, &e);
	} else {
		http_begin(r, 200, "Content-Type: application/json\r\n");
		FCGX_PutS("{\"files\":[]}", r->fcgi->out);
	}
	ls_parser_free(l.parser);
	free(line);
}

/* ---- download -------------------------------------------------------------------------------- */

struct download {
	struct http_req *r;
	const char *path;
	char head[COMMANDS_PATH_MAX * 2 + 512]; /* the ls line, until its newline */
	size_t headlen;
	int started;
	unsigned long long size, sent;
	int bad_head;
	int client_gone; /* the response could not be written any more */
};

/* Content-Disposition: attachment; filename="<path>", with quotes, backslashes and control
 * characters escaped so the header cannot be broken (FIL-22 inserts the path verbatim). */
static void disposition(const char *path, char *out, size_t cap)
{
	size_t o = (size_t)snprintf(out, cap, "Content-Disposition: attachment; filename=\"");
	for (const unsigned char *s = (const unsigned char *)path; *s && o + 6 < cap; s++) {
		if (*s == '"' || *s == '\\')
			out[o++] = '\\', out[o++] = (char)*s;
		else if (*s < 0x20 || *s == 0x7f)
			out[o++] = '_';
		else
			out[o++] = (char)*s;
	}
	snprintf(out + o, cap - o, "\"\r\n");
}

static int download_output(void *ud, const char *data, size_t len)
{
	struct download *d = ud;
	if (!d->started) {
		const char *nl = memchr(data, '\n', len);
		size_t take = nl ? (size_t)(nl - data) : len;
		if (d->headlen + take >= sizeof d->head) {
			d->bad_head = 1;
			return -1;
		}
		memcpy(d->head + d->headlen, data, take);
		d->headlen += take;
		if (!nl)
			return 0;
		d->head[d->headlen] = '\0';
		char buf[sizeof d->head];
		struct file_entry fe;
		if (!ls_parse_line(d->head, buf, sizeof buf, &fe)) {
			d->bad_head = 1;
			return -1;
		}
		char headers[COMMANDS_PATH_MAX * 2 + 256], disp[COMMANDS_PATH_MAX * 2 + 128];
		d->size = fe.size;
		disposition(d->path, disp, sizeof disp);
		snprintf(headers, sizeof headers, "Content-Length: %llu\r\n%s", d->size, disp);
		http_begin(d->r, 200, headers);
		d->started = 1;
		data = nl + 1;
		len -= take + 1;
	}
	/* never more than announced (a file that grew meanwhile) */
	if (d->sent + len > d->size)
		len = (size_t)(d->size - d->sent);
	/* FCGX_PutStr waits while the web server takes nothing (its client does not read), which
	 * holds back the command in the runner; when the web server gave up on the client and
	 * closed the connection, the download ends here instead of reading the rest of the file
	 * into a dead stream */
	if (len && FCGX_PutStr(data, (int)len, d->r->fcgi->out) != (int)len) {
		d->client_gone = 1;
		return -1;
	}
	d->sent += len;
	return 0;
}

/* FIL-21..25. */
void h_files_raw(struct api *a, struct http_req *r, const struct http_params *p)
{
	struct runner run;
	struct perr e;
	char path[COMMANDS_PATH_MAX + 1];
	if (api_runner(a, r, p, 1, &run) < 0)
		return;
	int has = http_query(r->query, "path", path, sizeof path);
	if (has <= 0 || !path[0]) {
		/* FIL-25: no path is a missing file */
		perr_set(&e, has < 0 ? PERR_BAD_REQUEST : PERR_FAILED_DEPENDENCY,
			 has < 0 ? "path: too long or badly encoded" : "file not found or insufficient permissions");
		api_fail(r, &e);
		return;
	}
	char *line = cmd_download(path, query_bool(r, "privilegedExecution", 0));
	struct download d = {.r = r, .path = path};
	struct nomad_exec_io io = {.on_stdout = download_output, .ud = &d};
	int code = -1;
	int rc = run_in(a, &run, line, &io, DOWNLOAD_TIMEOUT_MS, &code, &e);
	free(line);
	metrics_file_bytes(0, d.sent); /* metrics: bytes that went out */
	if (d.started) {
		if (rc < 0 || code != 0 || d.sent != d.size)
			log_warn("download ended early", "runner", run.id, "path", path, "error",
				 d.client_gone ? "the client is gone" : rc < 0 ? e.msg : "");
		return; /* the head went out; a short body tells the client something went wrong */
	}
	if (rc == 0 && code == CMD_DOWNLOAD_NOT_READABLE) {
		perr_set(&e, PERR_FAILED_DEPENDENCY, "file not found or insufficient permissions");
		api_fail(r, &e);
	} else if (rc < 0 && !d.bad_head) {
		exec_failed(a, r, &run, &e, "could not download file");
	} else {
		if (!runner_gone(a, &run, &e))
			perr_set(&e, PERR_UNKNOWN, "could not download file: %s",
				 d.bad_head ? "unexpected listing" : "ls failed");
		api_fail(r, &e);
	}
}

/* ---- copy ------------------------------------------------------------------------------------ */

struct copy_io {
	struct tar_stream *tar;
	struct perr err;
	int tar_failed;
	char out[OUTPUT_KEEP + 1], errout[OUTPUT_KEEP + 1];
	size_t outlen, errlen;
	/* delete list over stdin */
	char *nulpaths;
	size_t nullen, nuloff;
};

static ssize_t copy_stdin(void *ud, void *buf, size_t cap)
{
	struct copy_io *c = ud;
	ssize_t n = tar_stream_read(c->tar, buf, cap, &c->err);
	if (n < 0)
		c->tar_failed = 1;
	return n;
}

static ssize_t delete_stdin(void *ud, void *buf, size_t cap)
{
	struct copy_io *c = ud;
	size_t n = c->nullen - c->nuloff < cap ? c->nullen - c->nuloff : cap;
	memcpy(buf, c->nulpaths + c->nuloff, n);
	c->nuloff += n;
	return (ssize_t)n;
}

static void keep(char *dst, size_t *len, const char *data, size_t n)
{
	size_t room = OUTPUT_KEEP - *len;
	memcpy(dst + *len, data, n < room ? n : room);
	*len += n < room ? n : room;
	dst[*len] = '\0';
}

static int copy_stdout(void *ud, const char *data, size_t len)
{
	struct copy_io *c = ud;
	keep(c->out, &c->outlen, data, len);
	return 0;
}

static int copy_stderr(void *ud, const char *data, size_t len)
{
	struct copy_io *c = ud;
	keep(c->errout, &c->errlen, data, len);
	return 0;
}

/* Deletes the paths through xargs reading NUL-separated names (the glob entry stays inline). */
static int delete_via_stdin(struct api *a, const struct runner *run, const struct files_request *f, struct perr *e)
{
	struct copy_io c = {0};
	size_t total = 0;
	for (size_t i = 0; i < f->ndelete; i++)
		total += strlen(f->delete_paths[i]) + 3;
	c.nulpaths = malloc(total + 1);
	if (!c.nulpaths)
		return perr_set(e, PERR_UNKNOWN, "out of memory");
	for (size_t i = 0; i < f->ndelete; i++) {
		if (strcmp(f->delete_paths[i], "./*") == 0)
			continue;
		files_clean_path(f->delete_paths[i], c.nulpaths + c.nullen, total + 1 - c.nullen);
		c.nullen += strlen(c.nulpaths + c.nullen) + 1;
	}
	char *line = cmd_delete_stdin();
	struct nomad_exec_io io = {.read_stdin = delete_stdin, .ud = &c};
	int code;
	int rc = run_in(a, run, line, &io, COPY_TIMEOUT_MS, &code, e);
	free(line);
	free(c.nulpaths);
	return rc; /* FIL-11: delete errors are not reported, only exec failures */
}

/* FIL-1..11. */
void h_files_patch(struct api *a, struct http_req *r, const struct http_params *p)
{
	struct runner run;
	struct perr e;
	struct files_request f;
	/* RUN-9/10: the whole body first, even for a gone runner; then the runner (410 before any
	 * 400, as in the reference, whose router looks the runner up before the handler runs) */
	if (api_read_body(a, r) < 0 || api_runner(a, r, p, 1, &run) < 0)
		return;
	if (model_parse_files_request(r->body, r->body_len, &f, &e) < 0) {
		api_fail(r, &e);
		return;
	}
	/* the parsed copy holds everything the body did; the raw body is not needed any more */
	free(r->body);
	r->body = NULL;
	if (f.ncopy > MAX_COPY_FILES || f.ndelete > MAX_DELETES) {
		perr_set(&e, PERR_BAD_REQUEST, "at most %d files to copy and %d to delete", MAX_COPY_FILES, MAX_DELETES);
		goto fail;
	}
	for (size_t i = 0; i < f.ncopy; i++)
		if (strlen(f.copy[i].path) > COMMANDS_PATH_MAX || !f.copy[i].path[0]) {
			perr_set(&e, PERR_BAD_REQUEST, "copy path %zu: empty or longer than %d bytes", i, COMMANDS_PATH_MAX);
			goto fail;
		}
	for (size_t i = 0; i < f.ndelete; i++)
		if (strlen(f.delete_paths[i]) > COMMANDS_PATH_MAX) {
			perr_set(&e, PERR_BAD_REQUEST, "delete path %zu: longer than %d bytes", i, COMMANDS_PATH_MAX);
			goto fail;
		}
	if (f.ncopy == 0 && f.ndelete == 0) { /* FIL-9 */
		model_files_free(&f);
		http_respond_empty(r, 204);
		return;
	}
	char *line = cmd_copy_files(f.delete_paths, f.ndelete);
	if (line && !fits(a, &run, line)) {
		/* the delete list is too long for the exec request line: delete first, on its own */
		if (delete_via_stdin(a, &run, &f, &e) < 0) {
			free(line);
			exec_failed(a, r, &run, &e, "file deletion failed");
			model_files_free(&f);
			return;
		}
		int glob = 0;
		for (size_t i = 0; i < f.ndelete; i++)
			glob |= strcmp(f.delete_paths[i], "./*") == 0;
		char *globs[] = {"./*"};
		free(line);
		line = cmd_copy_files(globs, glob ? 1 : 0);
	}
	struct copy_io c = {0};
	c.tar = tar_stream_new(f.copy, f.ncopy, &e);
	struct nomad_exec_io io = {.read_stdin = copy_stdin, .on_stdout = copy_stdout, .on_stderr = copy_stderr, .ud = &c};
	int code = -1;
	int rc = c.tar ? run_in(a, &run, line, &io, COPY_TIMEOUT_MS, &code, &e) : -1;
	tar_stream_free(c.tar);
	free(line);
	if (c.tar_failed) {
		e = c.err;
		goto fail;
	}
	if (rc < 0) {
		model_files_free(&f);
		exec_failed(a, r, &run, &e, "file copy failed");
		return;
	}
	if (code != 0) {
		/* FIL-7: the other files were written; tar's diagnostics go back to the client; a tar
		 * killed with its runner (DELETE during the copy) is the runner's 410 */
		if (!runner_gone(a, &run, &e))
			perr_set(&e, PERR_UNKNOWN, "file copy failed: stderr output '%s' and stdout output '%s'", c.errout,
				 c.out);
		goto fail;
	}
	char n[24];
	unsigned long long bytes = 0;
	for (size_t i = 0; i < f.ncopy; i++)
		bytes += f.copy[i].len;
	metrics_file_bytes(1, bytes); /* metrics: content copied into the runner */
	log_debug("files copied", "runner", run.id, "files", log_int(n, (long long)f.ncopy));
	model_files_free(&f);
	http_respond_empty(r, 204);
	return;
fail:
	model_files_free(&f);
	api_fail(r, &e);
}
