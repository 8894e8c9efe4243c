/* fuzz: what the libFuzzer targets in tests/fuzz/ share.
 *
 * Every target defines LLVMFuzzerTestOneInput and feeds outside bytes to one parser of lib/, the way
 * its real caller does (exact-length buffers where the caller passes a length, NUL-terminated
 * copies where it passes a C string), then checks invariants the code promises. A broken
 * invariant aborts, so libFuzzer records it like a sanitizer finding. Targets keep no state
 * between inputs and print nothing: logging is raised to errors only.
 */
#ifndef POSEIDON_FUZZ_H
#define POSEIDON_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* Aborts with the failed condition: a finding. */
#define FUZZ_CHECK(cond)                                                                                     \
	do {                                                                                                 \
		if (!(cond)) {                                                                               \
			fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);   \
			abort();                                                                             \
		}                                                                                            \
	} while (0)

/* A malloc'd NUL-terminated copy of the input (NULL only when out of memory). */
static inline char *fuzz_strdup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (s) {
		if (size)
			memcpy(s, data, size);
		s[size] = '\0';
	}
	return s;
}

/* Silences the library's logs (unknown config keys, ...) once per process. */
static inline void fuzz_quiet(void)
{
	static int done;
	if (!done) {
		log_set_level(LOG_LEVEL_ERROR);
		done = 1;
	}
}

/* Reads one byte of the input as a small choice (0 when the input is used up). */
static inline unsigned fuzz_take(const uint8_t **data, size_t *size)
{
	if (*size == 0)
		return 0;
	unsigned v = **data;
	(*data)++, (*size)--;
	return v;
}

#endif
