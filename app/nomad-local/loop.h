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

/* Frees p with fn(p) after the current dispatch batch. */
void loop_defer_free(void (*fn)(void *), void *p);

/* Calls cb(pid, status, arg) once the child pid has been reaped. */
int loop_child_watch(pid_t pid, loop_child_cb cb, void *arg);
/* Forgets the callback of pid (the child will still be reaped). */
void loop_child_forget(pid_t pid);

#endif
