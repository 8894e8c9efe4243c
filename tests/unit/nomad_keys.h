/* nomad_keys: checks a job document's keys against Nomad's own list of job keys
 * (tests/fixtures/nomad/job-fields.txt), for the unit tests of what we send Nomad. */
#ifndef POSEIDON_TEST_NOMAD_KEYS_H
#define POSEIDON_TEST_NOMAD_KEYS_H

#include <json-c/json.h>

/* Reads the list from $POSEIDON_SRC_DIR (default .), framed by "\n" on every side; NULL when it
 * cannot be read. The caller frees it. */
char *nomad_keys_load(void);
/* Walks v, whose key path is path ("" at the top); every object key path must be in fields.
 * Maps (paths with a "{}" entry, like Task.Config and Meta) hold free keys and are not
 * descended. Returns the number of unknown keys, each printed to stderr. */
int nomad_keys_check(const char *fields, json_object *v, const char *path);

#endif
