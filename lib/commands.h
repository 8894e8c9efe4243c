/* commands: the shell command lines the service runs inside runners, built in one place.
 *
 * Every value that comes from a request is single-quoted (lib/files files_shell_quote), so it
 * stays one word whatever it contains; the only unquoted request text is the delete entry "./ *" (without the space),
 * which the API defines as a glob. Commands run as `/bin/bash -c <line>` through Nomad's exec;
 * NOMAD_* variables are unset first and unprivileged commands run as `/sbin/setuser user`.
 * Results are malloc'd strings the caller frees; NULL means a value was too long.
 */
#ifndef POSEIDON_COMMANDS_H
#define POSEIDON_COMMANDS_H

#include <stddef.h>

#include "model.h"

#define COMMANDS_PATH_MAX 4096   /* longest path a file route accepts */

/* ls -l --time-style=+%s -1 --literal [--recursive] -- PATH */
char *cmd_list_files(const char *path, int recursive, int privileged);
/* checks PATH is a readable regular file (exit 42 otherwise), prints its ls line, then its bytes */
char *cmd_download(const char *path, int privileged);
#define CMD_DOWNLOAD_NOT_READABLE 42
/* rm -rf of the delete list (cleaned and quoted; the entry dot-slash-star is globbed), then tar --extract from stdin, as
 * root. With deletes_via_stdin the delete list is not in the line (see cmd_delete_stdin). */
char *cmd_copy_files(char *const *deletes, size_t ndeletes);
/* rm -rf of NUL-separated paths read from stdin (for delete lists too long for a command line). */
char *cmd_delete_stdin(void);

/* ---- interactive executions (poseidon-wsgate, docs/wsgate.md) ------------------------------
 * The user's command runs as `/bin/bash -c <command>` under `/sbin/setuser user` unless
 * privileged, after `unset ${!NOMAD_@}`, with the client's variables and then CODEOCEAN=true
 * (which therefore wins) set by env, each NAME=VALUE single-quoted. With a FIFO path its stderr
 * is split off: the main (tty) session and the reader session each try mkfifo, so whichever
 * comes first creates it and neither polls; both opens block until the other end is there;
 * then both remove the path, so nothing is left once the program runs. A HUP, INT, QUIT or TERM
 * while a side still waits for the other removes the FIFO too (the gateway's 0x1C is a QUIT).
 * A command line too long for Nomad's exec request goes through a script file instead: one
 * non-tty exec writes it (cmd_exec_write_script, the content from cmd_exec_script on stdin), and
 * the main session opens it on fd 3, removes it, and runs `bash /dev/fd/3` as the user. Every
 * path given here is ours (built from an execution id); names must be shell variable names
 * ([A-Za-z_][A-Za-z0-9_]*) or the builders return NULL. */
#define CMD_EXEC_TMP_PREFIX "/tmp/poseidon-"
/* The tty session. fifo NULL: stderr stays on the tty (server.interactivestderr false).
 * script NULL: command and environment are in the line. */
char *cmd_exec_main(const struct execution_request *x, const char *fifo, const char *script);
/* The stderr session: copies the FIFO to its output until the program's side closes it. */
char *cmd_exec_stderr(const char *fifo);
/* The script file's content for x (*len set): closes fd 3, exports the variables, then the
 * command. */
char *cmd_exec_script(const struct execution_request *x, size_t *len);
/* A non-tty, root session that writes its stdin to the script path (mode 0644, never over an
 * existing file). */
char *cmd_exec_write_script(const char *script);
/* After an execution that did not end cleanly: TERM to every process still waiting at the
 * rendezvous of fifo (found by the path in its command line; their traps remove the FIFO), then
 * removes fifo and script (either may be NULL). Needs bash 4.4 (mapfile -d) and /proc. */
char *cmd_exec_sweep(const char *fifo, const char *script);

#endif
