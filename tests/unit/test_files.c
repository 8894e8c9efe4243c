/* files: the ls parser on recorded GNU ls output (FIL-12..20, odd names included), Go's
 * path.Clean, shell quoting, the tar stream read back with libarchive (FIL-1/8/11), and the copy
 * command itself: GNU tar extracting our stream from a pipe that delivers it in odd pieces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "files.h"

#define MAXE 32
struct got {
	int n;
	char name[MAXE][256], target[MAXE][256], owner[MAXE][32], perms[MAXE][12];
	char type[MAXE];
	int has_target[MAXE];
	unsigned long long size[MAXE];
	long long mtime[MAXE];
};

static int collect(void *ud, const struct file_entry *e)
{
	struct got *g = ud;
	int i = g->n++;
	snprintf(g->name[i], sizeof g->name[i], "%s", e->name);
	snprintf(g->owner[i], sizeof g->owner[i], "%s", e->owner);
	snprintf(g->perms[i], sizeof g->perms[i], "%s", e->permissions);
	g->has_target[i] = e->link_target != NULL;
	snprintf(g->target[i], sizeof g->target[i], "%s", e->link_target ? e->link_target : "");
	g->type[i] = e->entry_type;
	g->size[i] = e->size;
	g->mtime[i] = e->mtime;
	return 0;
}

static void parse_all(const char *out, size_t chunk, struct got *g)
{
	memset(g, 0, sizeof *g);
	struct ls_parser *p = ls_parser_new(collect, g);
	size_t len = strlen(out);
	for (size_t i = 0; i < len; i += chunk)
		ls_parser_feed(p, out + i, len - i < chunk ? len - i : chunk);
	ls_parser_finish(p);
	ls_parser_free(p);
}

/* recorded: ls -l --time-style=+%s -1 --literal --recursive ./ as root in a runner */
static const char *recursive_out =
	"./:\n"
	"total 12\n"
	"drwxrwxrwt 2 root root 4096 1761734000 protectedFolder\n"
	"-rwxr--r-- 1 root root   11 1761734001 test.txt\n"
	"-rw-r--r-- 1 user user    0 1761734002 with space.txt\n"
	"-rw-r--r--+ 1 user user   5 1761734003 acl\n"
	"-rw-r--r-- 1 user user    3 1761734004 äöü€😀\n"
	"-rw-r--r-- 1 user user    3 1761734005 new\n"
	"line\n"
	"lrwxrwxrwx 1 root root    9 1761734006 link -> test.txt\n"
	"-rw-r--r-- 1 root root    1 1761734007 colon:\n"
	"\n"
	"./protectedFolder:\n"
	"total 4\n"
	"-rwxr--r-- 1 root root 11 1761734008 test.txt\n";

static void test_recursive_listing_prefixes_names(void **state)
{
	(void)state;
	struct got g;
	parse_all(recursive_out, 1 << 20, &g);
	assert_int_equal(g.n, 9);
	assert_string_equal(g.name[0], "./protectedFolder");
	assert_int_equal(g.type[0], 'd');
	assert_string_equal(g.perms[0], "rwxrwxrwt");
	assert_string_equal(g.name[1], "./test.txt");
	assert_int_equal(g.size[1], 11);
	assert_int_equal(g.mtime[1], 1761734001);
	assert_string_equal(g.owner[1], "root");
	assert_string_equal(g.perms[1], "rwxr--r--");
	assert_string_equal(g.name[2], "./with space.txt");
	assert_string_equal(g.perms[3], "rw-r--r--+");
	assert_string_equal(g.name[4], "./äöü€😀");
	assert_string_equal(g.name[5], "./new\nline"); /* a newline in a name, printed raw */
	assert_string_equal(g.name[6], "./link");
	assert_true(g.has_target[6]);
	assert_string_equal(g.target[6], "test.txt");
	assert_string_equal(g.name[7], "./colon:");
	assert_string_equal(g.name[8], "./protectedFolder/test.txt");
	/* the same, fed one byte at a time */
	struct got b;
	parse_all(recursive_out, 1, &b);
	assert_int_equal(b.n, 9);
	assert_string_equal(b.name[5], "./new\nline");
	assert_string_equal(b.name[8], "./protectedFolder/test.txt");
}

static void test_non_recursive_listing_gives_bare_names(void **state)
{
	(void)state;
	struct got g;
	parse_all("total 4\n-rwxr--r-- 1 root root 0 1761734000 test.txt\ndrwxr-xr-x 2 root root 4096 1761734000 dir\n",
		  7, &g);
	assert_int_equal(g.n, 2);
	assert_string_equal(g.name[0], "test.txt");
	assert_string_equal(g.name[1], "dir");
}

static void test_links_and_devices(void **state)
{
	(void)state;
	struct got g;
	/* FIL-14/15: a readable link has a target, an unreadable one has none; devices are skipped */
	parse_all("lrwxrwxrwx 1 user user 0 1761734000 /proc/self/cwd -> /workspace\n"
		  "lrwxrwxrwx 1 root root 0 1761734000 /proc/1/cwd\n"
		  "crw-rw-rw- 1 root root 1, 3 1761734000 /dev/null\n",
		  1 << 20, &g);
	assert_int_equal(g.n, 2);
	assert_string_equal(g.name[0], "/proc/self/cwd");
	assert_string_equal(g.target[0], "/workspace");
	assert_string_equal(g.name[1], "/proc/1/cwd");
	assert_false(g.has_target[1]);
}

static void test_lines_that_are_not_entries(void **state)
{
	(void)state;
	char buf[512];
	struct file_entry e;
	assert_int_equal(ls_parse_line("total 8", buf, sizeof buf, &e), 0);
	assert_int_equal(ls_parse_line("", buf, sizeof buf, &e), 0);
	assert_int_equal(ls_parse_line("ls: cannot access 'x': No such file or directory", buf, sizeof buf, &e), 0);
	assert_int_equal(ls_parse_line("-rwxr--r-- 1 root root x 1761734000 f", buf, sizeof buf, &e), 0);
	assert_int_equal(ls_parse_line("Zrwxr--r-- 1 root root 1 1761734000 f", buf, sizeof buf, &e), 0);
	assert_int_equal(ls_parse_line("-rwxr--r-- 1 root root 1 1761734000 ", buf, sizeof buf, &e), 0);
	assert_int_equal(ls_parse_line("-rwxr--r-- 1 root root 1 -86400 old", buf, sizeof buf, &e), 1);
	assert_int_equal(e.mtime, -86400);
	assert_int_equal(ls_parse_line("-rwsr-sr-t 1 root root 1 0  two spaces", buf, sizeof buf, &e), 1);
	assert_string_equal(e.name, " two spaces");
	assert_string_equal(e.permissions, "rwsr-sr-t");
}

static void test_callback_can_stop(void **state)
{
	(void)state;
	struct ls_parser *p = ls_parser_new(NULL, NULL);
	assert_int_equal(ls_parser_feed(p, "-rw-r--r-- 1 a b 1 1 x\n", 23), 0);
	assert_int_equal(ls_parser_finish(p), 1);
	ls_parser_free(p);
}

static void test_clean_path_like_go(void **state)
{
	(void)state;
	const char *cases[][2] = {{"", "."},	       {"./a//b", "a/b"},     {"a/b/", "a/b"},   {"/../x", "/x"},
				  {"a/../..", ".."},   {"../../a", "../../a"}, {"/", "/"},	 {"dir/", "dir"},
				  {"./", "."},	      {"/tmp/absolute/file/path.txt", "/tmp/absolute/file/path.txt"},
				  {"a/./b/../c", "a/c"}, {"//x//", "/x"}};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char out[256];
		files_clean_path(cases[i][0], out, sizeof out);
		assert_string_equal(out, cases[i][1]);
	}
}

static void test_shell_quote(void **state)
{
	(void)state;
	char out[64];
	assert_true(files_shell_quote("a b", out, sizeof out) > 0);
	assert_string_equal(out, "'a b'");
	assert_true(files_shell_quote("it's; rm -rf / $(x) `y`", out, sizeof out) > 0);
	assert_string_equal(out, "'it'\\''s; rm -rf / $(x) `y`'");
	assert_int_equal(files_shell_quote("abcdefgh", out, 5), -1);
}

static void test_tar_stream_round_trip(void **state)
{
	(void)state;
	struct perr e;
	static unsigned char big[300000];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (unsigned char)(i * 7);
	struct file_copy copies[] = {
		{.path = "protectedFolder/"},
		{.path = "protectedFolder/test.txt", .content = (unsigned char *)"New content", .len = 11},
		{.path = "./rel//dir/big.bin", .content = big, .len = sizeof big},
		{.path = "/tmp/absolute/file.txt", .content = (unsigned char *)"abs", .len = 3},
		{.path = "empty", .content = NULL, .len = 0},
	};
	struct tar_stream *t = tar_stream_new(copies, 5, &e);
	assert_non_null(t);
	size_t cap = 1 << 20, len = 0;
	unsigned char *tar = malloc(cap);
	ssize_t n;
	while ((n = tar_stream_read(t, tar + len, 1000, &e)) > 0) /* small reads, as exec frames */
		len += (size_t)n;
	assert_int_equal(n, 0);
	tar_stream_free(t);

	struct archive *a = archive_read_new();
	archive_read_support_format_tar(a);
	assert_int_equal(archive_read_open_memory(a, tar, len), ARCHIVE_OK);
	struct archive_entry *en;
	/* libarchive, like GNU tar, writes directories with a trailing slash */
	const char *names[] = {"protectedFolder/", "protectedFolder/test.txt", "rel/dir/big.bin", "/tmp/absolute/file.txt", "empty"};
	for (int i = 0; i < 5; i++) {
		assert_int_equal(archive_read_next_header(a, &en), ARCHIVE_OK);
		assert_string_equal(archive_entry_pathname(en), names[i]);
		assert_int_equal(archive_entry_uid(en), 0);
		if (i == 0) {
			assert_int_equal(archive_entry_filetype(en), AE_IFDIR);
			assert_int_equal(archive_entry_perm(en), 01777);
			continue;
		}
		assert_int_equal(archive_entry_filetype(en), AE_IFREG);
		assert_int_equal(archive_entry_perm(en), 0744);
		assert_int_equal(archive_entry_size(en), (la_int64_t)copies[i].len);
		unsigned char *data = malloc(copies[i].len + 1);
		assert_int_equal(archive_read_data(a, data, copies[i].len + 1), (la_ssize_t)copies[i].len);
		if (copies[i].len)
			assert_memory_equal(data, copies[i].content, copies[i].len);
		free(data);
	}
	assert_int_equal(archive_read_next_header(a, &en), ARCHIVE_EOF);
	archive_read_free(a);
	free(tar);
}


/* A seeded set of files whose sizes are never multiples of anything, some in directories, one
 * empty, names with spaces and UTF-8, as CodeOcean sends them. */
#define ODD_FILES 12
struct odd_set {
	char path[ODD_FILES][64];
	unsigned char *data[ODD_FILES];
	struct file_copy copy[ODD_FILES + 1];
	size_t n;
};

static void odd_set_make(struct odd_set *s, unsigned seed)
{
	static const size_t sizes[] = {0, 1, 8, 411, 689, 2336, 2692, 3079, 15817, 263624};
	srand(seed);
	memset(s, 0, sizeof *s);
	snprintf(s->path[s->n], sizeof s->path[0], "sub dir/");
	s->copy[s->n] = (struct file_copy){.path = s->path[s->n]};
	s->n++;
	for (size_t i = 0; i < ODD_FILES - 1; i++, s->n++) {
		size_t len = i < 10 ? sizes[i] : (size_t)(rand() % 300000) | 1;
		snprintf(s->path[s->n], sizeof s->path[0], "%s%zu%s", i % 3 == 0 ? "sub dir/f " : "",
			 i, i % 4 == 1 ? " \xc3\xbc\xe2\x9c\x93.txt" : ".bin");
		s->data[s->n] = malloc(len + 1);
		for (size_t k = 0; k < len; k++)
			s->data[s->n][k] = (unsigned char)rand();
		s->copy[s->n] = (struct file_copy){.path = s->path[s->n], .content = s->data[s->n], .len = len};
	}
}

static void odd_set_free(struct odd_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->data[i]);
}

static void test_tar_stream_pieces_are_whole_records(void **state)
{
	(void)state;
	unsigned seed = (unsigned)time(NULL);
	printf("seed %u\n", seed);
	struct odd_set s;
	odd_set_make(&s, seed);
	struct perr e;
	struct tar_stream *t = tar_stream_new(s.copy, s.n, &e);
	assert_non_null(t);
	char buf[2048];
	ssize_t n, last = -1;
	size_t total = 0;
	while ((n = tar_stream_read(t, buf, sizeof buf, &e)) > 0) {
		/* only the last piece may be short, and every piece ends on a 512-byte record */
		assert_int_equal(last, -1);
		assert_int_equal(n % 512, 0);
		if (n < (ssize_t)sizeof buf)
			last = n;
		total += (size_t)n;
	}
	assert_int_equal(n, 0);
	assert_true(total > 263624);
	tar_stream_free(t);
	odd_set_free(&s);
}

/* Writes all of buf to fd in pieces of 1..700 bytes with a pause after each, so that the reader's
 * reads end anywhere (what network frames or an engine's re-chunking of stdin do). */
static int write_jagged(int fd, const char *buf, size_t len)
{
	size_t off = 0;
	while (off < len) {
		size_t k = 1 + (size_t)rand() % 700;
		if (k > len - off)
			k = len - off;
		ssize_t w = write(fd, buf + off, k);
		if (w <= 0)
			return -1; /* tar gave up (EPIPE): its stderr says why */
		off += (size_t)w;
		usleep(50); /* slower than tar reads: each read takes what one write gave */
	}
	return 0;
}

static void test_copy_command_extracts_a_jagged_pipe_byte_exact(void **state)
{
	(void)state;
	unsigned seed = (unsigned)time(NULL) ^ 0x5a5a;
	printf("seed %u\n", seed);
	struct odd_set s;
	odd_set_make(&s, seed);
	char dir[] = "/tmp/poseidon-test-tar-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *line = cmd_copy_files(NULL, 0);
	assert_non_null(line);
	int in[2], err[2];
	assert_int_equal(pipe(in), 0);
	assert_int_equal(pipe(err), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(err[1], 2);
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1); /* tar --verbose names each file */
		close(in[1]);
		close(err[0]);
		if (chdir(dir) < 0)
			_exit(126);
		execl("/bin/bash", "bash", "-c", line, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(err[1]);
	struct perr e;
	struct tar_stream *t = tar_stream_new(s.copy, s.n, &e);
	assert_non_null(t);
	char buf[2048];
	ssize_t n;
	signal(SIGPIPE, SIG_IGN);
	while ((n = tar_stream_read(t, buf, sizeof buf, &e)) > 0)
		if (write_jagged(in[1], buf, (size_t)n) < 0)
			break;
	assert_true(n >= 0);
	tar_stream_free(t);
	close(in[1]);
	char errout[4096];
	ssize_t el = read(err[0], errout, sizeof errout - 1);
	errout[el > 0 ? el : 0] = '\0';
	close(err[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	/* no "Unaligned block", no "Ignoring unknown extended header keyword 'hdrcharset'" */
	if (errout[0])
		printf("tar said: %s\n", errout);
	assert_string_equal(errout, "");
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	for (size_t i = 1; i < s.n; i++) {
		char p[256];
		snprintf(p, sizeof p, "%s/%s", dir, s.path[i]);
		FILE *f = fopen(p, "rb");
		assert_non_null(f);
		unsigned char *got = malloc(s.copy[i].len + 1);
		assert_int_equal(fread(got, 1, s.copy[i].len + 1, f), s.copy[i].len);
		fclose(f);
		if (s.copy[i].len)
			assert_memory_equal(got, s.copy[i].content, s.copy[i].len);
		free(got);
	}
	struct stat st;
	snprintf(buf, sizeof buf, "%s/sub dir", dir);
	assert_int_equal(stat(buf, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	snprintf(buf, sizeof buf, "rm -rf '%s'", dir);
	assert_int_equal(system(buf), 0);
	free(line);
	odd_set_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_recursive_listing_prefixes_names),
		cmocka_unit_test(test_non_recursive_listing_gives_bare_names),
		cmocka_unit_test(test_links_and_devices),
		cmocka_unit_test(test_lines_that_are_not_entries),
		cmocka_unit_test(test_callback_can_stop),
		cmocka_unit_test(test_clean_path_like_go),
		cmocka_unit_test(test_shell_quote),
		cmocka_unit_test(test_tar_stream_round_trip),
		cmocka_unit_test(test_tar_stream_pieces_are_whole_records),
		cmocka_unit_test(test_copy_command_extracts_a_jagged_pipe_byte_exact),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
