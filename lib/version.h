/* version: the build's identity (git describe of the tree it was built from). */
#ifndef POSEIDON_VERSION_H
#define POSEIDON_VERSION_H

/* A static string such as "86f4042" or "v1.0-3-g86f4042-dirty"; "unknown" outside git. */
const char *poseidon_version(void);

#endif
