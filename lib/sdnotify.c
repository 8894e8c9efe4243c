/* sdnotify: see sdnotify.h. One AF_UNIX datagram per call, on a socket opened for it: the
 * calls are rare (a watchdog ping every few seconds), and a socket that systemd replaced meanwhile
 * (daemon-reexec) is never used stale. Abstract socket names ("@name") become a leading NUL in
 * sun_path and count exactly their bytes in the address length, as systemd binds them. */
#include "sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SDNOTIFY_MSG_MAX 2048 /* one datagram: a few KEY=VALUE lines */

int sdnotify_send(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	socklen_t salen;
	if (!path || !*path || !state)
		return 0;
	size_t n = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || n < 2 || n >= sizeof sa.sun_path) {
		errno = EAFNOSUPPORT; /* vsock:... and other forms systemd may use; we speak AF_UNIX */
		return -1;
	}
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, n);
	if (path[0] == '@') {
		sa.sun_path[0] = '\0';
		salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	}
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	ssize_t w = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
	int saved = errno;
	close(fd);
	errno = saved;
	return w == (ssize_t)strlen(state) ? 1 : -1;
}

/* "KEY=1" plus an optional "\nSTATUS=..." with newlines in the status flattened. */
static int send_with_status(const char *first, const char *status)
{
	char msg[SDNOTIFY_MSG_MAX];
	int n = snprintf(msg, sizeof msg, "%s%s%s", first ? first : "", first && status ? "\n" : "",
	                 status ? "STATUS=" : "");
	if (n < 0 || (size_t)n >= sizeof msg)
		return -1;
	for (const char *p = status; p && *p && (size_t)n + 1 < sizeof msg; p++)
		msg[n++] = *p == '\n' ? ' ' : *p;
	msg[n] = '\0';
	return sdnotify_send(msg);
}

int sdnotify_ready(const char *status)
{
	return send_with_status("READY=1", status);
}
int sdnotify_stopping(const char *status)
{
	return send_with_status("STOPPING=1", status);
}
int sdnotify_status(const char *status)
{
	return status ? send_with_status(NULL, status) : 0;
}

static long long last_ping_us = -1; /* monotonic time of the last WATCHDOG=1 sent */

static long long mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int sdnotify_watchdog(void)
{
	int rc = sdnotify_send("WATCHDOG=1");
	if (rc == 1)
		last_ping_us = mono_us();
	return rc;
}

long long sdnotify_watchdog_usec(void)
{
	const char *us = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	char *end;
	if (!us || !*us)
		return 0;
	errno = 0;
	long long v = strtoll(us, &end, 10);
	if (errno || *end || v <= 0)
		return 0;
	if (pid && *pid) {
		long long p = strtoll(pid, &end, 10);
		if (*end || p != (long long)getpid())
			return 0; /* the watchdog is meant for another process of the unit */
	}
	return v;
}

int sdnotify_watchdog_tick(void)
{
	long long usec = sdnotify_watchdog_usec();
	if (usec == 0)
		return 0;
	if (last_ping_us >= 0 && mono_us() - last_ping_us < usec / 2)
		return 0;
	return sdnotify_watchdog();
}
