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
	adds(&b, "exec tar --extract --absolute-names --verbose --read-full-records --file=/dev/stdin");
	return done(&b);
}

char *cmd_delete_stdin(void)
{
	struct sb b = {0};
	adds(&b, PRELUDE "exec xargs --null --no-run-if-empty rm --recursive --force --");
	return done(&b);
}

/* ---- interactive executions ---------------------------------------------------------------- */

#define EXEC_TRAP_SIGNALS "HUP INT QUIT TERM"

static int valid_var_name(const char *s)
{
	if (!s || !((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
		return 0;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return 0;
	return 1;
}

static int valid_env(const struct execution_request *x)
{
	for (size_t i = 0; i < x->nenv; i++)
		if (!valid_var_name(x->env[i].name) || !x->env[i].value)
			return 0;
	return 1;
}

/* ' NAME=VALUE' quoted as one word, for each client variable, then CODEOCEAN=true. */
static void add_assignments(struct sb *b, const struct execution_request *x, const char *sep)
{
	for (size_t i = 0; i < x->nenv; i++) {
		size_t n = strlen(x->env[i].name) + strlen(x->env[i].value) + 2;
		char *kv = malloc(n);
		if (!kv) {
			b->failed = 1;
			return;
		}
		snprintf(kv, n, "%s=%s", x->env[i].name, x->env[i].value);
		adds(b, sep);
		add_quoted(b, kv);
		free(kv);
	}
	adds(b, sep);
	adds(b, "CODEOCEAN=true");
}

/* The execution's directory $D (root's, 0700) becomes the shell's working directory: made by
 * whichever session comes first; anything else in its place (a learner's directory, a symlink,
 * a file) fails the session with exit 125 before any file is opened. Once inside, every name is
 * relative, so that nothing the learner does to the path afterwards (/tmp is theirs to write)
 * can redirect an open: $PWD after cd -P (the physical path, without a subshell that a signal
 * could hit) proves that the directory entered is D itself and -O that root
 * owns it (only root can make a root-owned directory, and none but ours is at that path). */
static void enter_dir(struct sb *b)
{
	adds(b, "{ mkdir -m700 -- \"$D\"||[ -d \"$D\" ];} 2>/dev/null&&cd -P -- \"$D\"&&[ \"$PWD\" = \"$D\" ]&&"
		"[ -O . ]||{ echo \"poseidon: $D is not ours\">&2;exit 125;};");
}

/* D=dir, and the traps, first of all (bash ignores SIGQUIT until a trap is set, and the gateway's
 * 0x1C may come at once): until a side has its FIFO, a HUP, INT, QUIT or TERM removes what is in D
 * (only once the shell is in it) and D itself, and exits 128+signal as the signal would have.
 * (Terse: the whole line must fit Nomad's exec request, percent-encoded, even when the command
 * goes through the script.) */
static void add_traps(struct sb *b, const char *dir)
{
	adds(b, "D=");
	add_quoted(b, dir);
	adds(b, ";c(){ [ \"$PWD\" = \"$D\" ]&&rm -f stderr script;cd /;rmdir -- \"$D\";exit $1;} 2>/dev/null;"
		"trap 'c 129' HUP;trap 'c 130' INT;trap 'c 131' QUIT;trap 'c 143' TERM;");
}

/* The FIFO "stderr" in D (made by either side), opened with redir ("2>" or "<"); both sides block
 * in the open until the other end is there, then the name goes. */
static void add_fifo_open(struct sb *b, const char *redir)
{
	adds(b, "{ mkfifo -m600 stderr||[ -p stderr ];} 2>/dev/null&&exec ");
	adds(b, redir);
	adds(b, "stderr||exit 125;rm -f stderr;");
}

char *cmd_exec_main(const struct execution_request *x, const char *dir, int split_stderr, int script)
{
	struct sb b = {0};
	if (!x || !x->command || !valid_env(x) || ((split_stderr || script) && !dir))
		return NULL;
	if (split_stderr || script) {
		add_traps(&b, dir);
		enter_dir(&b);
		if (split_stderr)
			add_fifo_open(&b, "2>");
		if (script)
			adds(&b, "exec 3<script&&rm -f script||exit 125;");
		adds(&b, "trap - " EXEC_TRAP_SIGNALS ";cd - >/dev/null&&rmdir -- \"$D\" 2>/dev/null;");
	}
	adds(&b, PRELUDE);
	if (script) {
		/* the file is gone before the user's program runs; bash reads it through the open fd */
		adds(&b, "exec ");
		if (!x->privileged)
			adds(&b, SETUSER);
		adds(&b, "/bin/bash /dev/fd/3");
		return done(&b);
	}
	adds(&b, "exec ");
	if (!x->privileged)
		adds(&b, SETUSER);
	adds(&b, "env");
	add_assignments(&b, x, " ");
	adds(&b, " /bin/bash -c ");
	add_quoted(&b, x->command);
	return done(&b);
}

char *cmd_exec_stderr(const char *dir)
{
	struct sb b = {0};
	if (!dir)
		return NULL;
	add_traps(&b, dir);
	enter_dir(&b);
	add_fifo_open(&b, "<");
	adds(&b, "trap - " EXEC_TRAP_SIGNALS ";cd /&&rmdir -- \"$D\" 2>/dev/null;exec cat");
	return done(&b);
}

char *cmd_exec_script(const struct execution_request *x, size_t *len)
{
	struct sb b = {0};
	if (!x || !x->command || !valid_env(x))
		return NULL;
	adds(&b, "exec 3<&-\n");
	add_assignments(&b, x, "\nexport ");
	adds(&b, "\n");
	add(&b, x->command, x->command_len);
	adds(&b, "\n");
	char *s = done(&b);
	if (s && len)
		*len = b.len;
	return s;
}

char *cmd_exec_write_script(const char *dir)
{
	struct sb b = {0};
	if (!dir)
		return NULL;
	adds(&b, "D=");
	add_quoted(&b, dir);
	adds(&b, ";");
	enter_dir(&b);
	/* readable: the user's bash opens it again through /dev/fd/3 */
	adds(&b, "umask 022; set -o noclobber; exec cat > script");
	return done(&b);
}

char *cmd_exec_sweep(const char *dir)
{
	struct sb b = {0};
	if (!dir)
		return NULL;
	adds(&b, "D=");
	add_quoted(&b, dir);
	/* builtins only while walking /proc, so that nothing but the waiting shells matches; rm -rf
	 * of a symlink put there removes the link, never what it points to */
	adds(&b, "; for p in /proc/[1-9]*; do [ \"${p#/proc/}\" = \"$$\" ] && continue; "
		 "mapfile -d '' -t a < \"$p/cmdline\" 2>/dev/null || continue; "
		 "[[ \"${a[2]}\" == *\"$D\"* ]] && kill -TERM \"${p#/proc/}\" 2>/dev/null; done; "
		 "rm -rf -- \"$D\"");
	return done(&b);
}
