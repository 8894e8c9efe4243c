/* nomad_events_follow's stall detection against a fake Nomad event stream on loopback (a
 * thread of this test): a stream whose only traffic is a heartbeat now and then must not be
 * taken for a stalled one, and a stream that goes silent must be, soon after the stall time.
 *
 * Nomad writes {} and a newline every 30 s on a quiet stream; a stall detector that asked curl
 * for "at least 1 byte/s over 45 s" saw those 3 bytes as 0 B/s (curl averages over a window of
 * a few seconds and rounds down) and reconnected every ~48 s, each time with a full reconcile.
 * Scaled down here: a heartbeat every 6 s (so no averaging window of curl holds two), a stall
 * time of 9 s, followed for 15 s; the silent stream runs alongside with a stall time of 2 s. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "nomad_events.h"

#define HEARTBEAT_MS       6000
#define HEARTBEAT_STALL_MS 9000  /* more than one heartbeat interval: a healthy stream never stalls */
#define FOLLOW_MS          15000 /* long enough for the old detector to give up on the stream */
#define SILENT_STALL_MS    2000

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One connection: 200 with a chunked body, a heartbeat at once, then one every heartbeat_ms
 * (0: never again; the connection stays open, silent) until told to stop. */
struct fake {
	int lfd, port;
	int heartbeat_ms;
	volatile int stop;
	int heartbeats_sent;
	pthread_t th;
};

static int send_str(int fd, const char *s)
{
	return send(fd, s, strlen(s), MSG_NOSIGNAL) == (ssize_t)strlen(s) ? 0 : -1;
}

static void *fake_run(void *arg)
{
	struct fake *f = arg;
	int fd = accept(f->lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	char req[8192];
	size_t len = 0;
	while (len < sizeof req - 1) { /* the request's headers */
		ssize_t n = recv(fd, req + len, sizeof req - 1 - len, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
		req[len] = '\0';
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	send_str(fd,
	         "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
	long long next = now_ms();
	while (!f->stop) {
		if (next && now_ms() >= next) {
			if (send_str(fd, "3\r\n{}\n\r\n") < 0)
				break;
			f->heartbeats_sent++;
			next = f->heartbeat_ms ? next + f->heartbeat_ms : 0;
		}
		struct pollfd p = {.fd = fd, .events = POLLIN};
		char b[256];
		if (poll(&p, 1, 20) > 0 && recv(fd, b, sizeof b, 0) <= 0)
			break; /* the client went away */
	}
	close(fd);
	return NULL;
}

static void fake_start(struct fake *f, int heartbeat_ms)
{
	memset(f, 0, sizeof *f);
	f->heartbeat_ms = heartbeat_ms;
	f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(f->lfd, 4), 0);
	assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&a, &al), 0);
	f->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&f->th, NULL, fake_run, f), 0);
}

static void fake_stop(struct fake *f)
{
	f->stop = 1;
	shutdown(f->lfd, SHUT_RDWR); /* an accept() still waiting returns */
	pthread_join(f->th, NULL);
	close(f->lfd);
}

/* A follower in a thread of its own. */
struct follower {
	struct fake *f;
	int stall_ms, follow_ms;
	long long started;
	int rc;
	struct perr err;
	long long ended_after_ms;
	pthread_t th;
};

static int follower_should_stop(void *ud)
{
	struct follower *w = ud;
	return now_ms() - w->started >= w->follow_ms;
}

static int on_event(void *ud, const struct nomad_event *ev)
{
	(void)ud, (void)ev;
	return 0;
}

static void *follower_run(void *arg)
{
	struct follower *w = arg;
	struct nomad_endpoint ep;
	memset(&ep, 0, sizeof ep);
	snprintf(ep.host, sizeof ep.host, "127.0.0.1");
	ep.port = w->f->port;
	snprintf(ep.namespace, sizeof ep.namespace, "default");
	static const char *const topics[] = {"Job:*", "Allocation:*", "Evaluation:*", NULL};
	struct nomad_stream_opts o = {
	    .topics = topics, .stall_ms = w->stall_ms, .should_stop = follower_should_stop};
	long long last = 0;
	w->started = now_ms();
	w->rc = nomad_events_follow(&ep, &o, on_event, w, &last, &w->err);
	w->ended_after_ms = now_ms() - w->started;
	return NULL;
}

static void test_heartbeats_are_life_and_silence_is_a_stall(void **state)
{
	(void)state;
	struct fake beating, silent;
	fake_start(&beating, HEARTBEAT_MS);
	fake_start(&silent, 0);
	struct follower b = {.f = &beating, .stall_ms = HEARTBEAT_STALL_MS, .follow_ms = FOLLOW_MS};
	struct follower s = {.f = &silent, .stall_ms = SILENT_STALL_MS, .follow_ms = FOLLOW_MS};
	assert_int_equal(pthread_create(&b.th, NULL, follower_run, &b), 0);
	assert_int_equal(pthread_create(&s.th, NULL, follower_run, &s), 0);
	pthread_join(s.th, NULL);
	pthread_join(b.th, NULL);
	fake_stop(&beating);
	fake_stop(&silent);
	printf("silent stream: ended after %lld ms (stall time %d ms): %s\n", s.ended_after_ms,
	       SILENT_STALL_MS, s.rc < 0 ? s.err.msg : "not ended by a stall");
	printf("stream with a heartbeat every %d ms: %s after %lld ms, %d heartbeats (stall time %d ms)\n",
	       HEARTBEAT_MS, b.rc == 0 ? "followed until told to stop" : b.err.msg, b.ended_after_ms,
	       beating.heartbeats_sent, HEARTBEAT_STALL_MS);
	if (b.rc != 0)
		fail_msg("a stream with a heartbeat every %d ms ended after %lld ms: %s", HEARTBEAT_MS,
		         b.ended_after_ms, b.err.msg);
	assert_true(b.ended_after_ms >= FOLLOW_MS);
	assert_true(beating.heartbeats_sent >= FOLLOW_MS / HEARTBEAT_MS);
	assert_int_equal(s.rc, -1);
	assert_non_null(strstr(s.err.msg, "stalled"));
	/* measured from the last byte (the first heartbeat, at once), within a second or so */
	assert_true(s.ended_after_ms >= SILENT_STALL_MS);
	assert_true(s.ended_after_ms < SILENT_STALL_MS + 1500);
}

/* The default stall time is above two heartbeats of Nomad's: one heartbeat lost or late is no
 * stall. */
static void test_default_stall_time_covers_two_heartbeats(void **state)
{
	(void)state;
	assert_true(NOMAD_EVENTS_STALL_MS > 2 * NOMAD_EVENTS_HEARTBEAT_MS);
	assert_int_equal(NOMAD_EVENTS_HEARTBEAT_MS, 30000);
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_heartbeats_are_life_and_silence_is_a_stall),
	    cmocka_unit_test(test_default_stall_time_covers_two_heartbeats),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
