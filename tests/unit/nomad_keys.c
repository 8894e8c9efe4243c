/* nomad_keys: see nomad_keys.h. */
#include "nomad_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *nomad_keys_load(void)
{
	char path[1024];
	const char *src = getenv("POSEIDON_SRC_DIR");
	snprintf(path, sizeof path, "%s/tests/fixtures/nomad/job-fields.txt", src && *src ? src : ".");
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	size_t cap = 1 << 20, n = 1;
	char *b = malloc(cap);
	if (b) {
		b[0] = '\n';
		n += fread(b + 1, 1, cap - 2, f);
		b[n] = '\0';
	}
	fclose(f);
	return b;
}

static int known(const char *fields, const char *path)
{
	char line[512];
	snprintf(line, sizeof line, "\n%s\n", path);
	return strstr(fields, line) != NULL;
}

int nomad_keys_check(const char *fields, json_object *v, const char *path)
{
	int bad = 0;
	char child[512];
	if (json_object_is_type(v, json_type_array)) {
		snprintf(child, sizeof child, "%s[]", path);
		for (size_t i = 0; i < json_object_array_length(v); i++)
			bad += nomad_keys_check(fields, json_object_array_get_idx(v, i), child);
	} else if (json_object_is_type(v, json_type_object)) {
		snprintf(child, sizeof child, "%s{}", path);
		if (*path && known(fields, child))
			return 0;
		json_object_object_foreach(v, k, val)
		{
			snprintf(child, sizeof child, "%s%s%s", path, *path ? "." : "", k);
			if (!known(fields, child)) {
				fprintf(stderr, "not a Nomad job key: %s\n", child);
				bad++;
				continue;
			}
			bad += nomad_keys_check(fields, val, child);
		}
	}
	return bad;
}
