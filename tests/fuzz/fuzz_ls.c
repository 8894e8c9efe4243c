/* ls output from a runner (GET /files): the incremental parser fed in chunks whose sizes the
 * input picks, compared with the same bytes fed at once (chunking must not change a listing),
 * and ls_parse_line on every line with a buffer of exactly the promised size. */
#include "files.h"
#include "fuzz.h"

/* An order-sensitive digest of every entry the parser emitted. */
struct digest {
	int n;
	uint64_t h;
};

static void mix(struct digest *d, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		d->h = (d->h ^ b[i]) * 1099511628211ULL;
	d->h = (d->h ^ 0xff) * 1099511628211ULL; /* field separator */
}

static void check_entry(const struct file_entry *e)
{
	FUZZ_CHECK(e->name && e->owner && e->group);
	FUZZ_CHECK(strlen(e->name) < FILES_NAME_MAX * 2);
	FUZZ_CHECK(strchr("-aAbcCdDlMnpPsw?", e->entry_type) && e->entry_type);
	size_t pl = strlen(e->permissions);
	FUZZ_CHECK(pl == 9 || (pl == 10 && e->permissions[9] == '+'));
	FUZZ_CHECK(!e->link_target || e->entry_type == 'l');
}

static int on_entry(void *ud, const struct file_entry *e)
{
	struct digest *d = ud;
	check_entry(e);
	d->n++;
	mix(d, e->name, strlen(e->name));
	mix(d, &e->entry_type, 1);
	mix(d, e->link_target ? e->link_target : "", e->link_target ? strlen(e->link_target) + 1 : 0);
	mix(d, &e->size, sizeof e->size);
	mix(d, &e->mtime, sizeof e->mtime);
	mix(d, e->permissions, strlen(e->permissions));
	mix(d, e->owner, strlen(e->owner));
	mix(d, e->group, strlen(e->group));
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned chunk = fuzz_take(&data, &size) % 64 + 1;
	struct digest whole = {0, 14695981039346656037ULL}, parts = whole;

	struct ls_parser *p = ls_parser_new(on_entry, &whole);
	FUZZ_CHECK(p);
	FUZZ_CHECK(ls_parser_feed(p, (const char *)data, size) == 0);
	FUZZ_CHECK(ls_parser_finish(p) == whole.n);
	ls_parser_free(p);

	p = ls_parser_new(on_entry, &parts);
	FUZZ_CHECK(p);
	for (size_t i = 0; i < size; i += chunk)
		FUZZ_CHECK(ls_parser_feed(p, (const char *)data + i, size - i < chunk ? size - i : chunk) ==
		           0);
	FUZZ_CHECK(ls_parser_finish(p) == parts.n);
	ls_parser_free(p);
	FUZZ_CHECK(whole.n == parts.n && whole.h == parts.h);

	/* each line alone, as the download route parses ls's first line */
	for (size_t start = 0; start <= size;) {
		const uint8_t *nl = memchr(data + start, '\n', size - start);
		size_t len = nl ? (size_t)(nl - (data + start)) : size - start;
		char *line = fuzz_strdup(data + start, len);
		size_t cap = strlen(line) + 1; /* a NUL in the line ends it, as in a C string */
		char *buf = malloc(cap);
		struct file_entry e;
		FUZZ_CHECK(line && buf);
		if (ls_parse_line(line, buf, cap, &e) == 1)
			check_entry(&e);
		free(buf);
		free(line);
		if (!nl)
			break;
		start += len + 1;
	}
	return 0;
}
