/* listener: the gateway's listening socket, opened here rather than by libwebsockets.
 *
 * lws 4.1 sets SO_REUSEPORT only when it runs several service threads, but several gateway
 * processes on one port is how a restart loses no connection attempt: a new gateway starts
 * listening next to the old one, then the old one stops accepting and finishes its streams. So the
 * socket is ours (SO_REUSEADDR + SO_REUSEPORT), watched by lws as a raw descriptor on the server
 * vhost; every accepted connection is handed to lws with lws_adopt_socket_vhost, after which it
 * is an ordinary HTTP connection of the vhost's first protocol (protocol.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gate.h"
#include "log.h"

#define BACKLOG      1024
#define ACCEPT_BATCH 64 /* connections taken per wake-up before others get a turn */

static struct lws *listen_wsi;

int listener_open(const char *address, int port, struct perr *e)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, address && *address ? address : "0.0.0.0", &a.sin_addr) != 1)
		return perr_set(e, PERR_BAD_REQUEST, "wsgate.address \"%s\" is not an IPv4 address", address);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0)
		return perr_set(e, PERR_UNKNOWN, "socket: %s", strerror(errno));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, BACKLOG) < 0) {
		perr_set(e, PERR_UNKNOWN, "listening on %s:%d: %s", address, port, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int listener_attach(struct gate *g, int fd)
{
	lws_sock_file_fd_type d = {.filefd = fd};
	listen_wsi = lws_adopt_descriptor_vhost(lws_get_vhost_by_name(g->ctx, GATE_VHOST),
	                                        LWS_ADOPT_RAW_FILE_DESC, d, GATE_LISTEN_PROTOCOL, NULL);
	return listen_wsi ? 0 : -1;
}

void listener_close(void)
{
	if (listen_wsi)
		lws_set_timeout(listen_wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
	listen_wsi = NULL;
}

static void accept_some(struct lws *wsi)
{
	int lfd = (int)lws_get_socket_fd(wsi);
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn("accept failed", "error", strerror(errno));
			return;
		}
		if (!lws_adopt_socket_vhost(lws_get_vhost(wsi), fd))
			log_warn("libwebsockets did not take a connection (too many open?)");
		/* (lws closes the descriptor itself when adoption fails) */
	}
}

int listener_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	(void)user, (void)in, (void)len;
	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE: accept_some(wsi); return 0;
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		if (wsi == listen_wsi)
			listen_wsi = NULL;
		return 0;
	default: return 0;
	}
}
