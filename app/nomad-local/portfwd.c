/* portfwd: see portfwd.h. One listener per port; each accepted connection becomes a pair of
 * sockets relayed with two bounded buffers. The sandbox-side socket is created while the agent
 * is temporarily inside the sandbox's network namespace (the loop is single-threaded, so
 * nothing else runs meanwhile).
 *
 * The loop is level-triggered, so a side is registered for exactly what it can act on now:
 * EPOLLIN while its buffer has room and it has not reached EOF, EPOLLOUT while the other side
 * has data for it. A side that needs neither (it reached EOF and has nothing to receive, e.g. a
 * half-closed connection whose other end stays idle) is taken off the loop altogether, because
 * epoll reports EPOLLHUP whatever the mask: a condition nobody consumes would wake the loop at
 * once, forever. */
#include "portfwd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"

struct pf_conn;

struct pf_listener {
	struct loop_listener ll;
	char name[40];
	int to;
	int netns_fd; /* dup of the sandbox's net ns */
	struct pf_conn *conns;
	struct pf_listener *next;
};

struct pf_side {
	struct loop_watch w; /* registered only while this side needs an event (w.fd -1 otherwise) */
	int fd;
	char buf[PORTFWD_BUF];
	size_t len, off; /* data read from this side, waiting to go to the other */
	int eof;
};

struct pf_conn {
	struct pf_side s[2]; /* 0: host client, 1: sandbox */
	int connected;
	int closed;
	struct pf_listener *l;
	struct pf_conn *next;
};

struct pf_alloc {
	char alloc_id[40];
	struct pf_listener *ls;
	struct pf_alloc *next;
};

static struct pf_alloc *allocs;
static int own_netns = -1;

int portfwd_pick(void)
{
	for (int tries = 0; tries < 200; tries++) {
		int port = PORTFWD_MIN + rand() % (PORTFWD_MAX - PORTFWD_MIN);
		int used = 0;
		for (int i = 0; i < st.nallocs && !used; i++)
			for (int k = 0; k < st.allocs[i]->nports; k++)
				used |= st.allocs[i]->ports[k].value == port;
		if (used)
			continue;
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		int ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
		if (fd >= 0)
			close(fd);
		if (ok)
			return port;
	}
	return 0;
}

static void conn_free(void *p) { free(p); }

static void conn_close(struct pf_conn *c)
{
	if (c->closed)
		return;
	c->closed = 1;
	for (int i = 0; i < 2; i++) {
		loop_unwatch(&c->s[i].w);
		if (c->s[i].fd >= 0)
			close(c->s[i].fd);
		c->s[i].fd = -1;
	}
	loop_fd_released();
	struct pf_conn **pp;
	for (pp = &c->l->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	loop_defer_free(conn_free, c);
}

static void on_side(struct loop_watch *w, uint32_t events);

static void conn_update(struct pf_conn *c)
{
	for (int i = 0; i < 2 && !c->closed; i++) {
		struct pf_side *me = &c->s[i], *other = &c->s[1 - i];
		uint32_t ev = 0;
		if (me->len < PORTFWD_BUF && !me->eof && (i == 0 || c->connected))
			ev |= EPOLLIN; /* EOF shows as readable: no EPOLLRDHUP needed */
		if (other->len > other->off || (i == 1 && !c->connected))
			ev |= EPOLLOUT;
		if (!ev)
			loop_unwatch(&me->w);
		else if (me->w.fd >= 0)
			loop_rewatch(&me->w, ev);
		else if (loop_watch(&me->w, me->fd, ev, on_side, c) < 0)
			conn_close(c);
	}
}

static void on_side(struct loop_watch *w, uint32_t events)
{
	struct pf_conn *c = w->arg;
	int i = w == &c->s[0].w ? 0 : 1;
	struct pf_side *me = &c->s[i], *other = &c->s[1 - i];
	if (i == 1 && !c->connected && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		int err = 0;
		socklen_t el = sizeof err;
		getsockopt(me->fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err) {
			conn_close(c);
			return;
		}
		c->connected = 1;
	}
	if (events & EPOLLOUT) {
		while (other->len > other->off) {
			ssize_t n = send(me->fd, other->buf + other->off, other->len - other->off, MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EAGAIN)
					break;
				conn_close(c);
				return;
			}
			other->off += (size_t)n;
		}
		if (other->off == other->len) {
			other->off = other->len = 0;
			if (other->eof)
				shutdown(me->fd, SHUT_WR);
		}
	}
	if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) && me->len < PORTFWD_BUF && !me->eof) {
		ssize_t n = recv(me->fd, me->buf + me->len, PORTFWD_BUF - me->len, 0);
		if (n > 0) {
			me->len += (size_t)n;
		} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			me->eof = 1;
			if (me->len == 0 && other->fd >= 0)
				shutdown(other->fd, SHUT_WR);
		}
	}
	if (events & EPOLLERR) {
		conn_close(c);
		return;
	}
	if (c->s[0].eof && c->s[1].eof && c->s[0].len == 0 && c->s[1].len == 0) {
		conn_close(c);
		return;
	}
	conn_update(c);
}

static void on_accept(struct loop_watch *w, uint32_t events)
{
	struct pf_listener *l = w->arg;
	(void)events;
	for (;;) {
		/* out of descriptors, the listener pauses (loop.h) instead of failing at once, forever */
		int cfd = loop_accept(&l->ll, NULL, NULL);
		if (cfd < 0)
			return;
		if (setns(l->netns_fd, CLONE_NEWNET) < 0) {
			close(cfd);
			continue;
		}
		int sfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		int serr = errno;
		if (setns(own_netns, CLONE_NEWNET) < 0)
			log_error("portfwd: cannot return to the agent's network namespace", "error", strerror(errno));
		if (sfd < 0) {
			/* the one descriptor left went to the client: it is dropped, the rest wait queued */
			close(cfd);
			loop_listener_starve(&l->ll, serr);
			return;
		}
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)l->to),
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		if (connect(sfd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
			close(cfd);
			close(sfd);
			continue;
		}
		struct pf_conn *c = calloc(1, sizeof *c);
		if (!c) {
			close(cfd);
			close(sfd);
			loop_listener_starve(&l->ll, ENOMEM);
			return;
		}
		c->l = l;
		c->next = l->conns;
		l->conns = c;
		c->s[0].fd = cfd;
		c->s[1].fd = sfd;
		c->s[0].w.fd = c->s[1].w.fd = -1;
		conn_update(c); /* the client readable, the sandbox side until connected */
	}
}

void portfwd_start(struct nl_alloc *a, struct sandbox *sb)
{
	if (!a->has_network || a->nports == 0 || strcmp(a->net_mode, "host") == 0 || sb->ns_fd[4] < 0)
		return;
	portfwd_stop(a);
	if (own_netns < 0)
		own_netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	struct pf_alloc *pa = calloc(1, sizeof *pa);
	if (!pa)
		return;
	snprintf(pa->alloc_id, sizeof pa->alloc_id, "%s", a->id);
	for (int i = 0; i < a->nports; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)a->ports[i].value),
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, SOMAXCONN) < 0) {
			log_error("portfwd: cannot listen", "alloc_id", a->id, "port",
				  log_int((char[24]){0}, a->ports[i].value), "error", strerror(errno));
			if (fd >= 0)
				close(fd);
			continue;
		}
		struct pf_listener *l = calloc(1, sizeof *l);
		if (!l) {
			close(fd);
			continue;
		}
		l->to = a->ports[i].to;
		l->netns_fd = fcntl(sb->ns_fd[4], F_DUPFD_CLOEXEC, 3);
		snprintf(l->name, sizeof l->name, "portfwd 127.0.0.1:%d", a->ports[i].value);
		if (loop_listen(&l->ll, fd, l->name, on_accept, l) < 0) {
			log_error("portfwd: cannot watch", "alloc_id", a->id, "error", strerror(errno));
			close(fd);
			if (l->netns_fd >= 0)
				close(l->netns_fd);
			free(l);
			continue;
		}
		l->next = pa->ls;
		pa->ls = l;
	}
	pa->next = allocs;
	allocs = pa;
}

void portfwd_stop(struct nl_alloc *a)
{
	struct pf_alloc **pp;
	for (pp = &allocs; *pp; pp = &(*pp)->next) {
		struct pf_alloc *pa = *pp;
		if (strcmp(pa->alloc_id, a->id) != 0)
			continue;
		*pp = pa->next;
		for (struct pf_listener *l = pa->ls, *ln; l; l = ln) {
			ln = l->next;
			while (l->conns)
				conn_close(l->conns);
			loop_listen_close(&l->ll);
			if (l->netns_fd >= 0)
				close(l->netns_fd);
			loop_defer_free(conn_free, l);
		}
		free(pa);
		return;
	}
}
