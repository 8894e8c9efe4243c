/* The command lines of interactive executions (lib/commands cmd_exec_*), run here with the local
 * bash as privileged executions (no /sbin/setuser needed): client variables stay values whatever
 * they contain (DIS-7), CODEOCEAN=true wins, NOMAD_* are gone (WS-10), the FIFO rendezvous splits
 * stderr from stdout and leaves no FIFO behind (WS-6, WS-14), the script path for long commands
 * leaves no file behind, and a QUIT while one side waits removes the FIFO. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "commands.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/test-exec-cmd-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Runs `bash -c line` with stdin from in (may be NULL), stdout into out, stderr into err; returns
 * the exit status. */
static int run(const char *line, const char *in, char *out, size_t outcap, char *err, size_t errcap)
{
	char o[128], e[128], i[128];
	snprintf(o, sizeof o, "%s/out", dir);
	snprintf(e, sizeof e, "%s/err", dir);
	snprintf(i, sizeof i, "%s/in", dir);
	FILE *f = fopen(i, "w");
	assert_non_null(f);
	if (in)
		fputs(in, f);
	fclose(f);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (!freopen(i, "r", stdin) || !freopen(o, "w", stdout) || !freopen(e, "w", stderr))
			_exit(126);
		setenv("NOMAD_ALLOC_ID", "secret", 1);
		setenv("NOMAD_TASK_NAME", "default-task", 1);
		execl("/bin/bash", "bash", "-c", line, (char *)NULL);
		_exit(127);
	}
	int st;
	waitpid(pid, &st, 0);
	struct {
		const char *path;
		char *buf;
		size_t cap;
	} files[2] = {{o, out, outcap}, {e, err, errcap}};
	for (int k = 0; k < 2; k++) {
		if (!files[k].buf)
			continue;
		f = fopen(files[k].path, "r");
		size_t n = f ? fread(files[k].buf, 1, files[k].cap - 1, f) : 0;
		files[k].buf[n] = '\0';
		if (f)
			fclose(f);
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static struct env_var vars[] = {
    {"hello", "world"},
    {"INJECT", "a; echo PWNED"},
    {"QUOTES", "it's \"$HOME\" `id` $(id)"},
    {"CODEOCEAN", "false"},
};

static struct execution_request req(const char *command, int privileged, size_t nenv)
{
	struct execution_request x = {.command = (char *)command,
	                              .command_len = strlen(command),
	                              .privileged = privileged,
	                              .nenv = nenv,
	                              .env = vars};
	return x;
}

static void test_environment_is_quoted_and_codeocean_wins(void **state)
{
	(void)state;
	char out[8192], err[1024];
	struct execution_request x = req("env", 1, 4);
	char *line = cmd_exec_main(&x, NULL, NULL);
	assert_non_null(line);
	assert_null(strstr(line, "/sbin/setuser"));
	assert_int_equal(run(line, NULL, out, sizeof out, err, sizeof err), 0);
	assert_non_null(strstr(out, "\nhello=world\n"));
	assert_non_null(strstr(out, "\nINJECT=a; echo PWNED\n"));
	assert_non_null(strstr(out, "\nQUOTES=it's \"$HOME\" `id` $(id)\n"));
	assert_non_null(strstr(out, "\nCODEOCEAN=true\n"));
	assert_null(strstr(out, "CODEOCEAN=false"));
	assert_null(strstr(out, "\nPWNED"));
	assert_null(strstr(out, "NOMAD_"));
	free(line);

	x = req("id -u", 0, 1);
	line = cmd_exec_main(&x, NULL, NULL);
	assert_non_null(
	    strstr(line, "exec /sbin/setuser user env 'hello=world' CODEOCEAN=true /bin/bash -c 'id -u'"));
	free(line);
}

static void test_exit_code_and_command_quoting(void **state)
{
	(void)state;
	char out[1024];
	struct execution_request x = req("echo \"$0\" $((6*7)); exit 42", 1, 0);
	char *line = cmd_exec_main(&x, NULL, NULL);
	assert_int_equal(run(line, NULL, out, sizeof out, NULL, 0), 42);
	assert_string_equal(out, "/bin/bash 42\n");
	free(line);
}

static void test_invalid_names_build_nothing(void **state)
{
	(void)state;
	struct env_var bad[] = {{"1x", "v"}};
	struct execution_request x = {.command = "true", .command_len = 4, .nenv = 1, .env = bad};
	assert_null(cmd_exec_main(&x, NULL, NULL));
	bad[0].name = "a-b";
	assert_null(cmd_exec_main(&x, "/tmp/f", NULL));
	bad[0].name = "";
	assert_null(cmd_exec_script(&x, NULL));
	assert_null(cmd_exec_stderr(NULL));
}

/* Runs main and reader like the two exec sessions, concurrently; returns main's status. */
static int run_split(const char *main_line, const char *reader_line, char *out, char *err, size_t cap)
{
	char rd[1024];
	snprintf(rd, sizeof rd, "%s/reader.out", dir);
	pid_t reader = fork();
	if (reader == 0) {
		if (!freopen(rd, "w", stdout))
			_exit(126);
		execl("/bin/bash", "bash", "-c", reader_line, (char *)NULL);
		_exit(127);
	}
	int status = run(main_line, NULL, out, cap, NULL, 0);
	int st;
	waitpid(reader, &st, 0);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	FILE *f = fopen(rd, "r");
	size_t n = f ? fread(err, 1, cap - 1, f) : 0;
	err[n] = '\0';
	if (f)
		fclose(f);
	return status;
}

static void test_fifo_splits_stderr_and_is_removed(void **state)
{
	(void)state;
	char fifo[128], out[1024], err[1024];
	snprintf(fifo, sizeof fifo, "%s/x.fifo", dir);
	struct execution_request x = req("echo out; cat -invalid; echo more >&2; exit 3", 1, 0);
	char *m = cmd_exec_main(&x, fifo, NULL), *r = cmd_exec_stderr(fifo);
	assert_int_equal(run_split(m, r, out, err, sizeof out), 3);
	assert_string_equal(out, "out\n");
	assert_non_null(strstr(err, "cat: invalid option"));
	assert_non_null(strstr(err, "more\n"));
	assert_null(strstr(out, "invalid"));
	assert_int_equal(access(fifo, F_OK), -1);

	/* the reader first, or the main first: both orders meet */
	x = req("echo late >&2", 1, 0);
	free(m);
	m = cmd_exec_main(&x, fifo, NULL);
	char delayed[2048];
	snprintf(delayed, sizeof delayed, "sleep 0.3; %s", m);
	assert_int_equal(run_split(delayed, r, out, err, sizeof out), 0);
	assert_string_equal(err, "late\n");
	snprintf(delayed, sizeof delayed, "sleep 0.3; %s", r);
	assert_int_equal(run_split(m, delayed, out, err, sizeof out), 0);
	assert_string_equal(err, "late\n");
	assert_int_equal(access(fifo, F_OK), -1);
	free(m);
	free(r);
}

static void test_quit_while_waiting_removes_the_fifo(void **state)
{
	(void)state;
	char fifo[128];
	snprintf(fifo, sizeof fifo, "%s/q.fifo", dir);
	struct execution_request x = req("true", 1, 0);
	char *lines[2] = {cmd_exec_main(&x, fifo, NULL), cmd_exec_stderr(fifo)};
	for (int k = 0; k < 2; k++) {
		pid_t pid = fork();
		if (pid == 0) {
			execl("/bin/bash", "bash", "-c", lines[k], (char *)NULL);
			_exit(127);
		}
		struct stat sb;
		for (int i = 0; i < 200 && stat(fifo, &sb) < 0; i++)
			usleep(5000);
		assert_true(S_ISFIFO(sb.st_mode));
		assert_int_equal(sb.st_mode & 0777, 0600);
		usleep(50000); /* now blocked in the open of the other end */
		kill(pid, SIGQUIT);
		int st;
		waitpid(pid, &st, 0);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 131);
		assert_int_equal(access(fifo, F_OK), -1);
		free(lines[k]);
	}
}

static void test_sweep_ends_waiting_sides_and_removes_the_fifo(void **state)
{
	(void)state;
	char fifo[128], script[128];
	snprintf(fifo, sizeof fifo, "%s/s.fifo", dir);
	snprintf(script, sizeof script, "%s/s.sh", dir);
	struct execution_request x = req("true", 1, 0);
	char *reader = cmd_exec_stderr(fifo), *other = cmd_exec_stderr("/tmp/not-this-one.fifo");
	pid_t pid = fork(), bystander = fork();
	if (pid == 0) {
		execl("/bin/bash", "bash", "-c", reader, (char *)NULL);
		_exit(127);
	}
	if (bystander == 0) {
		execl("/bin/bash", "bash", "-c", "sleep 2", (char *)NULL); /* not ours: left alone */
		_exit(127);
	}
	FILE *f = fopen(script, "w");
	fclose(f);
	struct stat sb;
	for (int i = 0; i < 200 && stat(fifo, &sb) < 0; i++)
		usleep(5000);
	usleep(50000); /* blocked in the open of the FIFO: no writer will come */
	char *sweep = cmd_exec_sweep(fifo, script);
	assert_non_null(sweep);
	assert_int_equal(run(sweep, NULL, NULL, 0, NULL, 0), 0);
	int st;
	waitpid(pid, &st, 0);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 143);
	assert_int_equal(access(fifo, F_OK), -1);
	assert_int_equal(access(script, F_OK), -1);
	assert_int_equal(waitpid(bystander, &st, WNOHANG), 0); /* still sleeping */
	kill(bystander, SIGKILL);
	waitpid(bystander, &st, 0);
	/* nothing to do is fine too */
	assert_int_equal(run(sweep, NULL, NULL, 0, NULL, 0), 0);
	free(sweep);
	assert_null(cmd_exec_sweep(NULL, NULL));
	free(reader);
	free(other);
	(void)x;
}

static void test_long_command_goes_through_a_script(void **state)
{
	(void)state;
	char script[128], out[300000], err[1024];
	snprintf(script, sizeof script, "%s/s.sh", dir);
	/* a command of 100 KiB: an argument this long still works, as a script too */
	size_t big = 100 * 1024;
	char *cmd = malloc(big + 128);
	memcpy(cmd, "x=", 2);
	memset(cmd + 2, 'y', big);
	snprintf(cmd + 2 + big, 128, "; echo ${#x} $hello $INJECT; if [ -e /dev/fd/3 ]; then echo fd3 open; fi");
	struct execution_request x = req(cmd, 1, 2);
	size_t len = 0;
	char *content = cmd_exec_script(&x, &len);
	assert_non_null(content);
	assert_int_equal(len, strlen(content));
	char *w = cmd_exec_write_script(script);
	assert_int_equal(run(w, content, out, sizeof out, err, sizeof err), 0);
	struct stat sb;
	assert_int_equal(stat(script, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0644);
	/* never over an existing file */
	assert_int_not_equal(run(w, "other", out, sizeof out, err, sizeof err), 0);
	char *m = cmd_exec_main(&x, NULL, script);
	assert_true(strlen(m) < 300);
	assert_int_equal(run(m, NULL, out, sizeof out, err, sizeof err), 0);
	assert_string_equal(out, "102400 world a; echo PWNED\n");
	assert_int_equal(access(script, F_OK), -1);
	free(cmd);
	free(content);
	free(w);
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_environment_is_quoted_and_codeocean_wins),
	    cmocka_unit_test(test_exit_code_and_command_quoting),
	    cmocka_unit_test(test_invalid_names_build_nothing),
	    cmocka_unit_test(test_fifo_splits_stderr_and_is_removed),
	    cmocka_unit_test(test_quit_while_waiting_removes_the_fifo),
	    cmocka_unit_test(test_sweep_ends_waiting_sides_and_removes_the_fifo),
	    cmocka_unit_test(test_long_command_goes_through_a_script),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
