/* loop: the one event loop of nomad-local (epoll, timers, signals, child processes).
 *
 * nomad-local is single-threaded: every socket, pipe, pty, pidfd, cgroup eventfd and timer is
 * dispatched from loop_run(); signals come in through a self-pipe. Objects embed a struct loop_watch / loop_timer and register them;
 * a watch whose fd was closed during a batch is skipped (loop_unwatch sets fd = -1), and memory
 * handed to loop_defer_free() is released only after the current batch, so a callback may tear
 * down any object, including one that still has an event pending in the same batch.
 * Child processes: loop_child_watch() maps a pid to a callback run after waitpid() reaped it.
 */
#ifndef NL_LOOP_H
#define NL_LOOP_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

struct loop_watch;
typedef void (*loop_fd_cb)(struct loop_watch *w, uint32_t events);

struct loop_watch {
	int fd;
	uint32_t events;
	loop_fd_cb cb;
	void *arg;
};

struct loop_timer {
	int64_t due_ms;
	int heap_idx; /* -1 when not armed */
	void (*cb)(struct loop_timer *t);
	void *arg;
};

typedef void (*loop_child_cb)(pid_t pid, int status, void *arg);
typedef void (*loop_signal_cb)(int sig);

int loop_init(loop_signal_cb on_signal);
/* Runs until loop_stop(); returns 0. */
int loop_run(void);
void loop_stop(void);
void loop_shutdown(void);

/* Monotonic milliseconds (cached per batch by loop_run, fresh when called outside). */
int64_t loop_now_ms(void);

/* Registers fd for events (EPOLLIN/EPOLLOUT...). The watch must stay valid until loop_unwatch. */
int loop_watch(struct loop_watch *w, int fd, uint32_t events, loop_fd_cb cb, void *arg);
int loop_rewatch(struct loop_watch *w, uint32_t events);
/* Removes the watch (does not close the fd); sets w->fd = -1. Safe on an unregistered watch. */
void loop_unwatch(struct loop_watch *w);

void loop_timer_init(struct loop_timer *t, void (*cb)(struct loop_timer *t), void *arg);
void loop_timer_start(struct loop_timer *t, int64_t after_ms);
void loop_timer_stop(struct loop_timer *t);
static inline int loop_timer_armed(const struct loop_timer *t) { return t->heap_idx >= 0; }

/* Listening sockets. accept() fails at once while the process is out of descriptors (EMFILE,
 * ENFILE) or socket memory (ENOBUFS, ENOMEM) and leaves the connection queued, so a listener
 * that stays registered for EPOLLIN would wake the loop again at once, forever. loop_accept()
 * takes such a listener off the loop instead, until loop_fd_released() says a descriptor was
 * given back or LOOP_ACCEPT_RETRY_MS passed, and logs one warning per episode (an episode ends
 * when accept() finds the queue empty again). Queued connections wait in the kernel meanwhile. */
#define LOOP_ACCEPT_RETRY_MS 250

struct loop_listener {
	struct loop_watch w;
	struct loop_timer retry;
	const char *name; /* for the log, e.g. "http" */
	int paused;       /* off the loop, waiting for a descriptor */
	int starved;      /* an episode is under way (logged) */
	struct loop_listener *next_paused;
};

/* Watches the listening socket fd; cb runs when connections are queued and should call
 * loop_accept() until it returns -1. */
int loop_listen(struct loop_listener *l, int fd, const char *name, loop_fd_cb cb, void *arg);
/* accept4(SOCK_NONBLOCK | SOCK_CLOEXEC). Returns the new descriptor, or -1 when nothing more can
 * be taken now: the queue is empty (errno EAGAIN), or the listener was paused (see above). */
int loop_accept(struct loop_listener *l, struct sockaddr *sa, socklen_t *len);
/* A connection could not get a descriptor it needs besides its own (err is the errno): pause the
 * listener as if accept() had failed. */
void loop_listener_starve(struct loop_listener *l, int err);
/* Unwatches and closes the listening socket (a paused one included). */
void loop_listen_close(struct loop_listener *l);
/* A descriptor was closed: paused listeners try again. Cheap when none is paused. */
void loop_fd_released(void);

/* Frees p with fn(p) after the current dispatch batch. */
void loop_defer_free(void (*fn)(void *), void *p);

/* Calls cb(pid, status, arg) once the child pid has been reaped. */
int loop_child_watch(pid_t pid, loop_child_cb cb, void *arg);
/* Forgets the callback of pid (the child will still be reaped). */
void loop_child_forget(pid_t pid);

#endif
