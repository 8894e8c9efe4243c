/* listener: the gateway's listening socket, opened here rather than by libwebsockets.
 *
 * lws 4.1 sets SO_REUSEPORT only when it runs several service threads, but several gateway
 * processes on one port is how a restart loses no connection attempt: a new gateway starts
 * listening next to the old one, then the old one stops accepting and finishes its streams. So the
 * socket is ours (SO_REUSEADDR + SO_REUSEPORT), watched by lws as a raw descriptor on the server
 * vhost; every accepted connection is handed to lws with lws_adopt_socket_vhost, after which it
 * is an ordinary HTTP connection of the vhost's first protocol (protocol.c).
 *
 * Out of descriptors (EMFILE, ENFILE) or memory, accept() fails at once and leaves the
 * connection queued; lws polls the listener level-triggered, so it would be handed back at once,
 * forever. The listener is then flow-controlled off the poll set until a connection of the gateway
 * is destroyed (listener_descriptor_freed) or ACCEPT_RETRY_MS passed, with one warning per
 * episode (it ends when accept() finds the queue empty). Queued clients wait in the kernel.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gate.h"
#include "accept.h"
#include "log.h"

#define BACKLOG         1024
#define ACCEPT_BATCH    64 /* connections taken per wake-up before others get a turn */
#define ACCEPT_RETRY_MS 250

static struct lws *listen_wsi;
static lws_sorted_usec_list_t retry_sul;
static int paused;  /* off the poll set, waiting for a descriptor */
static int starved; /* an episode is under way (logged) */

static void resume(void)
{
	if (!paused)
		return;
	paused = 0;
	lws_sul_cancel(&retry_sul);
	if (listen_wsi)
		lws_rx_flow_control(listen_wsi, 1);
}

static void on_retry(lws_sorted_usec_list_t *sul)
{
	(void)sul;
	resume();
}

static void starve(struct lws *wsi, const char *why)
{
	if (!starved) {
		starved = 1;
		log_warn("cannot accept connections for now; waiting for a free descriptor", "error", why);
	}
	if (!paused) {
		paused = 1;
		lws_rx_flow_control(wsi, 0);
	}
	lws_sul_schedule(lws_get_context(wsi), 0, &retry_sul, on_retry,
	                 (lws_usec_t)ACCEPT_RETRY_MS * LWS_US_PER_MS);
}

void listener_descriptor_freed(void)
{
	resume();
}

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
	if (paused) {
		paused = 0;
		lws_sul_cancel(&retry_sul);
	}
	if (listen_wsi)
		lws_set_timeout(listen_wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
	listen_wsi = NULL;
}

static void accept_some(struct lws *wsi)
{
	int lfd = (int)lws_get_socket_fd(wsi);
	if (paused)
		return;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if (starved) {
					starved = 0;
					log_info("accepting connections again");
				}
				return;
			}
			if (accept_error_is_transient(errno))
				continue;
			/* out of descriptors or memory, or what else would fail at once again */
			starve(wsi, strerror(errno));
			return;
		}
		if (!lws_adopt_socket_vhost(lws_get_vhost(wsi), fd)) {
			/* lws closed the descriptor: its table is full (or memory is short) */
			starve(wsi, "libwebsockets did not take a connection (too many open?)");
			return;
		}
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
