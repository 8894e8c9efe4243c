/* help: the paragraphs every program's -help shares (configuration, environment, files).
 *
 * Each program prints its -help from one string in its main.c built with these macros, and the
 * Makefile turns that output into the program's man page with help2man (`make man`), so the
 * flags, environment, files, signals and exit codes in the man pages are the -help texts. The
 * layout follows what help2man reads: "Usage:" lines, then a one-line summary (the man page's
 * NAME), paragraphs, then sections headed "Options:", "Environment:", "Files:", "Signals:",
 * "Exit status:" and "See also:", each entry indented by two spaces with its text in a column of its own.
 * Paths under /etc/poseidon and /usr/local are the systemd units' (deploy/systemd); `make install`
 * rewrites them in the installed man pages for the prefix it installs to.
 */
#ifndef POSEIDON_HELP_H
#define POSEIDON_HELP_H

#define HELP_OPT_CONFIG                                                                          \
	"  -config FILE       the YAML configuration file (also -config=FILE, --config FILE);\n"  \
	"                     without it $POSEIDON_CONFIG, else ./configuration.yaml if it\n"     \
	"                     exists, else the built-in defaults\n"

#define HELP_OPT_STANDARD                                                                        \
	"  -help              print this help on standard output and exit 0 (also -h, --help)\n"  \
	"  -version           print the program's name and version and exit 0 (also --version)\n"

#define HELP_ENV_CONFIG                                                                          \
	"  POSEIDON_CONFIG    the configuration file, when -config is not given\n"                \
	"  POSEIDON_<SECTION>_<KEY>\n"                                                            \
	"                     overrides the configuration key section.key, and wins over the\n"  \
	"                     file: upper case, dots as underscores (POSEIDON_REDIS_ADDRESS is\n" \
	"                     redis.address); every key: poseidon-api -config-reference\n"

#define HELP_FILES_CONFIG                                                                        \
	"  ./configuration.yaml\n"                                                                \
	"                     read when neither -config nor POSEIDON_CONFIG names a file\n"       \
	"  /etc/poseidon/configuration.yaml\n"                                                    \
	"                     the configuration the systemd units name in POSEIDON_CONFIG\n"      \
	"  /etc/poseidon/poseidon.env\n"                                                          \
	"                     POSEIDON_* settings the systemd units read (EnvironmentFile=)\n"

#define HELP_SEE_ALSO                                                                            \
	"See also:\n"                                                                              \
	"  poseidon-api(1), poseidon-refill(1), poseidon-wsgate(1), poseidon-admin(1),\n"          \
	"  nomad-local(1); the documentation in /usr/local/share/doc/poseidon/\n"                \
	"  (operations.md, configuration.md)\n"

#endif
