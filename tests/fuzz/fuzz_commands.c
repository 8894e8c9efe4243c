/* Everything of a request that reaches a shell in a runner: paths from the file routes (list,
 * download, delete) turned into command lines by lib/commands, then into the exec request of
 * lib/nomad_exec. The proof is structural: a small POSIX lexer splits the line into words and
 * operators, and the line built from the hostile path must have exactly the tokens of the line
 * built from a harmless one, with the path (cleaned, for deletes) as one literal word. Then the
 * exec request's command parameter, unescaped and parsed, must be the same argv.
 * Input: byte 0 picks the command and flags; the rest, up to a NUL, is the path; for deletes,
 * newlines separate several paths. */
#include <json-c/json.h>

#include "commands.h"
#include "files.h"
#include "fuzz.h"
#include "nomad_exec.h"

#define MAX_TOKENS 256

struct tokens {
	int n;
	char *tok[MAX_TOKENS];
	int op[MAX_TOKENS]; /* an unquoted operator (; & | < > ( ) newline), not a word */
};

static void tokens_free(struct tokens *t)
{
	for (int i = 0; i < t->n; i++)
		free(t->tok[i]);
	t->n = 0;
}

static void push(struct tokens *t, const char *s, size_t n, int op)
{
	FUZZ_CHECK(t->n < MAX_TOKENS);
	t->tok[t->n] = fuzz_strdup((const uint8_t *)s, n);
	FUZZ_CHECK(t->tok[t->n]);
	t->op[t->n++] = op;
}

/* Splits a line as bash does for quoting: blanks separate words, '...' is literal, "..." is
 * literal but for \" \\ \$ \` (and $ or ` inside it is refused: none of our lines has them), a
 * backslash outside quotes escapes the next byte, operators stand alone. Returns 0, -1 on an
 * unterminated quote. */
static int lex(const char *s, struct tokens *t)
{
	size_t cap = strlen(s) + 1, n = 0;
	char *w = malloc(cap);
	int in_word = 0;
	FUZZ_CHECK(w);
	t->n = 0;
	for (const char *p = s;; p++) {
		char c = *p;
		if (c == '\0' || c == ' ' || c == '\t' || strchr(";&|<>()\n", c)) {
			if (in_word)
				push(t, w, n, 0);
			in_word = 0, n = 0;
			if (c == '\0')
				break;
			if (c != ' ' && c != '\t')
				push(t, p, 1, 1);
			continue;
		}
		in_word = 1;
		if (c == '\'') {
			const char *end = strchr(p + 1, '\'');
			if (!end) {
				free(w);
				return -1;
			}
			memcpy(w + n, p + 1, (size_t)(end - p - 1));
			n += (size_t)(end - p - 1);
			p = end;
		} else if (c == '"') {
			for (p++; *p != '"'; p++) {
				if (!*p || *p == '$' || *p == '`') {
					free(w);
					return -1;
				}
				if (*p == '\\' && strchr("\"\\$`", p[1]))
					p++;
				w[n++] = *p;
			}
		} else if (c == '\\') {
			if (!p[1]) {
				free(w);
				return -1;
			}
			w[n++] = *++p;
		} else {
			w[n++] = c;
		}
	}
	free(w);
	return 0;
}

/* The line for `hostile` must lex like the line for `harmless`, each path becoming one word. */
static void check_same_shape(const char *hostile_line, const char *harmless_line, char *const *paths,
                             char *const *marks, size_t npaths)
{
	struct tokens a, b;
	FUZZ_CHECK(lex(hostile_line, &a) == 0);
	FUZZ_CHECK(lex(harmless_line, &b) == 0);
	FUZZ_CHECK(a.n == b.n);
	size_t next = 0;
	for (int i = 0; i < a.n; i++) {
		FUZZ_CHECK(a.op[i] == b.op[i]);
		if (next < npaths && strcmp(b.tok[i], marks[next]) == 0) {
			FUZZ_CHECK(!a.op[i] && strcmp(a.tok[i], paths[next]) == 0);
			next++;
		} else {
			FUZZ_CHECK(strcmp(a.tok[i], b.tok[i]) == 0);
		}
	}
	FUZZ_CHECK(next == npaths);
	tokens_free(&a);
	tokens_free(&b);
}

/* The exec request for `bash -c line` carries exactly that argv. */
static void check_exec_request(const char *line)
{
	const char *argv[] = {"/bin/bash", "-c", line, NULL};
	struct nomad_exec_opts o = {.alloc_id = "d3c4b5a6-7e8f-4091-a2b3-c4d5e6f7a8b9", .argv = argv};
	char path[NOMAD_EXEC_PATH_MAX];
	struct perr e;
	int n = nomad_exec_request_path(path, sizeof path, "default", &o, &e);
	if (n < 0) {
		FUZZ_CHECK(e.kind == PERR_BAD_REQUEST);
		return;
	}
	FUZZ_CHECK((size_t)n == strlen(path));
	const char *v = strstr(path, "?command=");
	FUZZ_CHECK(v);
	v += 9;
	const char *end = strchr(v, '&');
	FUZZ_CHECK(end);
	char *json = malloc((size_t)(end - v) + 1);
	size_t k = 0;
	FUZZ_CHECK(json);
	for (const char *p = v; p < end; p++) {
		unsigned x;
		if (*p == '+') {
			json[k++] = ' ';
		} else if (*p == '%') {
			FUZZ_CHECK(p + 2 < end && sscanf(p + 1, "%2X", &x) == 1);
			json[k++] = (char)x;
			p += 2;
		} else {
			json[k++] = *p;
		}
	}
	json[k] = '\0';
	json_object *arr = json_tokener_parse(json);
	FUZZ_CHECK(arr && json_object_is_type(arr, json_type_array) && json_object_array_length(arr) == 3);
	for (size_t i = 0; i < 3; i++) {
		json_object *s = json_object_array_get_idx(arr, i);
		FUZZ_CHECK(json_object_is_type(s, json_type_string));
		FUZZ_CHECK(strcmp(json_object_get_string(s), argv[i]) == 0);
	}
	json_object_put(arr);
	free(json);
}

/* Quoting alone: one word that lexes back to the input. */
static void check_quote(const char *s)
{
	size_t cap = strlen(s) * 4 + 3;
	char *q = malloc(cap);
	FUZZ_CHECK(q);
	FUZZ_CHECK(files_shell_quote(s, q, cap) > 0);
	struct tokens t;
	FUZZ_CHECK(lex(q, &t) == 0);
	FUZZ_CHECK(t.n == 1 && !t.op[0] && strcmp(t.tok[0], s) == 0);
	tokens_free(&t);
	free(q);
}

#define MAX_DELETES 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned pick = fuzz_take(&data, &size);
	char *path = fuzz_strdup(data, size);
	FUZZ_CHECK(path);
	check_quote(path);
	int recursive = pick & 1, privileged = (pick >> 1) & 1;
	char *line = NULL, *safe = NULL;
	switch ((pick >> 2) % 3) {
	case 0: {
		line = cmd_list_files(path, recursive, privileged);
		safe = cmd_list_files("MARK0", recursive, privileged);
		char *marks[] = {"MARK0"};
		if (strlen(path) > COMMANDS_PATH_MAX) {
			FUZZ_CHECK(line == NULL);
			break;
		}
		FUZZ_CHECK(line && safe);
		check_same_shape(line, safe, &path, marks, 1);
		break;
	}
	case 1: {
		line = cmd_download(path, privileged);
		safe = cmd_download("MARK0", privileged);
		char *marks[] = {"MARK0"};
		if (strlen(path) > COMMANDS_PATH_MAX) {
			FUZZ_CHECK(line == NULL);
			break;
		}
		FUZZ_CHECK(line && safe);
		check_same_shape(line, safe, &path, marks, 1);
		break;
	}
	default: {
		/* a delete list: newline-separated paths; "./ *" (no space) stays the one glob */
		char *deletes[MAX_DELETES], *cleaned[MAX_DELETES], *marks[MAX_DELETES];
		char markbuf[MAX_DELETES][8];
		size_t n = 0;
		for (char *p = path, *nl; p && n < MAX_DELETES; p = nl ? nl + 1 : NULL) {
			nl = strchr(p, '\n');
			if (nl)
				*nl = '\0';
			deletes[n] = p;
			cleaned[n] = malloc(strlen(p) + 3);
			FUZZ_CHECK(cleaned[n]);
			if (strcmp(p, "./*") == 0)
				snprintf(cleaned[n], 4, "./*");
			else
				files_clean_path(p, cleaned[n], strlen(p) + 3);
			snprintf(markbuf[n], sizeof markbuf[n], "MARK%zu", n);
			marks[n] = strcmp(p, "./*") == 0 ? "./*" : markbuf[n];
			n++;
		}
		line = cmd_copy_files(deletes, n);
		safe = cmd_copy_files(marks, n);
		FUZZ_CHECK(line && safe);
		check_same_shape(line, safe, cleaned, marks, n);
		for (size_t i = 0; i < n; i++)
			free(cleaned[i]);
		break;
	}
	}
	if (line)
		check_exec_request(line);
	free(line);
	free(safe);
	free(path);
	return 0;
}
