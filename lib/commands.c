/* commands: see commands.h. */
#include "commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"

#define PRELUDE "unset ${!NOMAD_@}; "
#define SETUSER "/sbin/setuser user "

/* A growing string. */
struct sb {
	char *p;
	size_t len, cap;
	int failed;
};

static void add(struct sb *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *np = realloc(b->p, cap);
		if (!np) {
			b->failed = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void adds(struct sb *b, const char *s) { add(b, s, strlen(s)); }

static void add_quoted(struct sb *b, const char *s)
{
	size_t cap = strlen(s) * 4 + 3;
	char *q = malloc(cap);
	if (!q || files_shell_quote(s, q, cap) < 0)
		b->failed = 1;
	else
		adds(b, q);
	free(q);
}

static char *done(struct sb *b)
{
	if (b->failed) {
		free(b->p);
		return NULL;
	}
	return b->p;
}

char *cmd_list_files(const char *path, int recursive, int privileged)
{
	struct sb b = {0};
	if (strlen(path) > COMMANDS_PATH_MAX)
		return NULL;
	adds(&b, PRELUDE "exec ");
	if (!privileged)
		adds(&b, SETUSER);
	adds(&b, "ls -l --time-style=+%s -1 --literal ");
	if (recursive)
		adds(&b, "--recursive ");
	adds(&b, "-- ");
	add_quoted(&b, path);
	return done(&b);
}

char *cmd_download(const char *path, int privileged)
{
	/* the checks run as the same user as cat, so "unreadable" is decided before any byte of
	 * output (and before the HTTP headers) */
	struct sb b = {0}, inner = {0};
	char code[8];
	if (strlen(path) > COMMANDS_PATH_MAX)
		return NULL;
	snprintf(code, sizeof code, "%d", CMD_DOWNLOAD_NOT_READABLE);
	adds(&inner, "P=\"$1\"; [ -f \"$P\" ] && [ -r \"$P\" ] || exit ");
	adds(&inner, code);
	adds(&inner, "; ls -l --time-style=+%s -1 --literal -d -- \"$P\" && exec cat -- \"$P\"");
	char *script = done(&inner);
	if (!script)
		return NULL;
	adds(&b, PRELUDE "exec ");
	if (!privileged)
		adds(&b, SETUSER);
	adds(&b, "/bin/bash -c ");
	add_quoted(&b, script);
	adds(&b, " download ");
	add_quoted(&b, path);
	free(script);
	return done(&b);
}

char *cmd_copy_files(char *const *deletes, size_t ndeletes)
{
	struct sb b = {0};
	adds(&b, PRELUDE);
	if (ndeletes) {
		adds(&b, "rm --recursive --force --");
		for (size_t i = 0; i < ndeletes; i++) {
			adds(&b, " ");
			if (strcmp(deletes[i], "./*") == 0) {
				adds(&b, "./*"); /* FIL-11: the one glob the API knows */
				continue;
			}
			size_t n = strlen(deletes[i]);
			char *clean = malloc(n + 3);
			if (!clean)
				return free(b.p), NULL;
			files_clean_path(deletes[i], clean, n + 3);
			add_quoted(&b, clean);
			free(clean);
		}
		adds(&b, "; ");
	}
	adds(&b, "exec tar --extract --absolute-names --verbose --file=/dev/stdin");
	return done(&b);
}

char *cmd_delete_stdin(void)
{
	struct sb b = {0};
	adds(&b, PRELUDE "exec xargs --null --no-run-if-empty rm --recursive --force --");
	return done(&b);
}
