/* version: see version.h. The Makefile writes POSEIDON_VERSION into build/gen/version_gen.h and
 * rebuilds only this file when it changes. */
#include "version.h"

#include "version_gen.h"

const char *poseidon_version(void) { return POSEIDON_VERSION; }
