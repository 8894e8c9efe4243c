/* The command lines of interactive executions (lib/commands cmd_exec_*), run here with the local
 * bash as privileged executions (no /sbin/setuser needed): client variables stay values whatever
 * they contain (DIS-7), CODEOCEAN=true wins, NOMAD_* are gone (WS-10), the FIFO rendezvous splits
 * stderr from stdout and leaves nothing behind (WS-6, WS-14), the script path for long commands
 * leaves nothing behind, a QUIT while one side waits cleans up, and whatever a learner plants at
 * the execution's directory (a symlink to a root directory, a directory of theirs, a file) makes
 * the sessions fail closed without opening anything through it. */
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
#include "nomad_exec.h"

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
	char *line = cmd_exec_main(&x, NULL, 0, 0);
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
	line = cmd_exec_main(&x, NULL, 0, 0);
	assert_non_null(
	    strstr(line, "exec /sbin/setuser user env 'hello=world' CODEOCEAN=true /bin/bash -c 'id -u'"));
	free(line);
}

static void test_exit_code_and_command_quoting(void **state)
{
	(void)state;
	char out[1024];
	struct execution_request x = req("echo \"$0\" $((6*7)); exit 42", 1, 0);
	char *line = cmd_exec_main(&x, NULL, 0, 0);
	assert_int_equal(run(line, NULL, out, sizeof out, NULL, 0), 42);
	assert_string_equal(out, "/bin/bash 42\n");
	free(line);
}

static void test_invalid_names_build_nothing(void **state)
{
	(void)state;
	struct env_var bad[] = {{"1x", "v"}};
	struct execution_request x = {.command = "true", .command_len = 4, .nenv = 1, .env = bad};
	assert_null(cmd_exec_main(&x, NULL, 0, 0));
	bad[0].name = "a-b";
	assert_null(cmd_exec_main(&x, "/tmp/f", 1, 0));
	bad[0].name = "ok";
	assert_null(cmd_exec_main(&x, NULL, 1, 0)); /* a FIFO needs its directory */
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
	char d[128], out[1024], err[1024];
	snprintf(d, sizeof d, "%s/exec-split", dir);
	struct execution_request x = req("echo out; cat -invalid; echo more >&2; pwd; exit 3", 1, 0);
	char *m = cmd_exec_main(&x, d, 1, 0), *r = cmd_exec_stderr(d);
	assert_int_equal(run_split(m, r, out, err, sizeof out), 3);
	/* the program runs where the session started, not in the execution's directory */
	char want[1100];
	snprintf(want, sizeof want, "out\n%s\n", getcwd(want + 600, 500));
	assert_string_equal(out, want);
	assert_non_null(strstr(err, "cat: invalid option"));
	assert_non_null(strstr(err, "more\n"));
	assert_null(strstr(out, "invalid"));
	assert_int_equal(access(d, F_OK), -1);

	/* the reader first, or the main first: both orders meet */
	x = req("echo late >&2", 1, 0);
	free(m);
	m = cmd_exec_main(&x, d, 1, 0);
	char delayed[4096];
	snprintf(delayed, sizeof delayed, "sleep 0.3; %s", m);
	assert_int_equal(run_split(delayed, r, out, err, sizeof out), 0);
	assert_string_equal(err, "late\n");
	snprintf(delayed, sizeof delayed, "sleep 0.3; %s", r);
	assert_int_equal(run_split(m, delayed, out, err, sizeof out), 0);
	assert_string_equal(err, "late\n");
	assert_int_equal(access(d, F_OK), -1);
	free(m);
	free(r);
}

/* A learner who read the directory's name from a root shell's command line and got there first:
 * a symlink to a root-owned directory, a directory of their own, or a file. Every session fails
 * with 125 and nothing is created, written or read through it. */
static void test_anything_planted_at_the_directory_fails_closed(void **state)
{
	(void)state;
	char d[128], victim[128], mine[128], cmd[512], out[1024], err[1024];
	snprintf(d, sizeof d, "%s/exec-planted", dir);
	snprintf(victim, sizeof victim, "%s/root-only", dir);
	snprintf(mine, sizeof mine, "%s/learners", dir);
	assert_int_equal(mkdir(victim, 0700), 0);
	snprintf(cmd, sizeof cmd, "%s/secret", victim);
	FILE *f = fopen(cmd, "w");
	fputs("TOPSECRET\n", f);
	fclose(f);
	struct execution_request x = req("echo ran", 1, 0);
	char *lines[4] = {cmd_exec_main(&x, d, 1, 0), cmd_exec_stderr(d), cmd_exec_write_script(d),
			  cmd_exec_main(&x, d, 0, 1)};
	for (int plant = 0; plant < 3; plant++) {
		if (plant == 0)
			assert_int_equal(symlink(victim, d), 0);
		else if (plant == 1)
			assert_true(mkdir(d, 0777) == 0 && chown(d, 1000, 1000) == 0);
		else
			assert_non_null((f = fopen(d, "w"))) , fclose(f);
		for (int k = 0; k < 4; k++) {
			int st = run(lines[k], "script content", out, sizeof out, err, sizeof err);
			if (st != 125 || strstr(out, "ran") || strstr(out, "TOPSECRET"))
				fail_msg("plant %d, line %d: exit %d, out %s, err %s", plant, k, st, out, err);
		}
		/* nothing appeared in the directory the symlink pointed to, the secret is unchanged */
		snprintf(cmd, sizeof cmd, "ls -A %s", victim);
		FILE *p = popen(cmd, "r");
		size_t n = fread(out, 1, sizeof out - 1, p);
		pclose(p);
		out[n] = '\0';
		assert_string_equal(out, "secret\n");
		snprintf(cmd, sizeof cmd, "rm -rf %s", d);
		assert_int_equal(system(cmd), 0);
	}
	for (int k = 0; k < 4; k++)
		free(lines[k]);
	(void)mine;
}

static void test_quit_while_waiting_removes_everything(void **state)
{
	(void)state;
	char d[128], fifo[160];
	snprintf(d, sizeof d, "%s/exec-quit", dir);
	snprintf(fifo, sizeof fifo, "%s/stderr", d);
	struct execution_request x = req("true", 1, 0);
	char *lines[2] = {cmd_exec_main(&x, d, 1, 0), cmd_exec_stderr(d)};
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
		assert_int_equal(stat(d, &sb), 0);
		assert_int_equal(sb.st_mode & 0777, 0700);
		assert_int_equal(sb.st_uid, 0);
		usleep(50000); /* now blocked in the open of the other end */
		kill(pid, SIGQUIT);
		int st;
		waitpid(pid, &st, 0);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 131);
		assert_int_equal(access(d, F_OK), -1);
		free(lines[k]);
	}
}

static void test_sweep_ends_waiting_sides_and_removes_the_directory(void **state)
{
	(void)state;
	char d[128], fifo[160];
	snprintf(d, sizeof d, "%s/exec-sweep", dir);
	snprintf(fifo, sizeof fifo, "%s/stderr", d);
	char *reader = cmd_exec_stderr(d);
	pid_t pid = fork(), bystander = fork();
	if (pid == 0) {
		execl("/bin/bash", "bash", "-c", reader, (char *)NULL);
		_exit(127);
	}
	if (bystander == 0) {
		execl("/bin/bash", "bash", "-c", "sleep 2", (char *)NULL); /* not ours: left alone */
		_exit(127);
	}
	struct stat sb;
	for (int i = 0; i < 200 && stat(fifo, &sb) < 0; i++)
		usleep(5000);
	usleep(50000); /* blocked in the open of the FIFO: no writer will come */
	char *sweep = cmd_exec_sweep(d);
	assert_non_null(sweep);
	assert_int_equal(run(sweep, NULL, NULL, 0, NULL, 0), 0);
	int st;
	waitpid(pid, &st, 0);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 143);
	assert_int_equal(access(d, F_OK), -1);
	assert_int_equal(waitpid(bystander, &st, WNOHANG), 0); /* still sleeping */
	kill(bystander, SIGKILL);
	waitpid(bystander, &st, 0);
	/* nothing to do is fine too, and a symlink there goes, not what it points to */
	assert_int_equal(run(sweep, NULL, NULL, 0, NULL, 0), 0);
	assert_int_equal(symlink(dir, d), 0);
	assert_int_equal(run(sweep, NULL, NULL, 0, NULL, 0), 0);
	assert_int_equal(access(d, F_OK), -1);
	assert_int_equal(access(dir, F_OK), 0);
	free(sweep);
	assert_null(cmd_exec_sweep(NULL));
	free(reader);
}

static void test_long_command_goes_through_a_script(void **state)
{
	(void)state;
	char d[128], script[160], out[300000], err[1024];
	snprintf(d, sizeof d, "%s/exec-script", dir);
	snprintf(script, sizeof script, "%s/script", d);
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
	char *w = cmd_exec_write_script(d);
	assert_int_equal(run(w, content, out, sizeof out, err, sizeof err), 0);
	struct stat sb;
	assert_int_equal(stat(script, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0644);
	/* never over an existing file */
	assert_int_not_equal(run(w, "other", out, sizeof out, err, sizeof err), 0);
	char *m = cmd_exec_main(&x, d, 0, 1);
	assert_true(strlen(m) < 1000);
	/* what the gateway sends when a line is too long: the script line with the stderr FIFO, of an
	 * unprivileged command, in a real execution's directory, must fit Nomad's exec request */
	char gate_dir[80], path[NOMAD_EXEC_PATH_MAX];
	snprintf(gate_dir, sizeof gate_dir, CMD_EXEC_TMP_PREFIX "%s", "0e5fb0f4-8a1d-11f0-8d3c-0242ac120002");
	x.privileged = 0;
	char *gate = cmd_exec_main(&x, gate_dir, 1, 1);
	const char *argv[] = {"/bin/bash", "-c", gate, NULL};
	struct nomad_exec_opts o = {.alloc_id = "5d0e2b2a-7c4f-4e2a-9a52-3f6c1b0e9d11", .argv = argv, .tty = 1};
	int plen = nomad_exec_request_path(path, sizeof path, "poseidon", &o, NULL);
	printf("the script line: %zu bytes, its exec request %d of %d\n", strlen(gate), plen, NOMAD_EXEC_PATH_MAX);
	fflush(stdout);
	assert_true(plen > 0);
	free(gate);
	x.privileged = 1;
	assert_int_equal(run(m, NULL, out, sizeof out, err, sizeof err), 0);
	assert_string_equal(out, "102400 world a; echo PWNED\n");
	assert_int_equal(access(d, F_OK), -1);
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
	    cmocka_unit_test(test_anything_planted_at_the_directory_fails_closed),
	    cmocka_unit_test(test_quit_while_waiting_removes_everything),
	    cmocka_unit_test(test_sweep_ends_waiting_sides_and_removes_the_directory),
	    cmocka_unit_test(test_long_command_goes_through_a_script),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
