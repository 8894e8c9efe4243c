/* loop: see loop.h. One epoll instance, a binary min-heap of timers, a signalfd for the
 * signals the program handles (SIGCHLD reaps children, the others go to the program's
 * callback) and a list of memory to free after each dispatch batch. */
#include "loop.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "accept.h"
#include "log.h"

#define LOOP_MAX_EVENTS 64
#define LOOP_MAX_WAIT_MS 60000

struct deferred {
	void (*fn)(void *);
	void *p;
};

struct child {
	pid_t pid;
	loop_child_cb cb;
	void *arg;
};

static int epfd = -1;
static int running;
static int64_t now_cache;
static struct loop_timer **heap;
static int heap_len, heap_cap;
static struct deferred *defers;
static int ndefers, defers_cap;
static struct child *children;
static int nchildren, children_cap;
static struct loop_watch sigwatch;
static loop_signal_cb signal_cb;

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t loop_now_ms(void) { return running ? now_cache : mono_ms(); }

/* ---- timers: min-heap on due_ms ---- */

static void heap_swap(int a, int b)
{
	struct loop_timer *t = heap[a];
	heap[a] = heap[b];
	heap[b] = t;
	heap[a]->heap_idx = a;
	heap[b]->heap_idx = b;
}

static void heap_up(int i)
{
	while (i > 0) {
		int p = (i - 1) / 2;
		if (heap[p]->due_ms <= heap[i]->due_ms)
			break;
		heap_swap(i, p);
		i = p;
	}
}

static void heap_down(int i)
{
	for (;;) {
		int l = 2 * i + 1, r = l + 1, m = i;
		if (l < heap_len && heap[l]->due_ms < heap[m]->due_ms)
			m = l;
		if (r < heap_len && heap[r]->due_ms < heap[m]->due_ms)
			m = r;
		if (m == i)
			return;
		heap_swap(i, m);
		i = m;
	}
}

void loop_timer_init(struct loop_timer *t, void (*cb)(struct loop_timer *t), void *arg)
{
	t->due_ms = 0;
	t->heap_idx = -1;
	t->cb = cb;
	t->arg = arg;
}

void loop_timer_stop(struct loop_timer *t)
{
	int i = t->heap_idx;
	if (i < 0)
		return;
	t->heap_idx = -1;
	heap_len--;
	if (i != heap_len) {
		heap[i] = heap[heap_len];
		heap[i]->heap_idx = i;
		heap_up(i);
		heap_down(heap[i]->heap_idx);
	}
}

void loop_timer_start(struct loop_timer *t, int64_t after_ms)
{
	loop_timer_stop(t);
	if (heap_len == heap_cap) {
		int cap = heap_cap ? heap_cap * 2 : 64;
		struct loop_timer **n = realloc(heap, (size_t)cap * sizeof *n);
		if (!n) {
			log_error("timer heap full: out of memory");
			return;
		}
		heap = n;
		heap_cap = cap;
	}
	t->due_ms = loop_now_ms() + (after_ms < 0 ? 0 : after_ms);
	t->heap_idx = heap_len;
	heap[heap_len++] = t;
	heap_up(t->heap_idx);
}

static void run_timers(void)
{
	while (heap_len > 0 && heap[0]->due_ms <= now_cache) {
		struct loop_timer *t = heap[0];
		loop_timer_stop(t);
		t->cb(t);
	}
}

/* ---- deferred frees ---- */

void loop_defer_free(void (*fn)(void *), void *p)
{
	if (!p)
		return;
	if (ndefers == defers_cap) {
		int cap = defers_cap ? defers_cap * 2 : 64;
		struct deferred *n = realloc(defers, (size_t)cap * sizeof *n);
		if (!n) {
			/* cannot defer: leaking is safer than freeing early */
			log_error("deferred free list full: out of memory");
			return;
		}
		defers = n;
		defers_cap = cap;
	}
	defers[ndefers].fn = fn;
	defers[ndefers].p = p;
	ndefers++;
}

static void run_defers(void)
{
	/* a free function may defer more frees; loop until quiet */
	while (ndefers > 0) {
		int n = ndefers;
		struct deferred *batch = malloc((size_t)n * sizeof *batch);
		if (!batch)
			return;
		memcpy(batch, defers, (size_t)n * sizeof *batch);
		ndefers = 0;
		for (int i = 0; i < n; i++)
			batch[i].fn(batch[i].p);
		free(batch);
	}
}

/* ---- fd watches ---- */

int loop_watch(struct loop_watch *w, int fd, uint32_t events, loop_fd_cb cb, void *arg)
{
	struct epoll_event ev = {.events = events, .data.ptr = w};
	w->fd = fd;
	w->events = events;
	w->cb = cb;
	w->arg = arg;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int e = errno;
		w->fd = -1;
		errno = e;
		return -1;
	}
	return 0;
}

int loop_rewatch(struct loop_watch *w, uint32_t events)
{
	if (w->fd < 0 || w->events == events)
		return 0;
	struct epoll_event ev = {.events = events, .data.ptr = w};
	w->events = events;
	return epoll_ctl(epfd, EPOLL_CTL_MOD, w->fd, &ev);
}

void loop_unwatch(struct loop_watch *w)
{
	if (w->fd >= 0)
		epoll_ctl(epfd, EPOLL_CTL_DEL, w->fd, NULL);
	w->fd = -1;
}

/* ---- listening sockets ---- */

static struct loop_listener *paused_listeners;

static void listener_resume(struct loop_listener *l)
{
	if (!l->paused)
		return;
	l->paused = 0;
	for (struct loop_listener **pp = &paused_listeners; *pp; pp = &(*pp)->next_paused)
		if (*pp == l) {
			*pp = l->next_paused;
			break;
		}
	l->next_paused = NULL;
	loop_timer_stop(&l->retry);
	loop_rewatch(&l->w, EPOLLIN);
}

static void on_listener_retry(struct loop_timer *t) { listener_resume(t->arg); }

int loop_listen(struct loop_listener *l, int fd, const char *name, loop_fd_cb cb, void *arg)
{
	l->name = name;
	l->paused = l->starved = 0;
	l->next_paused = NULL;
	loop_timer_init(&l->retry, on_listener_retry, l);
	return loop_watch(&l->w, fd, EPOLLIN, cb, arg);
}

void loop_listener_starve(struct loop_listener *l, int err)
{
	if (!l->starved) {
		l->starved = 1;
		log_warn("cannot accept connections for now; waiting for a free descriptor", "listener", l->name,
			 "error", strerror(err));
	}
	if (!l->paused && l->w.fd >= 0) {
		/* a listening socket reports nothing but EPOLLIN, so events 0 silences it */
		loop_rewatch(&l->w, 0);
		l->paused = 1;
		l->next_paused = paused_listeners;
		paused_listeners = l;
	}
	if (l->paused)
		loop_timer_start(&l->retry, LOOP_ACCEPT_RETRY_MS);
}

int loop_accept(struct loop_listener *l, struct sockaddr *sa, socklen_t *len)
{
	if (l->paused || l->w.fd < 0) {
		errno = EAGAIN;
		return -1;
	}
	for (;;) {
		int fd = accept4(l->w.fd, sa, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0)
			return fd;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (l->starved) {
				l->starved = 0;
				log_info("accepting connections again", "listener", l->name);
			}
			errno = EAGAIN;
			return -1;
		}
		if (accept_error_is_transient(errno))
			continue;
		/* out of descriptors or memory, or anything else that would fail again at once */
		int e = errno;
		loop_listener_starve(l, e);
		errno = e;
		return -1;
	}
}

void loop_listen_close(struct loop_listener *l)
{
	listener_resume(l); /* off the paused list, its timer stopped */
	int fd = l->w.fd;
	loop_unwatch(&l->w);
	if (fd >= 0)
		close(fd);
}

void loop_fd_released(void)
{
	while (paused_listeners)
		listener_resume(paused_listeners);
}

/* ---- children and signals ---- */

int loop_child_watch(pid_t pid, loop_child_cb cb, void *arg)
{
	if (nchildren == children_cap) {
		int cap = children_cap ? children_cap * 2 : 64;
		struct child *n = realloc(children, (size_t)cap * sizeof *n);
		if (!n)
			return -1;
		children = n;
		children_cap = cap;
	}
	children[nchildren].pid = pid;
	children[nchildren].cb = cb;
	children[nchildren].arg = arg;
	nchildren++;
	return 0;
}

void loop_child_forget(pid_t pid)
{
	for (int i = 0; i < nchildren; i++)
		if (children[i].pid == pid) {
			children[i].cb = NULL;
			return;
		}
}

static void reap_children(void)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0)
			return;
		for (int i = 0; i < nchildren; i++) {
			if (children[i].pid != pid)
				continue;
			struct child c = children[i];
			children[i] = children[--nchildren];
			if (c.cb)
				c.cb(pid, status, c.arg);
			break;
		}
	}
}

/* Signals arrive through a self-pipe (async-signal-safe write of the signal number), which
 * also works under valgrind, unlike signalfd. */
static int sigpipe_w = -1;

static void on_signal_raw(int sig)
{
	unsigned char b = (unsigned char)sig;
	int e = errno;
	if (write(sigpipe_w, &b, 1) < 0) {
		/* pipe full: the pending bytes already wake the loop */
	}
	errno = e;
}

static void on_sigpipe(struct loop_watch *w, uint32_t events)
{
	(void)events;
	unsigned char b[64];
	int got_chld = 0;
	ssize_t n;
	while ((n = read(w->fd, b, sizeof b)) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			if (b[i] == SIGCHLD)
				got_chld = 1;
			else if (signal_cb)
				signal_cb(b[i]);
		}
	}
	if (got_chld)
		reap_children();
}

int loop_init(loop_signal_cb on_signal)
{
	int p[2];
	signal_cb = on_signal;
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0 || pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
		return -1;
	sigpipe_w = p[1];
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal_raw;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP};
	for (int i = 0; i < 4; i++)
		if (sigaction(sigs[i], &sa, NULL) < 0)
			return -1;
	return loop_watch(&sigwatch, p[0], EPOLLIN, on_sigpipe, NULL);
}

void loop_stop(void) { running = 0; }

int loop_run(void)
{
	struct epoll_event evs[LOOP_MAX_EVENTS];
	running = 1;
	now_cache = mono_ms();
	while (running) {
		int timeout = LOOP_MAX_WAIT_MS;
		if (heap_len > 0) {
			int64_t d = heap[0]->due_ms - mono_ms();
			timeout = d < 0 ? 0 : d > LOOP_MAX_WAIT_MS ? LOOP_MAX_WAIT_MS : (int)d;
		}
		int n = epoll_wait(epfd, evs, LOOP_MAX_EVENTS, timeout);
		if (n < 0 && errno != EINTR) {
			log_error("epoll_wait failed", "error", strerror(errno));
			return -1;
		}
		now_cache = mono_ms();
		for (int i = 0; i < n; i++) {
			struct loop_watch *w = evs[i].data.ptr;
			if (w->fd < 0)
				continue; /* closed earlier in this batch */
			w->cb(w, evs[i].events);
		}
		run_timers();
		run_defers();
	}
	return 0;
}

void loop_shutdown(void)
{
	run_defers();
	if (sigwatch.fd >= 0) {
		int fd = sigwatch.fd;
		loop_unwatch(&sigwatch);
		close(fd);
	}
	if (sigpipe_w >= 0)
		close(sigpipe_w);
	sigpipe_w = -1;
	if (epfd >= 0)
		close(epfd);
	epfd = -1;
	free(heap);
	heap = NULL;
	heap_len = heap_cap = 0;
	free(defers);
	defers = NULL;
	ndefers = defers_cap = 0;
	free(children);
	children = NULL;
	nchildren = children_cap = 0;
}
