/* PATCH /runners/{id}/files bodies: model_parse_files_request, then everything the copy route
 * builds from an accepted body before any byte goes to a runner: the cleaned paths, the shell
 * line with the delete list (cmd_copy_files) and the whole tar stream (tar_stream_read). */
#include "commands.h"
#include "files.h"
#include "fuzz_error.h"

/* Go's path.Clean is idempotent and never leaves "//", "/./" or a trailing "/" behind. */
static void check_clean(const char *in)
{
	size_t n = strlen(in);
	char *a = malloc(n + 2), *b = malloc(n + 3);
	FUZZ_CHECK(a && b);
	files_clean_path(in, a, n + 2);
	size_t m = strlen(a);
	FUZZ_CHECK(m > 0 && m <= n + 1);
	FUZZ_CHECK(strstr(a, "//") == NULL && strstr(a, "/./") == NULL);
	FUZZ_CHECK(m == 1 || a[m - 1] != '/');
	files_clean_path(a, b, m + 2);
	FUZZ_CHECK(strcmp(a, b) == 0);
	free(a);
	free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct files_request f;
	struct perr e = {0};
	int rc = model_parse_files_request((const char *)data, size, &f, &e);
	FUZZ_CHECK(rc == 0 || rc == -1);
	if (rc < 0) {
		fuzz_check_error(&e);
		FUZZ_CHECK(f.ncopy == 0 && f.ndelete == 0 && f.copy == NULL && f.delete_paths == NULL);
		return 0;
	}
	for (size_t i = 0; i < f.ndelete; i++) {
		FUZZ_CHECK(f.delete_paths[i] != NULL);
		check_clean(f.delete_paths[i]);
	}
	for (size_t i = 0; i < f.ncopy; i++) {
		FUZZ_CHECK(f.copy[i].path != NULL);
		FUZZ_CHECK(f.copy[i].len == 0 || f.copy[i].content != NULL);
		check_clean(f.copy[i].path);
	}
	char *line = cmd_copy_files(f.delete_paths, f.ndelete);
	FUZZ_CHECK(line != NULL);
	free(line);
	/* the archive, drained in odd-sized reads as the exec's stdin would */
	struct tar_stream *t = tar_stream_new(f.copy, f.ncopy, &e);
	FUZZ_CHECK(t != NULL);
	char buf[3000];
	size_t total = 0;
	for (;;) {
		ssize_t n = tar_stream_read(t, buf, sizeof buf, &e);
		if (n <= 0) {
			FUZZ_CHECK(n == 0 || e.kind == PERR_BAD_REQUEST || e.kind == PERR_UNKNOWN);
			break;
		}
		total += (size_t)n;
	}
	FUZZ_CHECK(total % 512 == 0);
	tar_stream_free(t);
	model_files_free(&f);
	return 0;
}
