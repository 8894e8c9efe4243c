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

#endif
