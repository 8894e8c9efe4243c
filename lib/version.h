/* version: the build's identity (git describe of the tree it was built from, or the VERSION the
 * Makefile was given). */
#ifndef POSEIDON_VERSION_H
#define POSEIDON_VERSION_H

/* A static string such as "86f4042" or "v1.0-3-g86f4042-dirty"; "unknown" outside git. */
const char *poseidon_version(void);

/* Prints "<program> <version>" on stdout: what every program's -version answers (help2man reads
 * it for the man page's header). */
void poseidon_print_version(const char *program);

#endif
