/* nomad_exec: the alloc exec WebSocket client (see nomad_exec.h for the contract).
 *
 * One struct nomad_exec per session, owned by the module from nomad_exec_start until the lws
 * connection is destroyed: LWS_CALLBACK_WSI_DESTROY is the single place that reports the outcome
 * (on_error if neither an exit frame arrived nor the caller cancelled), calls on_closed and frees
 * the session, so "on_closed exactly once, last" holds on every path lws can take (refused,
 * non-101, close frame, drop, cancel, context destroyed). Events lws raises while
 * lws_client_connect_via_info is still running are ignored: a failure there is returned by
 * nomad_exec_start instead, with no callback.
 *
 * Sessions live on a client-only vhost of the context, found by name, so that neither the
 * caller's protocol list nor its extensions (permessage-deflate) apply. Outgoing frames are
 * written one per WRITEABLE callback (lws's rule), in priority order: tty_size, stdin data,
 * stdin close, heartbeat. Incoming messages are reassembled (up to NOMAD_EXEC_FRAME_MAX) before
 * they are parsed. After the exit frame we drop the connection at once, without a close frame,
 * as Nomad itself does, rather than wait for Nomad's FIN.
 * The synchronous mode is the same machinery driven by a private context per process.
 */
#include "nomad_exec.h"

#include <json-c/json.h>
#include <libwebsockets.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define VHOST_PLAIN        "nomad-exec"
#define VHOST_TLS_PREFIX   "nomad-exec-tls-"
#define VHOST_TLS_MAX      8 /* distinct TLS settings remembered per process */
#define VHOST_NAME_MAX     40
#define RX_INITIAL         4096 /* first reassembly buffer */
#define HOST_HDR_MAX       (CONFIG_STR + 8)
#define CLOSE_REASON_MAX   512
#define SYNC_FD_LIMIT      32 /* the synchronous context needs a socket and lws's pipe */
#define SYNC_HANDSHAKE_S   10 /* lws's own connect/handshake timeout in sync mode */
#define DEFAULT_NOMAD_PORT 4646

struct nomad_exec {
	struct lws_context *ctx;
	struct lws *wsi;
	struct nomad_exec_callbacks cb;
	void *ud;
	/* stdin pulled from a source (sync mode) instead of queued by write_stdin */
	ssize_t (*pull)(void *ud, void *buf, size_t cap);
	void *pull_ud;

	unsigned starting : 1;     /* inside lws_client_connect_via_info */
	unsigned start_failed : 1; /* lws destroyed the wsi while starting */
	unsigned established : 1;
	unsigned exited : 1;
	unsigned cancelled : 1;
	unsigned tty_pending : 1;
	unsigned hb_due : 1;
	unsigned stdin_close_req : 1;
	unsigned stdin_close_sent : 1;
	unsigned want_ready : 1;
	unsigned failed : 1; /* err/failure hold the first failure */
	unsigned paused : 1; /* nomad_exec_pause_output */

	int tty_height, tty_width;
	int heartbeat_ms;
	int http_status;

	/* stdin ring (event mode), allocated on first write */
	unsigned char *q;
	size_t q_head, q_len;

	/* reassembly of one server message, and its decode buffer */
	char *rx;
	size_t rx_len, rx_cap;
	char *dec;
	size_t dec_cap;

	enum nomad_exec_failure failure;
	struct perr err;

	char address[CONFIG_STR];
	char host[HOST_HDR_MAX];
	char token[CONFIG_STR];
	char path[NOMAD_EXEC_PATH_MAX];
	unsigned char tx[LWS_PRE + NOMAD_EXEC_STDIN_FRAME_MAX];
};

/* ---- pure helpers ---------------------------------------------------------------------------- */

static int query_safe(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c && strchr("-._~!$'()*,/:@", c) != NULL;
}

size_t nomad_exec_query_escape(char *out, size_t cap, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char enc[3];
		size_t k = 1;
		if (query_safe(*p)) {
			enc[0] = (char)*p;
		} else if (*p == ' ') {
			enc[0] = '+';
		} else {
			enc[0] = '%';
			enc[1] = hex[*p >> 4];
			enc[2] = hex[*p & 15];
			k = 3;
		}
		if (cap && n + k < cap)
			memcpy(out + n, enc, k);
		n += k;
	}
	if (cap)
		out[n < cap ? n : cap - 1] = '\0';
	return n;
}

static int valid_alloc_id(const char *id)
{
	size_t n = 0;
	if (!id)
		return 0;
	for (; id[n]; n++) {
		char c = id[n];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
			return 0;
	}
	return n > 0 && n < NOMAD_EXEC_ALLOC_ID_MAX;
}

/* Appends "<key>=<escaped value>" (with a leading '&' unless first) at out+*n. */
static void query_param(char *out, size_t cap, size_t *n, const char *key, const char *value)
{
	if (*n < cap)
		*n += (size_t)snprintf(out + *n, cap - *n, "%s%s=", key[0] == 'c' ? "" : "&", key);
	else
		*n += strlen(key) + 2;
	*n += nomad_exec_query_escape(*n < cap ? out + *n : NULL, *n < cap ? cap - *n : 0, value);
}

int nomad_exec_request_path(char *out, size_t cap, const char *ns, const struct nomad_exec_opts *o,
                            struct perr *e)
{
	if (!o || !valid_alloc_id(o->alloc_id))
		return perr_set(e, PERR_BAD_REQUEST, "exec: invalid allocation id \"%s\"",
		                o && o->alloc_id ? o->alloc_id : "");
	if (!o->argv || !o->argv[0])
		return perr_set(e, PERR_BAD_REQUEST, "exec: empty command");
	json_object *arr = json_object_new_array();
	if (!arr)
		return perr_set(e, PERR_UNKNOWN, "exec: out of memory");
	for (const char *const *a = o->argv; *a; a++) {
		json_object *s = json_object_new_string(*a);
		if (!s || json_object_array_add(arr, s) < 0) {
			json_object_put(s);
			json_object_put(arr);
			return perr_set(e, PERR_UNKNOWN, "exec: out of memory");
		}
	}
	const char *cmd =
	    json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	size_t n = (size_t)snprintf(out, cap, "/v1/client/allocation/%s/exec?", o->alloc_id);
	query_param(out, cap, &n, "command", cmd ? cmd : "[]");
	query_param(out, cap, &n, "namespace", ns && *ns ? ns : "default");
	query_param(out, cap, &n, "task", o->task && *o->task ? o->task : NOMAD_EXEC_DEFAULT_TASK);
	query_param(out, cap, &n, "tty", o->tty ? "true" : "false");
	json_object_put(arr);
	if (n >= cap) {
		if (cap)
			out[0] = '\0';
		return perr_set(e, PERR_BAD_REQUEST,
		                "exec: the command needs a request path of %zu bytes, more than the %zu an exec "
		                "request can carry (libwebsockets writes the request line into %d bytes; "
		                "NOMAD_EXEC_PATH_MAX)",
		                n, cap ? cap - 1 : 0, NOMAD_EXEC_PATH_MAX + 16);
	}
	return (int)n;
}

int nomad_exec_frame_stdin(char *out, size_t cap, const void *data, size_t len)
{
	static const char head[] = "{\"stdin\":{\"data\":\"", tail[] = "\"}}";
	size_t b64 = 4 * ((len + 2) / 3);
	if (len > NOMAD_EXEC_STDIN_CHUNK || cap < sizeof head - 1 + b64 + sizeof tail)
		return -1;
	memcpy(out, head, sizeof head - 1);
	size_t n = sizeof head - 1;
	if (len) {
		int k = lws_b64_encode_string((const char *)data, (int)len, out + n, (int)(cap - n));
		if (k < 0 || (size_t)k != b64)
			return -1;
		n += (size_t)k;
	}
	memcpy(out + n, tail, sizeof tail); /* with its NUL */
	return (int)(n + sizeof tail - 1);
}

static int frame_literal(char *out, size_t cap, const char *s)
{
	size_t n = strlen(s);
	if (cap <= n)
		return -1;
	memcpy(out, s, n + 1);
	return (int)n;
}

int nomad_exec_frame_stdin_close(char *out, size_t cap)
{
	return frame_literal(out, cap, "{\"stdin\":{\"close\":true}}");
}

int nomad_exec_frame_heartbeat(char *out, size_t cap)
{
	return frame_literal(out, cap, "{}");
}

int nomad_exec_frame_tty_size(char *out, size_t cap, int height, int width)
{
	/* Nomad's struct tags omit zero values */
	char h[32] = "", w[32] = "";
	if (height > 0)
		snprintf(h, sizeof h, "\"height\":%d", height);
	if (width > 0)
		snprintf(w, sizeof w, "\"width\":%d", width);
	int n = snprintf(out, cap, "{\"tty_size\":{%s%s%s}}", h, h[0] && w[0] ? "," : "", w);
	return n < 0 || (size_t)n >= cap ? -1 : n;
}

size_t nomad_exec_decode_cap(size_t frame_len)
{
	/* base64 never decodes to more than 3/4 of its length; lws's decoder wants 4 spare bytes
	 * plus a NUL */
	return frame_len / 4 * 3 + 8;
}

/* Standard base64 with padding, nothing else (lws's decoder skips what it does not know). */
static int b64_valid(const char *s, size_t n)
{
	if (n % 4)
		return 0;
	size_t pad = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '=') {
			pad++;
			if (i < n - 2)
				return 0;
		} else if (pad || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		                    (c >= '0' && c <= '9') || c == '+' || c == '/')) {
			return 0;
		}
	}
	return pad <= 2;
}

/* Decodes stream.data (if present) into buf at *used and points *p, *len at it. */
static int decode_stream(json_object *stream, const char *name, const char **p, size_t *len, char *buf,
                         size_t cap, size_t *used, struct perr *e)
{
	json_object *d;
	if (!json_object_is_type(stream, json_type_object) || !json_object_object_get_ex(stream, "data", &d))
		return 0; /* {"close":true} or something we do not know: nothing to deliver */
	if (!json_object_is_type(d, json_type_string))
		return perr_set(e, PERR_NOMAD_INTERNAL, "exec: %s data is not a string", name);
	const char *s = json_object_get_string(d);
	size_t n = (size_t)json_object_get_string_len(d);
	if (!b64_valid(s, n))
		return perr_set(e, PERR_NOMAD_INTERNAL, "exec: %s data is not valid base64", name);
	size_t need = nomad_exec_decode_cap(n);
	if (cap - *used < need)
		return perr_set(e, PERR_NOMAD_INTERNAL, "exec: %s data of %zu bytes does not fit", name, n);
	int k = n ? lws_b64_decode_string_len(s, (int)n, buf + *used, (int)need) : 0;
	if (k < 0)
		return perr_set(e, PERR_NOMAD_INTERNAL, "exec: %s data is not valid base64", name);
	*p = buf + *used;
	*len = (size_t)k;
	*used += (size_t)k;
	return 0;
}

int nomad_exec_parse_frame(const char *json, size_t len, struct nomad_exec_frame *f, char *buf, size_t cap,
                           struct perr *e)
{
	memset(f, 0, sizeof *f);
	json_tokener *tok = json_tokener_new();
	if (!tok)
		return perr_set(e, PERR_UNKNOWN, "exec: out of memory");
	json_object *o = len ? json_tokener_parse_ex(tok, json, (int)len) : NULL;
	int complete = o && json_tokener_get_error(tok) == json_tokener_success &&
	               json_tokener_get_parse_end(tok) == len;
	json_tokener_free(tok);
	if (!complete || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return perr_set(e, PERR_NOMAD_INTERNAL,
		                "exec: Nomad sent a frame that is not a JSON object: %.*s",
		                (int)(len > 80 ? 80 : len), json);
	}
	size_t used = 0;
	json_object *v;
	int rc = 0;
	if (json_object_object_get_ex(o, "stdout", &v))
		rc = decode_stream(v, "stdout", &f->out, &f->out_len, buf, cap, &used, e);
	if (!rc && json_object_object_get_ex(o, "stderr", &v))
		rc = decode_stream(v, "stderr", &f->err, &f->err_len, buf, cap, &used, e);
	if (!rc && json_object_object_get_ex(o, "exited", &v) && json_object_get_boolean(v)) {
		json_object *res, *code;
		f->exited = 1;
		if (json_object_object_get_ex(o, "result", &res) &&
		    json_object_is_type(res, json_type_object) &&
		    json_object_object_get_ex(res, "exit_code", &code))
			f->exit_code = json_object_get_int(code);
	}
	json_object_put(o);
	return rc;
}

void nomad_exec_http_error(struct perr *e, int status)
{
	if (status == 429 || status >= 500)
		perr_set(e, PERR_NOMAD_OVERLOAD,
		         "exec: Nomad answered HTTP %d instead of switching protocols", status);
	else
		perr_set(e, PERR_NOMAD_INTERNAL,
		         "exec: Nomad answered HTTP %d instead of switching protocols", status);
}

void nomad_exec_close_error(struct perr *e, const unsigned char *payload, size_t len)
{
	if (len < 2) {
		perr_set(e, PERR_NOMAD_INTERNAL, "exec: Nomad closed the session before the exit code");
		return;
	}
	int code = payload[0] << 8 | payload[1];
	size_t n = len - 2 > CLOSE_REASON_MAX ? CLOSE_REASON_MAX : len - 2;
	if (!n)
		perr_set(e, PERR_NOMAD_INTERNAL, "exec: Nomad closed the session (%d) before the exit code",
		         code);
	else
		perr_set(e, PERR_NOMAD_INTERNAL, "exec: Nomad closed the session (%d): %.*s", code, (int)n,
		         (const char *)payload + 2);
}

/* ---- vhosts ---------------------------------------------------------------------------------- */

static int exec_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len);

static const struct lws_protocols exec_protocols[] = {
    {.name = "nomad-exec", .callback = exec_callback},
    {0},
};

const struct lws_protocols *nomad_exec_protocol(void)
{
	return &exec_protocols[0];
}

/* vhost names must outlive every context (lws keeps the pointer) */
static char tls_vhost_names[VHOST_TLS_MAX][VHOST_NAME_MAX];

static int is_own_vhost(struct lws_vhost *vh)
{
	const char *name = vh ? lws_get_vhost_name(vh) : NULL;
	return name && strncmp(name, VHOST_PLAIN, sizeof VHOST_PLAIN - 1) == 0;
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return (h ^ 0xff) * 1099511628211ull; /* field separator */
}

static struct lws_vhost *exec_vhost(struct lws_context *ctx, const struct nomad_endpoint *ep, struct perr *e)
{
	const char *name = VHOST_PLAIN;
	const char *ca = ep->tls ? nomad_ca_file(ep) : NULL;
	if (ep->tls) {
		char want[VHOST_NAME_MAX];
		uint64_t h =
		    fnv1a(fnv1a(fnv1a(14695981039346656037ull, ca ? ca : ""), ep->certfile), ep->keyfile);
		snprintf(want, sizeof want, VHOST_TLS_PREFIX "%016llx", (unsigned long long)h);
		name = NULL;
		for (int i = 0; i < VHOST_TLS_MAX && !name; i++) {
			if (!tls_vhost_names[i][0])
				snprintf(tls_vhost_names[i], VHOST_NAME_MAX, "%s", want);
			if (!strcmp(tls_vhost_names[i], want))
				name = tls_vhost_names[i];
		}
		if (!name) {
			perr_set(e, PERR_UNKNOWN, "exec: more than %d different TLS settings", VHOST_TLS_MAX);
			return NULL;
		}
	}
	struct lws_vhost *vh = lws_get_vhost_by_name(ctx, name);
	if (vh)
		return vh;
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof info);
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.vhost_name = name;
	info.protocols = exec_protocols;
	if (ep->tls) {
		info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		/* without a CA file the system's store, as the REST client's curl: libwebsockets alone
		 * would look in its build-time LWS_OPENSSL_CLIENT_CERTS directory */
		info.client_ssl_ca_filepath = ca;
		info.client_ssl_cert_filepath = ep->certfile[0] ? ep->certfile : NULL;
		info.client_ssl_private_key_filepath = ep->keyfile[0] ? ep->keyfile : NULL;
	}
	vh = lws_create_vhost(ctx, &info);
	if (!vh)
		perr_set(e, ep->tls ? PERR_NOMAD_UNREACHABLE : PERR_UNKNOWN,
		         "exec: cannot set up the client vhost%s", ep->tls ? " (TLS files unusable?)" : "");
	return vh;
}

/* ---- sessions -------------------------------------------------------------------------------- */

static void fail(struct nomad_exec *x, enum nomad_exec_failure f, const struct perr *e)
{
	if (x->failed)
		return; /* the first cause is the one worth reporting */
	x->failed = 1;
	x->failure = f;
	x->err = *e;
}

static void fail_msg(struct nomad_exec *x, enum nomad_exec_failure f, enum perr_kind kind, const char *msg)
{
	struct perr e;
	perr_set(&e, kind, "%s", msg);
	fail(x, f, &e);
}

static void session_free(struct nomad_exec *x)
{
	free(x->q);
	free(x->rx);
	free(x->dec);
	free(x);
}

static int want_write(const struct nomad_exec *x)
{
	if (x->tty_pending || x->hb_due)
		return 1;
	if (x->pull)
		return !x->stdin_close_sent;
	return x->q_len || (x->stdin_close_req && !x->stdin_close_sent);
}

static void request_write(struct nomad_exec *x)
{
	if (x->wsi && x->established && want_write(x))
		lws_callback_on_writable(x->wsi);
}

/* One frame per WRITEABLE. Returns -1 to close the connection. */
static int on_writeable(struct nomad_exec *x)
{
	char *buf = (char *)x->tx + LWS_PRE;
	size_t cap = sizeof x->tx - LWS_PRE;
	int n = 0;
	int ready = 0;

	if (x->tty_pending) {
		x->tty_pending = 0;
		n = nomad_exec_frame_tty_size(buf, cap, x->tty_height, x->tty_width);
	} else if (x->pull && !x->stdin_close_sent) {
		char chunk[NOMAD_EXEC_STDIN_CHUNK];
		ssize_t r = x->pull(x->pull_ud, chunk, sizeof chunk);
		if (r < 0) {
			fail_msg(x, NOMAD_EXEC_FAIL_LOCAL, PERR_UNKNOWN, "exec: the stdin source failed");
			return -1;
		}
		if (r == 0) {
			x->stdin_close_sent = 1;
			n = nomad_exec_frame_stdin_close(buf, cap);
		} else {
			n = nomad_exec_frame_stdin(
			    buf, cap, chunk, (size_t)(r > (ssize_t)sizeof chunk ? sizeof chunk : (size_t)r));
		}
	} else if (x->q_len) {
		char chunk[NOMAD_EXEC_STDIN_CHUNK];
		size_t k = x->q_len < sizeof chunk ? x->q_len : sizeof chunk;
		size_t first = NOMAD_EXEC_STDIN_QUEUE_MAX - x->q_head;
		if (first > k)
			first = k;
		memcpy(chunk, x->q + x->q_head, first);
		memcpy(chunk + first, x->q, k - first);
		x->q_head = (x->q_head + k) % NOMAD_EXEC_STDIN_QUEUE_MAX;
		x->q_len -= k;
		n = nomad_exec_frame_stdin(buf, cap, chunk, k);
		ready = x->want_ready && x->q_len <= NOMAD_EXEC_STDIN_QUEUE_MAX / 2;
	} else if (x->stdin_close_req && !x->stdin_close_sent) {
		x->stdin_close_sent = 1;
		n = nomad_exec_frame_stdin_close(buf, cap);
	} else if (x->hb_due) {
		x->hb_due = 0;
		n = nomad_exec_frame_heartbeat(buf, cap);
	} else {
		return 0;
	}
	if (n < 0 || lws_write(x->wsi, (unsigned char *)buf, (size_t)n, LWS_WRITE_TEXT) < n) {
		fail_msg(x, NOMAD_EXEC_FAIL_DROPPED, PERR_NOMAD_UNREACHABLE,
		         "exec: writing to the Nomad connection failed before the exit code");
		return -1;
	}
	if (ready) {
		x->want_ready = 0;
		if (x->cb.on_stdin_ready && !x->cancelled)
			x->cb.on_stdin_ready(x->ud);
		if (x->cancelled)
			return -1;
	}
	request_write(x);
	return 0;
}

/* A whole message arrived. Returns -1 to close the connection. */
static int on_message(struct nomad_exec *x)
{
	struct nomad_exec_frame f;
	struct perr e;
	size_t need = nomad_exec_decode_cap(x->rx_len);
	if (need > x->dec_cap) {
		char *d = realloc(x->dec, need);
		if (!d) {
			fail_msg(x, NOMAD_EXEC_FAIL_LOCAL, PERR_UNKNOWN, "exec: out of memory");
			return -1;
		}
		x->dec = d;
		x->dec_cap = need;
	}
	if (nomad_exec_parse_frame(x->rx, x->rx_len, &f, x->dec, x->dec_cap, &e) < 0) {
		fail(x, NOMAD_EXEC_FAIL_PROTOCOL, &e);
		return -1;
	}
	if (f.out && f.out_len && x->cb.on_stdout && !x->cancelled)
		x->cb.on_stdout(x->ud, f.out, f.out_len);
	if (f.err && f.err_len && x->cb.on_stderr && !x->cancelled)
		x->cb.on_stderr(x->ud, f.err, f.err_len);
	if (x->cancelled)
		return -1;
	if (f.exited) {
		x->exited = 1;
		if (x->cb.on_exit)
			x->cb.on_exit(x->ud, f.exit_code);
		/* Nomad hangs up right after the exit frame without a close frame; so do we, at once,
		 * rather than send one and wait for an answer that never comes */
		return -1;
	}
	return 0;
}

static int on_receive(struct nomad_exec *x, struct lws *wsi, const char *in, size_t len)
{
	if (x->cancelled || x->exited)
		return -1;
	if (lws_is_first_fragment(wsi))
		x->rx_len = 0;
	if (x->rx_len + len + 1 > NOMAD_EXEC_FRAME_MAX) {
		fail_msg(x, NOMAD_EXEC_FAIL_PROTOCOL, PERR_NOMAD_INTERNAL,
		         "exec: Nomad sent a frame over 1 MiB");
		return -1;
	}
	if (x->rx_len + len + 1 > x->rx_cap) {
		size_t cap = x->rx_cap ? x->rx_cap : RX_INITIAL;
		while (cap < x->rx_len + len + 1)
			cap *= 2;
		char *r = realloc(x->rx, cap);
		if (!r) {
			fail_msg(x, NOMAD_EXEC_FAIL_LOCAL, PERR_UNKNOWN, "exec: out of memory");
			return -1;
		}
		x->rx = r;
		x->rx_cap = cap;
	}
	memcpy(x->rx + x->rx_len, in, len);
	x->rx_len += len;
	x->rx[x->rx_len] = '\0';
	if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
		return 0;
	int rc = on_message(x);
	x->rx_len = 0;
	return rc;
}

/* The wsi is going away: report and free. */
static void finish(struct nomad_exec *x)
{
	x->wsi = NULL;
	if (!x->exited && !x->cancelled) {
		if (!x->failed)
			fail_msg(x, NOMAD_EXEC_FAIL_DROPPED, PERR_NOMAD_UNREACHABLE,
			         "exec: the connection to Nomad ended before the exit code");
		if (x->cb.on_error)
			x->cb.on_error(x->ud, &x->err, x->failure);
	}
	if (x->cb.on_closed)
		x->cb.on_closed(x->ud);
	session_free(x);
}

static int exec_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	(void)user;
	struct nomad_exec *x;

	switch (reason) {
	case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
	case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
	case LWS_CALLBACK_CLIENT_RECEIVE:
	case LWS_CALLBACK_CLIENT_WRITEABLE:
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
	case LWS_CALLBACK_TIMER:
	case LWS_CALLBACK_CLIENT_CLOSED:
	case LWS_CALLBACK_WSI_DESTROY: break;
	default: return 0;
	}
	if (!is_own_vhost(lws_get_vhost(wsi)) || !(x = lws_get_opaque_user_data(wsi)))
		return 0;
	if (x->starting) {
		/* lws reports a failure inside lws_client_connect_via_info by returning NULL too */
		if (reason == LWS_CALLBACK_WSI_DESTROY)
			x->start_failed = 1;
		if (reason != LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER)
			return 0;
	}

	switch (reason) {
	case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
		unsigned char **p = in, *end = *p + len;
		if (x->token[0] && lws_add_http_header_by_name(wsi, (const unsigned char *)"X-Nomad-Token:",
		                                               (const unsigned char *)x->token,
		                                               (int)strlen(x->token), p, end))
			return -1;
		return 0;
	}
	case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
		x->http_status = (int)lws_http_client_http_response(wsi);
		return 0;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (x->http_status && x->http_status != 101) {
			struct perr e;
			nomad_exec_http_error(&e, x->http_status);
			fail(x, NOMAD_EXEC_FAIL_HTTP, &e);
		} else if (!x->cancelled) {
			struct perr e;
			perr_set(&e, PERR_NOMAD_UNREACHABLE,
			         "exec: cannot open the WebSocket to Nomad at %s: %.*s", x->host,
			         in ? (int)len : 7, in ? (const char *)in : "no reason");
			fail(x, NOMAD_EXEC_FAIL_CONNECT, &e);
		}
		return 0;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		if (x->cancelled)
			return -1;
		x->established = 1;
		if (x->paused)
			lws_rx_flow_control(wsi, 0);
		lws_set_timer_usecs(wsi, (lws_usec_t)x->heartbeat_ms * 1000);
		request_write(x);
		return 0;
	case LWS_CALLBACK_CLIENT_RECEIVE: return on_receive(x, wsi, in, len);
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (x->cancelled || x->exited)
			return -1;
		return on_writeable(x);
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (!x->exited) {
			struct perr e;
			nomad_exec_close_error(&e, in, len);
			fail(x, NOMAD_EXEC_FAIL_CLOSE_FRAME, &e);
		}
		return 0;
	case LWS_CALLBACK_TIMER:
		x->hb_due = 1;
		request_write(x);
		lws_set_timer_usecs(wsi, (lws_usec_t)x->heartbeat_ms * 1000);
		return 0;
	case LWS_CALLBACK_CLIENT_CLOSED: return 0; /* WSI_DESTROY follows and reports */
	case LWS_CALLBACK_WSI_DESTROY: finish(x); return 0;
	default: return 0;
	}
}

struct nomad_exec *nomad_exec_start(struct lws_context *ctx, const struct nomad_endpoint *ep,
                                    const struct nomad_exec_opts *o, const struct nomad_exec_callbacks *cb,
                                    void *ud, struct perr *e)
{
	if (!ctx || !ep || !o) {
		perr_set(e, PERR_BAD_REQUEST, "exec: missing context, endpoint or options");
		return NULL;
	}
	struct nomad_exec *x = calloc(1, sizeof *x);
	if (!x) {
		perr_set(e, PERR_UNKNOWN, "exec: out of memory");
		return NULL;
	}
	if (nomad_exec_request_path(x->path, sizeof x->path, ep->namespace, o, e) < 0) {
		free(x);
		return NULL;
	}
	struct lws_vhost *vh = exec_vhost(ctx, ep, e);
	if (!vh) {
		free(x);
		return NULL;
	}
	int port = ep->port > 0 ? ep->port : DEFAULT_NOMAD_PORT;
	x->ctx = ctx;
	x->ud = ud;
	if (cb)
		x->cb = *cb;
	snprintf(x->address, sizeof x->address, "%s", ep->host[0] ? ep->host : "127.0.0.1");
	snprintf(x->host, sizeof x->host, "%s:%d", x->address, port);
	snprintf(x->token, sizeof x->token, "%s", ep->token);
	x->tty_height = o->tty_height;
	x->tty_width = o->tty_width;
	x->tty_pending = o->tty_height > 0 || o->tty_width > 0;
	x->heartbeat_ms = o->heartbeat_ms > 0 ? o->heartbeat_ms : NOMAD_EXEC_HEARTBEAT_MS;

	struct lws_client_connect_info ci;
	memset(&ci, 0, sizeof ci);
	ci.context = ctx;
	ci.vhost = vh;
	ci.address = x->address;
	ci.port = port;
	ci.ssl_connection = ep->tls ? LCCSCF_USE_SSL : 0;
	ci.path = x->path;
	ci.host = x->host;
	ci.origin = NULL;   /* the Go client sends no Origin */
	ci.protocol = NULL; /* and no Sec-WebSocket-Protocol */
	ci.local_protocol_name = exec_protocols[0].name;
	ci.opaque_user_data = x;
	ci.pwsi = &x->wsi;

	x->starting = 1;
	struct lws *wsi = lws_client_connect_via_info(&ci);
	x->starting = 0;
	if (!wsi || x->start_failed) {
		perr_set(e, PERR_NOMAD_UNREACHABLE, "exec: cannot connect to Nomad at %s", x->host);
		session_free(x);
		return NULL;
	}
	x->wsi = wsi;
	return x;
}

ssize_t nomad_exec_write_stdin(struct nomad_exec *x, const void *data, size_t len)
{
	if (!x || x->pull || x->cancelled || x->exited || x->stdin_close_req || !x->wsi)
		return -1;
	if (!x->q) {
		x->q = malloc(NOMAD_EXEC_STDIN_QUEUE_MAX);
		if (!x->q)
			return -1;
	}
	size_t room = NOMAD_EXEC_STDIN_QUEUE_MAX - x->q_len;
	size_t k = len < room ? len : room;
	size_t tail = (x->q_head + x->q_len) % NOMAD_EXEC_STDIN_QUEUE_MAX;
	size_t first = NOMAD_EXEC_STDIN_QUEUE_MAX - tail;
	if (first > k)
		first = k;
	memcpy(x->q + tail, data, first);
	memcpy(x->q, (const char *)data + first, k - first);
	x->q_len += k;
	if (k < len)
		x->want_ready = 1;
	request_write(x);
	return (ssize_t)k;
}

void nomad_exec_close_stdin(struct nomad_exec *x)
{
	if (!x || x->pull || x->stdin_close_req)
		return;
	x->stdin_close_req = 1;
	request_write(x);
}

void nomad_exec_cancel(struct nomad_exec *x)
{
	if (!x || x->cancelled)
		return;
	x->cancelled = 1;
	if (x->wsi)
		lws_set_timeout(x->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

void nomad_exec_pause_output(struct nomad_exec *x, int pause)
{
	if (!x || x->paused == !!pause)
		return;
	x->paused = !!pause;
	if (x->wsi && x->established)
		lws_rx_flow_control(x->wsi, !pause);
}

/* ---- synchronous mode ------------------------------------------------------------------------ */

static struct lws_context *sync_ctx;
static pid_t sync_pid;

void nomad_exec_lws_log(int level, const char *line)
{
	char msg[256];
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	snprintf(msg, sizeof msg, "%.*s", (int)n, line);
	/* lws's own complaints duplicate the errors we report; keep them for debugging */
	log_debug("libwebsockets", "lws", msg, "lws_level", level == LLL_ERR ? "err" : "warn");
}

static struct lws_context *sync_context(struct perr *e)
{
	if (sync_ctx && sync_pid == getpid())
		return sync_ctx;
	/* a context inherited through fork shares its fds with the parent: leave it alone */
	sync_ctx = NULL;
	lws_set_log_level(LLL_ERR | LLL_WARN, nomad_exec_lws_log);
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof info);
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.fd_limit_per_thread = SYNC_FD_LIMIT;
	info.timeout_secs = SYNC_HANDSHAKE_S;
	info.count_threads = 1;
	sync_ctx = lws_create_context(&info);
	if (!sync_ctx) {
		perr_set(e, PERR_UNKNOWN, "exec: cannot create the libwebsockets context");
		return NULL;
	}
	sync_pid = getpid();
	return sync_ctx;
}

void nomad_exec_sync_shutdown(void)
{
	if (sync_ctx && sync_pid == getpid())
		lws_context_destroy(sync_ctx);
	sync_ctx = NULL;
}

struct sync_run {
	const struct nomad_exec_io *io;
	struct nomad_exec *x;
	lws_sorted_usec_list_t sul;
	int timeout_ms;
	int closed, exited, exit_code, failed, timed_out, sink_failed;
	enum nomad_exec_failure failure;
	struct perr err;
};

static void sync_stdout(void *ud, const char *data, size_t len)
{
	struct sync_run *r = ud;
	if (r->io && r->io->on_stdout && r->io->on_stdout(r->io->ud, data, len) < 0) {
		r->sink_failed = 1;
		nomad_exec_cancel(r->x);
	}
}

static void sync_stderr(void *ud, const char *data, size_t len)
{
	struct sync_run *r = ud;
	if (r->io && r->io->on_stderr && r->io->on_stderr(r->io->ud, data, len) < 0) {
		r->sink_failed = 1;
		nomad_exec_cancel(r->x);
	}
}

static void sync_exit(void *ud, int code)
{
	struct sync_run *r = ud;
	r->exited = 1;
	r->exit_code = code;
}

static void sync_error(void *ud, const struct perr *e, enum nomad_exec_failure f)
{
	struct sync_run *r = ud;
	r->failed = 1;
	r->failure = f;
	r->err = *e;
}

static void sync_closed(void *ud)
{
	struct sync_run *r = ud;
	r->closed = 1;
	/* An exit frame ends the session inside lws's handling of the socket, and lws_service
	 * returns right after. Other ends may come from a timer (our timeout, a cancel, lws's
	 * handshake timeout), after which lws_service would go on to poll() until some unrelated
	 * event: wake it so that it returns now. */
	if (!r->exited || r->timed_out || r->sink_failed)
		lws_cancel_service(r->x->ctx);
	r->x = NULL;
}

static void sync_timeout(lws_sorted_usec_list_t *sul)
{
	struct sync_run *r = lws_container_of(sul, struct sync_run, sul);
	r->timed_out = 1;
	nomad_exec_cancel(r->x);
}

int nomad_exec_run(const struct nomad_endpoint *ep, const struct nomad_exec_opts *o,
                   const struct nomad_exec_io *io, int timeout_ms, int *exit_code,
                   enum nomad_exec_failure *failure, struct perr *e)
{
	static const struct nomad_exec_callbacks cbs = {
	    .on_stdout = sync_stdout,
	    .on_stderr = sync_stderr,
	    .on_exit = sync_exit,
	    .on_error = sync_error,
	    .on_closed = sync_closed,
	};
	struct sync_run r;
	memset(&r, 0, sizeof r);
	r.io = io;
	r.timeout_ms = timeout_ms;
	if (exit_code)
		*exit_code = -1;
	if (failure)
		*failure = NOMAD_EXEC_FAIL_NONE;

	struct lws_context *ctx = sync_context(e);
	if (!ctx) {
		if (failure)
			*failure = NOMAD_EXEC_FAIL_LOCAL;
		return -1;
	}
	struct nomad_exec *x = nomad_exec_start(ctx, ep, o, &cbs, &r, e);
	if (!x) {
		if (failure)
			*failure = e && e->kind == PERR_NOMAD_UNREACHABLE ? NOMAD_EXEC_FAIL_CONNECT
			                                                  : NOMAD_EXEC_FAIL_LOCAL;
		return -1;
	}
	r.x = x;
	if (io && io->read_stdin) {
		x->pull = io->read_stdin;
		x->pull_ud = io->ud;
	}
	if (timeout_ms > 0)
		lws_sul_schedule(ctx, 0, &r.sul, sync_timeout, (lws_usec_t)timeout_ms * 1000);
	while (!r.closed)
		if (lws_service(ctx, 0) < 0) {
			/* the context is dying; its destruction closes the session */
			break;
		}
	if (timeout_ms > 0)
		lws_sul_cancel(&r.sul);
	if (!r.closed) {
		perr_set(e, PERR_UNKNOWN, "exec: the libwebsockets service loop failed");
		if (failure)
			*failure = NOMAD_EXEC_FAIL_LOCAL;
		return -1;
	}
	if (r.timed_out && !r.exited) {
		perr_set(e, PERR_NOMAD_INTERNAL, "exec: no exit code within %d ms", timeout_ms);
		if (failure)
			*failure = NOMAD_EXEC_FAIL_LOCAL;
		return -1;
	}
	if (r.sink_failed) {
		perr_set(e, PERR_UNKNOWN, "exec: an output sink failed");
		if (failure)
			*failure = NOMAD_EXEC_FAIL_LOCAL;
		return -1;
	}
	if (!r.exited) {
		if (e)
			*e = r.err;
		if (failure)
			*failure = r.failure;
		return -1;
	}
	if (exit_code)
		*exit_code = r.exit_code;
	return 0;
}
