/* version: see version.h. The Makefile writes POSEIDON_VERSION into build/gen/version_gen.h and
 * rebuilds only this file when it changes. */
#include "version.h"

#include <stdio.h>

#include "version_gen.h"

const char *poseidon_version(void) { return POSEIDON_VERSION; }

void poseidon_print_version(const char *program) { printf("%s %s\n", program, POSEIDON_VERSION); }
