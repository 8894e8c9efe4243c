/* exec: see exec.h. A session owns the process's stdin/stdout/stderr (or the pty master) and
 * is tied to the WebSocket until either side ends; the process is reaped through the loop's
 * child table even after the peer went away. */
#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "gojson.h"
#include "jobspec.h"
#include "log.h"
#include "loop.h"
#include "sandbox.h"
#include "state.h"
#include "task.h"
#include "confine.h"
#include "util.h"

#define EXEC_MAX_ARGS 1024

struct exec_sess {
	struct http_conn *c;
	char alloc_id[NL_ID_LEN];
	pid_t pid;
	int exited, status;
	int tty;
	struct loop_watch in_w, out_w, err_w;
	struct buf stdin_buf;
	int stdin_close;
	int out_eof, err_eof;
	int out_paused;
	int held_master; /* the pty master after the last slave closed, until the process is reaped */
	long long oom_base;
	unsigned oom_ends_base;
	struct loop_timer drain_timer;
	int finished;
	int oom_waited;
	int freeing;
};

static int nsess;

int exec_sessions(void) { return nsess; }

static void sess_free(void *p)
{
	struct exec_sess *s = p;
	buf_free(&s->stdin_buf);
	if (s->held_master >= 0)
		close(s->held_master);
	free(s);
	nsess--;
}

static void close_watch(struct loop_watch *w)
{
	int fd = w->fd;
	loop_unwatch(w);
	if (fd >= 0)
		close(fd);
}

static void sess_maybe_free(struct exec_sess *s)
{
	if (!s->freeing && !s->c && s->exited && s->in_w.fd < 0 && s->out_w.fd < 0 && s->err_w.fd < 0) {
		s->freeing = 1;
		loop_timer_stop(&s->drain_timer);
		loop_defer_free(sess_free, s);
	}
}

static void send_frame(struct exec_sess *s, const char *stream, const char *data, size_t len)
{
	char b64[EXEC_FRAME_MAX * 4 / 3 + 8];
	char frame[sizeof b64 + 64];
	while (s->c && len > 0) {
		size_t n = len > EXEC_FRAME_MAX ? EXEC_FRAME_MAX : len;
		b64_encode((const unsigned char *)data, n, b64);
		int fl = snprintf(frame, sizeof frame, "{\"%s\":{\"data\":\"%s\"}}", stream, b64);
		ws_send_text(s->c, frame, (size_t)fl);
		data += n;
		len -= n;
	}
}

static void finish(struct exec_sess *s)
{
	if (s->finished || !s->exited || !(s->out_eof && s->err_eof))
		return;
	s->finished = 1;
	loop_timer_stop(&s->drain_timer);
	int code = WIFEXITED(s->status) ? WEXITSTATUS(s->status) : 128 + WTERMSIG(s->status);
	struct nl_alloc *a = state_alloc(s->alloc_id);
	struct sandbox *sb = a ? task_sandbox(a) : NULL;
	if (WIFSIGNALED(s->status) && WTERMSIG(s->status) == SIGKILL && a) {
		/* Killed: by the kernel as the largest process after an OOM (an ordinary 137; the task
		 * goes on, as with Docker: Nomad's docker driver passes on ContainerExecInspect's exit
		 * code and raises no task event, drivers/docker/driver.go ExecTaskStreaming), or with a
		 * task whose main process was OOM-killed, which Nomad's exec reports as 128. The task's end may reach the loop a moment later: when
		 * an OOM kill happened or the task is gone, look again then. */
		if (task_oom_ends(a) > s->oom_ends_base)
			code = 128;
		else if (!s->oom_waited && (!sb || sandbox_oom_count(sb) > s->oom_base)) {
			s->oom_waited = 1;
			s->finished = 0;
			loop_timer_start(&s->drain_timer, EXEC_OOM_WAIT_MS);
			return;
		}
	}
	if (s->c) {
		static const char so[] = "{\"stdout\":{\"close\":true}}", se[] = "{\"stderr\":{\"close\":true}}";
		char ex[96];
		/* detach first: a failing write closes the connection under us */
		struct http_conn *c = s->c;
		http_on_close(c, NULL, NULL);
		s->c = NULL;
		ws_send_text(c, so, sizeof so - 1);
		ws_send_text(c, se, sizeof se - 1);
		int n = code ? snprintf(ex, sizeof ex, "{\"exited\":true,\"result\":{\"exit_code\":%d}}", code)
			     : snprintf(ex, sizeof ex, "{\"exited\":true,\"result\":{}}");
		ws_send_text(c, ex, (size_t)n);
		/* Nomad hangs up without a close frame after the exit frame */
		http_close_after_flush(c);
	}
	close_watch(&s->in_w);
	sess_maybe_free(s);
}

static void on_drain_timeout(struct loop_timer *t)
{
	struct exec_sess *s = t->arg;
	/* a background process still holds the output open: end the session anyway */
	if (!s->out_eof) {
		close_watch(&s->out_w);
		s->out_eof = 1;
	}
	if (!s->err_eof) {
		close_watch(&s->err_w);
		s->err_eof = 1;
	}
	finish(s);
}

static void update_out_watches(struct exec_sess *s)
{
	uint32_t ev = s->out_paused ? 0 : EPOLLIN;
	if (s->out_w.fd >= 0)
		loop_rewatch(&s->out_w, ev);
	if (s->err_w.fd >= 0)
		loop_rewatch(&s->err_w, ev);
}

static void on_output(struct loop_watch *w, uint32_t events)
{
	struct exec_sess *s = w->arg;
	int is_err = w == &s->err_w;
	static char tmp[EXEC_READ_MAX];
	(void)events;
	ssize_t n = read(w->fd, tmp, sizeof tmp);
	if (n > 0) {
		send_frame(s, is_err ? "stderr" : "stdout", tmp, (size_t)n);
		if (s->c && http_out_pending(s->c) > EXEC_OUT_HIGH) {
			s->out_paused = 1;
			update_out_watches(s);
		}
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	/* EOF, or EIO on a pty whose last slave closed */
	if (s->tty && !s->exited && s->held_master < 0) {
		/* the process closes its terminal on the way out (head does): closing the master now
		 * would hang up the terminal and kill it with SIGHUP before it exits; as with Docker,
		 * the master stays open until the process is gone */
		s->held_master = w->fd;
		loop_unwatch(w);
	} else {
		close_watch(w);
	}
	if (is_err)
		s->err_eof = 1;
	else
		s->out_eof = 1;
	if (s->tty)
		s->err_eof = 1;
	finish(s);
	sess_maybe_free(s);
}

static void on_ws_drain(struct http_conn *c, void *arg)
{
	struct exec_sess *s = arg;
	(void)c;
	if (s->out_paused) {
		s->out_paused = 0;
		update_out_watches(s);
	}
	if (s->c)
		http_pause_read(s->c, s->stdin_buf.len > EXEC_STDIN_MAX);
}

static void flush_stdin(struct exec_sess *s)
{
	while (s->in_w.fd >= 0 && s->stdin_buf.len > 0) {
		ssize_t n = write(s->in_w.fd, s->stdin_buf.p, s->stdin_buf.len);
		if (n < 0) {
			if (errno == EAGAIN)
				break;
			if (errno == EINTR)
				continue;
			/* the process closed its stdin */
			s->stdin_buf.len = 0;
			close_watch(&s->in_w);
			break;
		}
		buf_consume(&s->stdin_buf, (size_t)n);
	}
	if (s->in_w.fd >= 0 && s->stdin_buf.len == 0 && s->stdin_close) {
		if (s->tty) {
			/* a pty cannot be half-closed: send the EOF character instead */
			char eof = 4;
			struct termios t;
			if (tcgetattr(s->in_w.fd, &t) == 0)
				eof = (char)t.c_cc[VEOF];
			if (write(s->in_w.fd, &eof, 1) == 1 || errno != EAGAIN)
				s->stdin_close = 0; /* sent, or the terminal is gone (EAGAIN: when writable) */
		} else {
			close_watch(&s->in_w);
		}
	}
	/* a pipe or a pty master alike: what the process has not taken yet goes when it can, so
	 * writability is watched while anything waits (and only then: it is level-triggered) */
	if (s->in_w.fd >= 0)
		loop_rewatch(&s->in_w, s->stdin_buf.len || s->stdin_close ? EPOLLOUT : 0);
	if (s->c)
		http_pause_read(s->c, s->stdin_buf.len > EXEC_STDIN_MAX);
}

static void on_stdin_writable(struct loop_watch *w, uint32_t events)
{
	struct exec_sess *s = w->arg;
	if (events & (EPOLLERR | EPOLLHUP)) {
		/* the reading side is gone (process exited or closed stdin) */
		s->stdin_buf.len = 0;
		close_watch(w);
		sess_maybe_free(s);
		return;
	}
	flush_stdin(s);
}

static void on_message(struct http_conn *c, void *arg, const char *data, size_t len)
{
	struct exec_sess *s = arg;
	char err[256];
	int is_null;
	(void)c;
	json_object *o = gojson_parse(data, len, GOJSON_DECODER, &is_null, err, sizeof err);
	if (!o) {
		if (is_null)
			return;
		log_debug("exec: bad input frame", "alloc_id", s->alloc_id, "error", err);
		ws_send_close(s->c, 1011, err);
		return;
	}
	json_object *in = NULL, *v = NULL, *size = NULL;
	if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, k, val)
		{
			if (strcasecmp(k, "stdin") == 0)
				in = val;
			else if (strcasecmp(k, "tty_size") == 0)
				size = val;
		}
	}
	if (in && json_object_is_type(in, json_type_object)) {
		json_object_object_foreach(in, k, val)
		{
			if (strcasecmp(k, "data") == 0 && val && json_object_is_type(val, json_type_string)) {
				const char *b = json_object_get_string(val);
				size_t bl = strlen(b);
				unsigned char *raw = malloc(bl / 4 * 3 + 4);
				ssize_t n = raw ? b64_decode(b, bl, raw) : -1;
				if (n > 0 && s->in_w.fd >= 0)
					buf_add(&s->stdin_buf, raw, (size_t)n);
				free(raw);
			} else if (strcasecmp(k, "close") == 0 && val && json_object_get_boolean(val)) {
				v = val;
			}
		}
		if (v)
			s->stdin_close = 1;
		flush_stdin(s);
	}
	if (size && json_object_is_type(size, json_type_object) && s->tty && s->out_w.fd >= 0) {
		struct winsize ws = {0};
		ws.ws_row = (unsigned short)js_int(size, "height", 0);
		ws.ws_col = (unsigned short)js_int(size, "width", 0);
		ioctl(s->out_w.fd, TIOCSWINSZ, &ws);
	}
	json_object_put(o);
}

static void on_ws_close(struct http_conn *c, void *arg)
{
	struct exec_sess *s = arg;
	(void)c;
	s->c = NULL;
	/* the peer left: the process sees EOF / a hang-up, as with docker exec */
	close_watch(&s->in_w);
	if (!s->finished) {
		close_watch(&s->out_w);
		close_watch(&s->err_w);
		s->out_eof = s->err_eof = 1;
	}
	sess_maybe_free(s);
}

static void on_child(pid_t pid, int status, void *arg)
{
	struct exec_sess *s = arg;
	(void)pid;
	s->exited = 1;
	s->status = status;
	s->pid = 0;
	if (s->held_master >= 0) {
		close(s->held_master);
		s->held_master = -1;
	}
	if (s->tty) {
		/* the pty: remaining output is still readable, then EIO */
		if (s->out_w.fd >= 0)
			on_output(&s->out_w, EPOLLIN);
	}
	if (!(s->out_eof && s->err_eof))
		loop_timer_start(&s->drain_timer, EXEC_DRAIN_MS);
	finish(s);
	sess_maybe_free(s);
}

/* ---- spawning ---- */

static int spawn(struct exec_sess *s, struct sandbox *sb, char **argv, char **env, char *err, size_t cap)
{
	int in[2] = {-1, -1}, out[2] = {-1, -1}, er[2] = {-1, -1}, master = -1, slave = -1;
	if (s->tty) {
		/* a pty of the sandbox's own devpts instance, so that /dev/pts/N exists inside */
		master = openat(sb->root_fd, "dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
		if (master >= 0 && unlockpt(master) == 0)
			slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (slave < 0) {
			if (master >= 0)
				close(master);
			master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
		}
		if (master < 0 || (slave < 0 && (grantpt(master) < 0 || unlockpt(master) < 0))) {
			snprintf(err, cap, "failed to allocate a pty: %s", strerror(errno));
			if (master >= 0)
				close(master);
			return -1;
		}
		char name[128];
		if (slave < 0 &&
		    (ptsname_r(master, name, sizeof name) != 0 || (slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0)) {
			snprintf(err, cap, "failed to open the pty: %s", strerror(errno));
			close(master);
			return -1;
		}
		struct winsize ws = {.ws_row = 24, .ws_col = 80};
		ioctl(master, TIOCSWINSZ, &ws);
	} else if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(er, O_CLOEXEC) < 0) {
		snprintf(err, cap, "failed to create pipes: %s", strerror(errno));
		for (int i = 0; i < 2; i++) {
			if (in[i] >= 0)
				close(in[i]);
			if (out[i] >= 0)
				close(out[i]);
			if (er[i] >= 0)
				close(er[i]);
		}
		return -1;
	}
	/* with a pty, the parent waits until the child owns it (setsid + TIOCSCTTY): input written
	 * before would meet a terminal without a foreground process group, so a 0x1C or ^C in it
	 * would signal nobody */
	int ready[2] = {-1, -1};
	if (s->tty && pipe2(ready, O_CLOEXEC) < 0) {
		snprintf(err, cap, "failed to create a pipe: %s", strerror(errno));
		goto fail;
	}
	if (sandbox_pidns_enter(sb) < 0) {
		snprintf(err, cap, "failed to enter the allocation: %s", strerror(errno));
		if (ready[0] >= 0) {
			close(ready[0]);
			close(ready[1]);
		}
		goto fail;
	}
	pid_t pid = fork();
	int fork_errno = errno;
	if (pid != 0)
		sandbox_pidns_leave(); /* the child stays: its children belong to the sandbox */
	if (pid < 0) {
		snprintf(err, cap, "failed to start the command: %s", strerror(fork_errno));
		if (ready[0] >= 0) {
			close(ready[0]);
			close(ready[1]);
		}
		goto fail;
	}
	if (pid == 0) {
		/* the agent's handlers (loop.c) must not run here: a ^C or hang-up on the new
		 * terminal before execvp would reach the agent's self-pipe and stop the agent; and
		 * nothing the agent inherited ignored may reach the program */
		/* nothing in the runner may open /proc/<pid>/fd, root or mem of this process while it
		 * still holds the host's root, files and privileges (runc does the same since
		 * CVE-2016-9962); exec makes the program dumpable again */
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
		signals_reset_for_exec();
		setsid();
		if (s->tty) {
			ioctl(slave, TIOCSCTTY, 0);
			dup2(slave, 0);
			dup2(slave, 1);
			dup2(slave, 2);
			close(ready[1]); /* the parent may write to the pty now */
		} else {
			dup2(in[0], 0);
			dup2(out[1], 1);
			dup2(er[1], 2);
		}
		if (sandbox_enter(sb) < 0) {
			dprintf(2, "failed to enter the allocation: %s\n", strerror(errno));
			_exit(126);
		}
		if (confine_self() < 0) {
			dprintf(2, "failed to confine the command: %s\n", strerror(errno));
			_exit(126);
		}
		syscall(SYS_close_range, 3, ~0U, 0);
		extern char **environ;
		environ = env;
		execvp(argv[0], argv);
		int e = errno;
		if (e == ENOENT)
			dprintf(2, "OCI runtime exec failed: exec failed: unable to start container process: exec: "
				   "\"%s\": executable file not found in $PATH: unknown\n",
				argv[0]);
		else
			dprintf(2, "OCI runtime exec failed: exec failed: unable to start container process: exec: "
				   "\"%s\": %s: unknown\n",
				argv[0], strerror(e));
		_exit(e == ENOENT ? 127 : 126);
	}
	s->pid = pid;
	loop_child_watch(pid, on_child, s);
	if (s->tty) {
		char c;
		close(ready[1]);
		while (read(ready[0], &c, 1) < 0 && errno == EINTR)
			;
		close(ready[0]);
		close(slave);
		int mdup = fcntl(master, F_DUPFD_CLOEXEC, 3);
		loop_watch(&s->out_w, master, EPOLLIN, on_output, s);
		if (mdup >= 0)
			loop_watch(&s->in_w, mdup, 0, on_stdin_writable, s);
		s->err_eof = 1;
	} else {
		close(in[0]);
		close(out[1]);
		close(er[1]);
		fcntl(in[1], F_SETFL, O_NONBLOCK);
		fcntl(out[0], F_SETFL, O_NONBLOCK);
		fcntl(er[0], F_SETFL, O_NONBLOCK);
		loop_watch(&s->in_w, in[1], 0, on_stdin_writable, s);
		loop_watch(&s->out_w, out[0], EPOLLIN, on_output, s);
		loop_watch(&s->err_w, er[0], EPOLLIN, on_output, s);
	}
	return 0;
fail:
	if (s->tty) {
		close(master);
		close(slave);
	} else {
		for (int i = 0; i < 2; i++) {
			close(in[i]);
			close(out[i]);
			close(er[i]);
		}
	}
	return -1;
}

/* ---- the handler ---- */

static void plain_error(struct http_conn *c, int status, const char *msg)
{
	http_respond(c, status, "text/plain; charset=utf-8", NULL, msg, strlen(msg));
}

/* gorilla/websocket's Upgrader checks; NULL when the request is a valid handshake */
static const char *ws_handshake_error(struct http_req *r, int *status)
{
	const char *conn = http_header(r, "Connection"), *up = http_header(r, "Upgrade");
	const char *ver = http_header(r, "Sec-WebSocket-Version"), *key = http_header(r, "Sec-WebSocket-Key");
	*status = 400;
	int conn_ok = 0, up_ok = 0;
	for (const char *p = conn; p && *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		if (strncasecmp(p, "upgrade", 7) == 0 && (p[7] == '\0' || p[7] == ',' || p[7] == ' '))
			conn_ok = 1;
		p = strchr(p, ',');
	}
	for (const char *p = up; p && *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		if (strncasecmp(p, "websocket", 9) == 0 && (p[9] == '\0' || p[9] == ',' || p[9] == ' '))
			up_ok = 1;
		p = strchr(p, ',');
	}
	if (!conn_ok)
		return "websocket: the client is not using the websocket protocol: 'upgrade' token not found in "
		       "'Connection' header";
	if (!up_ok)
		return "websocket: the client is not using the websocket protocol: 'websocket' token not found in "
		       "'Upgrade' header";
	if (strcmp(r->method, "GET") != 0) {
		*status = 405;
		return "websocket: the client is not using the websocket protocol: request method is not GET";
	}
	if (!ver || strcmp(ver, "13") != 0)
		return "websocket: unsupported version: 13 not found in 'Sec-Websocket-Version' header";
	unsigned char raw[64];
	if (!key || strlen(key) > 80 || b64_decode(key, strlen(key), raw) != 16)
		return "websocket: not a websocket handshake: 'Sec-WebSocket-Key' header must be Base64 encoded "
		       "value of 16-byte length";
	return NULL;
}

void exec_handle(struct http_conn *c, struct http_req *r, const char *alloc_id, int token_ok)
{
	char cmdq[65536], tty_s[32], task[256], err[512];
	int is_null = 0;
	http_query(r, "command", cmdq, sizeof cmdq);
	http_query(r, "task", task, sizeof task);
	json_object *cmd = gojson_parse(cmdq, strlen(cmdq), GOJSON_UNMARSHAL, &is_null, err, sizeof err);
	char msg[700];
	if (!cmd && !is_null) {
		snprintf(msg, sizeof msg, "failed to marshal command into json: %s", err);
		log_debug("exec: bad command", "alloc_id", alloc_id, "error", msg);
		plain_error(c, 500, msg);
		return;
	}
	if (cmd && !json_object_is_type(cmd, json_type_array)) {
		char kind[16];
		snprintf(kind, sizeof kind, "%s",
			 json_object_is_type(cmd, json_type_object) ? "object"
			 : json_object_is_type(cmd, json_type_string) ? "string"
			 : json_object_is_type(cmd, json_type_boolean) ? "bool"
								       : "number");
		snprintf(msg, sizeof msg, "failed to marshal command into json: json: cannot unmarshal %s into Go value of type []string",
			 kind);
		json_object_put(cmd);
		plain_error(c, 500, msg);
		return;
	}
	size_t ncmd = cmd ? json_object_array_length(cmd) : 0;
	for (size_t i = 0; i < ncmd; i++) {
		json_object *v = json_object_array_get_idx(cmd, i);
		if (v && !json_object_is_type(v, json_type_string)) {
			const char *kind = json_object_is_type(v, json_type_object)  ? "object"
					   : json_object_is_type(v, json_type_array) ? "array"
					   : json_object_is_type(v, json_type_boolean) ? "bool"
										      : "number";
			snprintf(msg, sizeof msg,
				 "failed to marshal command into json: json: cannot unmarshal %s into Go value of type string",
				 kind);
			json_object_put(cmd);
			plain_error(c, 500, msg);
			return;
		}
	}
	int tty = 0;
	if (http_query(r, "tty", tty_s, sizeof tty_s) && tty_s[0]) {
		if (!strcmp(tty_s, "1") || !strcmp(tty_s, "t") || !strcmp(tty_s, "T") || !strcmp(tty_s, "TRUE") ||
		    !strcmp(tty_s, "true") || !strcmp(tty_s, "True"))
			tty = 1;
		else if (!strcmp(tty_s, "0") || !strcmp(tty_s, "f") || !strcmp(tty_s, "F") || !strcmp(tty_s, "FALSE") ||
			 !strcmp(tty_s, "false") || !strcmp(tty_s, "False"))
			tty = 0;
		else {
			snprintf(msg, sizeof msg, "tty value is not a boolean: strconv.ParseBool: parsing \"%s\": invalid syntax",
				 tty_s);
			json_object_put(cmd);
			plain_error(c, 500, msg);
			return;
		}
	}
	int hs_status;
	const char *hs = ws_handshake_error(r, &hs_status);
	if (hs) {
		/* gorilla answers http.Error(StatusText), then Nomad's wrapper appends its own error */
		snprintf(msg, sizeof msg, "%s\nfailed to upgrade connection: %s", hs_status == 405 ? "Method Not Allowed" : "Bad Request", hs);
		log_debug("exec: not a websocket handshake", "alloc_id", alloc_id, "error", hs);
		http_respond(c, hs_status, "text/plain; charset=utf-8",
			     "Sec-Websocket-Version: 13\r\nX-Content-Type-Options: nosniff\r\n", msg, strlen(msg));
		json_object_put(cmd);
		return;
	}
	struct exec_sess *s = calloc(1, sizeof *s);
	if (!s) {
		json_object_put(cmd);
		plain_error(c, 500, "out of memory");
		return;
	}
	nsess++;
	s->in_w.fd = s->out_w.fd = s->err_w.fd = -1;
	s->held_master = -1;
	s->tty = tty;
	snprintf(s->alloc_id, sizeof s->alloc_id, "%s", alloc_id);
	loop_timer_init(&s->drain_timer, on_drain_timeout, s);
	if (http_ws_accept(c, r, on_message, s) < 0) {
		json_object_put(cmd);
		s->exited = 1;
		sess_maybe_free(s);
		return;
	}
	s->c = c;
	http_on_close(c, on_ws_close, s);
	http_on_drain(c, EXEC_OUT_LOW, on_ws_drain);

	/* checks after the upgrade: close frames, like Nomad */
	struct nl_alloc *a = state_alloc(alloc_id);
	int code = 0;
	msg[0] = '\0';
	if (!token_ok) {
		code = 1011;
		snprintf(msg, sizeof msg, "Permission denied");
	} else if (!a) {
		code = 1008;
		snprintf(msg, sizeof msg, "Unknown allocation \"%s\"", alloc_id);
	} else if (alloc_client_terminal(a)) {
		code = 1008;
		snprintf(msg, sizeof msg, "exec not possible, client status of allocation %s is %s", a->id,
			 a->client_status);
	} else if (!task[0]) {
		code = 1008;
		snprintf(msg, sizeof msg, "must provide task name");
	} else if (ncmd == 0) {
		code = 1008;
		snprintf(msg, sizeof msg, "command is not present");
	} else if (strcmp(task, a->task_name) != 0) {
		code = 1011;
		snprintf(msg, sizeof msg, "task not found");
	} else if (!a->task.started_at) {
		code = 1008;
		snprintf(msg, sizeof msg, "task \"%s\" not started yet.", task);
	} else if (!task_sandbox(a)) {
		code = 1008;
		snprintf(msg, sizeof msg, "task \"%s\" is not running.", task);
	}
	if (code) {
		log_info("exec refused", "alloc_id", alloc_id, "error", msg);
		json_object_put(cmd);
		http_on_close(c, NULL, NULL);
		s->c = NULL;
		s->exited = 1;
		ws_send_close(c, code, msg);
		sess_maybe_free(s);
		return;
	}
	struct sandbox *sb = task_sandbox(a);
	char *argv[EXEC_MAX_ARGS + 1];
	size_t argc = 0;
	for (size_t i = 0; i < ncmd && argc < EXEC_MAX_ARGS; i++) {
		json_object *v = json_object_array_get_idx(cmd, i);
		argv[argc++] = (char *)(v ? json_object_get_string(v) : "");
	}
	argv[argc] = NULL;
	char **tenv = task_env(a);
	int nenv = 0;
	while (tenv && tenv[nenv])
		nenv++;
	char **env = calloc((size_t)nenv + 2, sizeof *env);
	int has_term = 0;
	for (int i = 0; i < nenv && env; i++) {
		env[i] = tenv[i];
		has_term |= strncmp(tenv[i], "TERM=", 5) == 0;
	}
	if (env && tty && !has_term)
		env[nenv] = "TERM=xterm";
	s->oom_base = sandbox_oom_count(sb);
	s->oom_ends_base = task_oom_ends(a);
	int rc = env ? spawn(s, sb, argv, env, err, sizeof err) : -1;
	free(env);
	json_object_put(cmd);
	if (rc < 0) {
		log_error("exec failed", "alloc_id", alloc_id, "error", env ? err : "out of memory");
		http_on_close(c, NULL, NULL);
		s->c = NULL;
		s->exited = 1;
		ws_send_close(c, 1011, err);
		sess_maybe_free(s);
		return;
	}
	log_debug("exec started", "alloc_id", alloc_id, "command", argv[0], "tty", tty ? "true" : "false");
}
