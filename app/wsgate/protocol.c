/* protocol: the gateway's one lws protocol, for both the HTTP side of a request and the
 * WebSocket after the upgrade (no subprotocol is negotiated, so every upgrade lands here).
 * It only routes: handshake.c decides before the upgrade, session.c after it. The session of a
 * connection hangs on the wsi as its opaque user data from the upgrade check on; the Nomad exec
 * connections on the same context belong to lib/nomad_exec's own vhost and never come here. */
#include <string.h>

#include "gate.h"

static struct gate *gate_of(struct lws *wsi)
{
	return lws_context_user(lws_get_context(wsi));
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	(void)user;
	struct session *s;
	switch (reason) {
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		if (!in || strcmp(in, "websocket") != 0)
			return -1;
		return handshake_confirm_upgrade(gate_of(wsi), wsi);
	case LWS_CALLBACK_HTTP: return handshake_http(gate_of(wsi), wsi);
	case LWS_CALLBACK_HTTP_BODY:
	case LWS_CALLBACK_HTTP_BODY_COMPLETION: return 0; /* answered (405) before the body */
	case LWS_CALLBACK_ESTABLISHED:
		if ((s = session_of(wsi)))
			session_established(s);
		return s ? 0 : -1;
	case LWS_CALLBACK_RECEIVE:
		if ((s = session_of(wsi)))
			session_on_receive(s, in, len);
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE: return (s = session_of(wsi)) ? session_on_writeable(s) : -1;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		return (s = session_of(wsi)) ? session_on_peer_close(s) : 0;
	case LWS_CALLBACK_TIMER:
		if ((s = session_of(wsi)))
			session_on_ping_timer(s);
		return 0;
	case LWS_CALLBACK_CLOSED:
	case LWS_CALLBACK_WSI_DESTROY:
		if ((s = session_of(wsi)))
			session_on_client_gone(s);
		if (reason == LWS_CALLBACK_WSI_DESTROY)
			listener_descriptor_freed();
		return 0;
	default: return 0;
	}
}

const struct lws_protocols gate_protocols[] = {
    {.name = "poseidon-wsgate", .callback = callback},
    {.name = GATE_LISTEN_PROTOCOL, .callback = listener_callback},
    {0},
};
