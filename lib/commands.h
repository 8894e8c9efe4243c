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
/* Runs the command line that arrives on stdin: for a line too long for Nomad's exec request
 * (lib/nomad_exec NOMAD_EXEC_PATH_MAX) whose command reads no stdin of its own. */
#define CMD_LINE_FROM_STDIN "exec /bin/bash -c \"$(cat)\""

/* ---- interactive executions (poseidon-wsgate, docs/wsgate.md) ------------------------------
 * The user's command runs as `/bin/bash -c <command>` under `/sbin/setuser user` unless
 * privileged, after `unset ${!NOMAD_@}`, with the client's variables and then CODEOCEAN=true
 * (which therefore wins) set by env, each NAME=VALUE single-quoted.
 * Its stderr is split off through a FIFO, and a command line too long for Nomad's exec request
 * goes through a script file; both live in the execution's own directory dir
 * (CMD_EXEC_TMP_PREFIX + execution id), a root-owned 0700 directory in the runner's /tmp that
 * whichever session comes first makes, and in which every later name is relative: a learner who
 * watches /proc and plants a symlink or a directory of theirs at that path makes the session
 * exit 125 (fail closed) and can never redirect a root shell's open. The main (tty) session and
 * the reader session each try mkfifo, so whichever comes first creates the FIFO and neither
 * polls; both opens block until the other end is there; then the FIFO and the directory go, so
 * nothing is left once the program runs. A HUP, INT, QUIT or TERM while a side still waits
 * removes them too (the gateway's 0x1C is a QUIT). The script is written by one non-tty exec
 * (cmd_exec_write_script, the content from cmd_exec_script on stdin); the main session opens it
 * on fd 3, removes it, and runs `bash /dev/fd/3` as the user. Names must be shell variable names
 * ([A-Za-z_][A-Za-z0-9_]*) or the builders return NULL. */
#define CMD_EXEC_TMP_PREFIX "/tmp/poseidon-"
/* The tty session. split_stderr: stderr goes through the FIFO (server.interactivestderr),
 * else it stays on the tty. script: the command and environment come from the script file. dir
 * may be NULL when neither is asked for. */
char *cmd_exec_main(const struct execution_request *x, const char *dir, int split_stderr, int script);
/* The stderr session: copies the FIFO to its output until the program's side closes it. */
char *cmd_exec_stderr(const char *dir);
/* The script file's content for x (*len set): closes fd 3, exports the variables, then the
 * command. */
char *cmd_exec_script(const struct execution_request *x, size_t *len);
/* A non-tty, root session that writes its stdin to the script in dir (mode 0644, never over an
 * existing file). */
char *cmd_exec_write_script(const char *dir);
/* After an execution that did not end cleanly: TERM to every process still waiting at the
 * rendezvous in dir (found by the path in its command line; their traps clean up), then removes
 * dir. Needs bash 4.4 (mapfile -d) and /proc. */
char *cmd_exec_sweep(const char *dir);

#endif
