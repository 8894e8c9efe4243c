/* apischema: the key paths and Go types of Nomad's job register request (see apischema.c). */
#ifndef NL_APISCHEMA_H
#define NL_APISCHEMA_H

struct api_field {
	const char *path; /* e.g. "Job.TaskGroups[].Tasks[].Resources.CPU" */
	const char *type; /* Go type as declared, e.g. "*int", "[]*TaskGroup", "map[string]string" */
};

extern const struct api_field api_fields[];
extern const int api_nfields;

#endif
