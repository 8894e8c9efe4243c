/* lib/sdnotify against real AF_UNIX datagram sockets this test binds (a path and an abstract
 * name), standing in for systemd's notification socket: what arrives is what systemd would read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "sdnotify.h"

static char dir[] = "/tmp/poseidon-sdnotify-XXXXXX";
static char path[256];
static int path_fd = -1;

static int bind_dgram(const char *name, int abstract)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	socklen_t len;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (abstract) {
		sa.sun_path[0] = '\0';
		memcpy(sa.sun_path + 1, name, strlen(name));
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
	} else {
		snprintf(sa.sun_path, sizeof sa.sun_path, "%s", name);
		len = (socklen_t)sizeof sa;
	}
	if (bind(fd, (struct sockaddr *)&sa, len) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The next datagram on fd, or "" when none arrives within 200 ms. */
static const char *next_datagram(int fd)
{
	static char buf[4096];
	struct timeval tv = {0, 200000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

/* Nothing waiting on fd right now. */
static int nothing_queued(int fd)
{
	char b[16];
	return recv(fd, b, sizeof b, MSG_DONTWAIT) < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof path, "%s/notify", dir);
	path_fd = bind_dgram(path, 0);
	return path_fd < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	close(path_fd);
	unlink(path);
	rmdir(dir);
	return 0;
}

static void reset_env(void)
{
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

static void test_everything_is_a_noop_outside_systemd(void **state)
{
	(void)state;
	reset_env();
	assert_int_equal(sdnotify_ready("up"), 0);
	assert_int_equal(sdnotify_watchdog(), 0);
	assert_int_equal(sdnotify_watchdog_tick(), 0);
	assert_int_equal(sdnotify_stopping(NULL), 0);
	assert_int_equal(sdnotify_status("x"), 0);
	assert_int_equal(sdnotify_watchdog_usec(), 0);
	setenv("NOTIFY_SOCKET", "", 1);
	assert_int_equal(sdnotify_ready(NULL), 0);
	assert_true(nothing_queued(path_fd));
}

static void test_ready_status_stopping_reach_a_path_socket(void **state)
{
	(void)state;
	reset_env();
	setenv("NOTIFY_SOCKET", path, 1);
	assert_int_equal(sdnotify_ready(NULL), 1);
	assert_string_equal(next_datagram(path_fd), "READY=1");
	assert_int_equal(sdnotify_ready("leading"), 1);
	assert_string_equal(next_datagram(path_fd), "READY=1\nSTATUS=leading");
	assert_int_equal(sdnotify_status("two\nlines"), 1); /* one STATUS line, always */
	assert_string_equal(next_datagram(path_fd), "STATUS=two lines");
	assert_int_equal(sdnotify_watchdog(), 1);
	assert_string_equal(next_datagram(path_fd), "WATCHDOG=1");
	assert_int_equal(sdnotify_stopping("bye"), 1);
	assert_string_equal(next_datagram(path_fd), "STOPPING=1\nSTATUS=bye");
	assert_int_equal(sdnotify_send("RELOADING=1\nMONOTONIC_USEC=1"), 1);
	assert_string_equal(next_datagram(path_fd), "RELOADING=1\nMONOTONIC_USEC=1");
	assert_true(nothing_queued(path_fd));
}

static void test_abstract_socket_names_start_with_at(void **state)
{
	(void)state;
	char name[64], env[80];
	snprintf(name, sizeof name, "poseidon-sdnotify-test-%d", (int)getpid());
	int fd = bind_dgram(name, 1);
	assert_true(fd >= 0);
	reset_env();
	snprintf(env, sizeof env, "@%s", name);
	setenv("NOTIFY_SOCKET", env, 1);
	assert_int_equal(sdnotify_ready("abstract"), 1);
	assert_string_equal(next_datagram(fd), "READY=1\nSTATUS=abstract");
	/* the name is exactly its bytes: a longer name is another socket */
	snprintf(env, sizeof env, "@%sx", name);
	setenv("NOTIFY_SOCKET", env, 1);
	assert_int_equal(sdnotify_ready(NULL), -1);
	assert_true(nothing_queued(fd));
	close(fd);
}

static void test_unusable_sockets_fail_without_crashing(void **state)
{
	(void)state;
	char missing[300];
	reset_env();
	snprintf(missing, sizeof missing, "%s/nobody-listens", dir);
	setenv("NOTIFY_SOCKET", missing, 1);
	assert_int_equal(sdnotify_watchdog(), -1);
	setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);
	assert_int_equal(sdnotify_ready(NULL), -1);
	assert_int_equal(errno, EAFNOSUPPORT);
	setenv("NOTIFY_SOCKET", "@", 1);
	assert_int_equal(sdnotify_ready(NULL), -1);
	char longpath[200];
	memset(longpath, 'a', sizeof longpath - 1);
	longpath[0] = '/';
	longpath[sizeof longpath - 1] = '\0';
	setenv("NOTIFY_SOCKET", longpath, 1);
	assert_int_equal(sdnotify_ready(NULL), -1);
}

static void test_watchdog_interval_comes_from_the_environment(void **state)
{
	(void)state;
	char pid[24];
	reset_env();
	setenv("WATCHDOG_USEC", "5000000", 1);
	assert_int_equal(sdnotify_watchdog_usec(), 5000000);
	snprintf(pid, sizeof pid, "%d", (int)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	assert_int_equal(sdnotify_watchdog_usec(), 5000000);
	snprintf(pid, sizeof pid, "%d", (int)getpid() + 1);
	setenv("WATCHDOG_PID", pid, 1); /* meant for another process */
	assert_int_equal(sdnotify_watchdog_usec(), 0);
	unsetenv("WATCHDOG_PID");
	setenv("WATCHDOG_USEC", "0", 1);
	assert_int_equal(sdnotify_watchdog_usec(), 0);
	setenv("WATCHDOG_USEC", "-3", 1);
	assert_int_equal(sdnotify_watchdog_usec(), 0);
	setenv("WATCHDOG_USEC", "12s", 1);
	assert_int_equal(sdnotify_watchdog_usec(), 0);
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void test_watchdog_tick_pings_every_half_interval(void **state)
{
	(void)state;
	reset_env();
	setenv("NOTIFY_SOCKET", path, 1);
	assert_int_equal(sdnotify_watchdog_tick(), 0); /* no WatchdogSec: nothing */
	assert_true(nothing_queued(path_fd));
	setenv("WATCHDOG_USEC", "400000", 1); /* 400 ms: a ping at most every 200 ms */
	assert_int_equal(sdnotify_watchdog(), 1);
	assert_string_equal(next_datagram(path_fd), "WATCHDOG=1");
	assert_int_equal(sdnotify_watchdog_tick(), 0); /* just pinged */
	assert_true(nothing_queued(path_fd));
	sleep_ms(250);
	assert_int_equal(sdnotify_watchdog_tick(), 1);
	assert_string_equal(next_datagram(path_fd), "WATCHDOG=1");
	assert_int_equal(sdnotify_watchdog_tick(), 0);
	/* a loop ticking every 50 ms for 1 s pings about every 200 ms: 4 or 5 times, never each tick */
	int pings = 0;
	for (int i = 0; i < 20; i++) {
		sleep_ms(50);
		pings += sdnotify_watchdog_tick();
	}
	assert_in_range(pings, 3, 5);
	for (int i = 0; i < pings; i++)
		assert_string_equal(next_datagram(path_fd), "WATCHDOG=1");
	assert_true(nothing_queued(path_fd));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_everything_is_a_noop_outside_systemd),
	    cmocka_unit_test(test_ready_status_stopping_reach_a_path_socket),
	    cmocka_unit_test(test_abstract_socket_names_start_with_at),
	    cmocka_unit_test(test_unusable_sockets_fail_without_crashing),
	    cmocka_unit_test(test_watchdog_interval_comes_from_the_environment),
	    cmocka_unit_test(test_watchdog_tick_pings_every_half_interval),
	};
	return cmocka_run_group_tests_name("sdnotify", tests, setup, teardown);
}
