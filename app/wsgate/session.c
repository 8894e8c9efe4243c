/* session: one execution from the upgrade to its last byte (docs/api.md section 3, WS-*).
 *
 * A session owns up to three Nomad exec sessions on the runner's allocation (lib/nomad_exec):
 *   main  tty=true, the user's program (stdin = the client's frames, its output = stdout);
 *   err   tty=true, copies the program's stderr FIFO to us (server.interactivestderr; its output
 *         becomes stderr messages); the FIFO rendezvous is in lib/commands (cmd_exec_*);
 *   prep  tty=false, only for a command line too long for an exec request: writes the script
 *         file the main session then runs.
 * Messages go to the client through a queue of at most GATE_QUEUE_MAX: a full queue pauses both
 * output sessions (nomad_exec_pause_output), so a slow client slows the program down instead of
 * growing memory; client input waits (lws rx flow control) while Nomad's stdin queue is full.
 *
 * Exactly one terminal message, decided once (finish()): exit, timeout or error, then close 1000.
 * Its cause is read from Redis when the program ends or the poll notices a change: a runner that
 * vanished was deleted (error "the allocation stopped as expected"), or reaped after its deadline
 * (timeout); a runner whose deadline passed is destroyed here (timeout); exit 128 waits up to
 * GATE_OOM_WAIT_MS for poseidon-refill's OOM mark newer than the start (error OOM). Cancelling a
 * program (time limit, client gone) writes 0x1C to its tty (SIGQUIT) and destroys the runner if
 * the program has not ended GATE_GRACE_MS later. A session is freed when its client connection
 * and all its Nomad sessions are gone; every timer is cancelled then.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "commands.h"
#include "gate.h"
#include "log.h"
#include "metrics.h"
#include "nomad_exec.h"
#include "wsmsg.h"

#define SESSION_MAGIC 0x77736761u
#define PATH_MAX_TMP  128
#define QUIT_BYTE     "\x1c"

enum role { ROLE_MAIN, ROLE_ERR, ROLE_PREP, NROLES };

struct msg {
	struct msg *next;
	size_t len;
	unsigned char buf[]; /* LWS_PRE + len */
};

struct link {
	struct session *s;
	enum role role;
};

struct session {
	uint32_t magic;
	struct gate *g;
	struct session *prev, *next; /* g->sessions, once upgraded */
	struct lws *wsi;             /* the client; NULL once its connection is gone */
	char runner[MODEL_RUNNER_ID_MAX];
	char exec_id[GATE_EXEC_ID_MAX];
	char alloc[64];
	char dir[PATH_MAX_TMP]; /* the execution's directory in the runner (FIFO, script) */
	struct execution_request req;
	long long start_ms;    /* Redis time at the start (for the OOM mark) */
	long long deadline_ms; /* the runner's inactivity deadline as last seen, 0 = none */
	long long t0;          /* monotonic start, for the log */

	struct nomad_exec *x[NROLES];
	struct link link[NROLES];
	char *script_body; /* prep's stdin, sent as the queue takes it */
	size_t script_len, script_off;

	unsigned live : 1; /* upgraded, in g->sessions */
	unsigned have_req : 1;
	unsigned main_started : 1;
	unsigned main_ended : 1;
	unsigned main_failed : 1;
	unsigned err_ended : 1;
	unsigned err_muted : 1; /* stderr drain gave up: its output is dropped */
	unsigned concluded : 1; /* conclude() ran */
	unsigned finished : 1;  /* the outcome is decided (terminal queued, or no client) */
	unsigned close_after : 1;
	unsigned cancelling : 1; /* 0x1C written, grace running */
	unsigned abandoned : 1;  /* no program will be started any more */
	unsigned rx_paused : 1;
	unsigned out_paused : 1;
	unsigned ping_due : 1;
	unsigned use_script : 1;                        /* the command goes through a script file */
	unsigned main_exit_seen : 1, err_exit_seen : 1; /* exit frames: the processes are gone */
	unsigned x_err_used : 1;                        /* a stderr session was started */
	unsigned destroying : 1;                        /* the runner is being destroyed: nothing to sweep */
	int err_exit_code;
	int exit_code;
	int oom_waited_ms;
	const char *outcome; /* for the log */

	struct msg *qhead, *qtail;
	int qlen;
	unsigned char *pend; /* client input not yet taken by the main session */
	size_t pend_len;
	struct wsmsg_utf8 u_out, u_err;

	lws_sorted_usec_list_t sul_limit, sul_grace, sul_requit, sul_drain, sul_errkill, sul_oom, sul_poll;
};

struct session *session_of(struct lws *wsi)
{
	struct session *s = lws_get_opaque_user_data(wsi);
	return s && s->magic == SESSION_MAGIC && s->wsi == wsi ? s : NULL;
}

static void schedule(struct session *s, lws_sorted_usec_list_t *sul, sul_cb_t cb, int ms)
{
	lws_sul_schedule(s->g->ctx, 0, sul, cb, (lws_usec_t)ms * 1000);
}

/* ---- the client's queue -------------------------------------------------------------------- */

static void want_write(struct session *s)
{
	if (s->wsi)
		lws_callback_on_writable(s->wsi);
}

static void pause_output(struct session *s, int pause)
{
	if (s->out_paused == !!pause)
		return;
	s->out_paused = !!pause;
	nomad_exec_pause_output(s->x[ROLE_MAIN], pause);
	nomad_exec_pause_output(s->x[ROLE_ERR], pause);
}

/* Takes a message of len bytes rendered at m->buf + LWS_PRE. */
static void enqueue(struct session *s, struct msg *m)
{
	m->next = NULL;
	if (s->qtail)
		s->qtail->next = m;
	else
		s->qhead = m;
	s->qtail = m;
	s->qlen++;
	if (s->qlen >= GATE_QUEUE_MAX)
		pause_output(s, 1);
	want_write(s);
}

static struct msg *msg_new(size_t cap)
{
	return malloc(sizeof(struct msg) + LWS_PRE + cap);
}

static void send_control(struct session *s, size_t (*render)(char *, size_t))
{
	struct msg *m = msg_new(WSMSG_CONTROL_MAX);
	if (!m)
		return;
	m->len = render((char *)m->buf + LWS_PRE, WSMSG_CONTROL_MAX);
	enqueue(s, m);
}

static void send_exit(struct session *s, int code)
{
	struct msg *m = msg_new(WSMSG_CONTROL_MAX);
	if (!m)
		return;
	m->len = wsmsg_exit((char *)m->buf + LWS_PRE, WSMSG_CONTROL_MAX, code);
	enqueue(s, m);
}

static void send_error(struct session *s, const char *text)
{
	size_t cap = wsmsg_output_cap(strlen(text));
	struct msg *m = msg_new(cap);
	if (!m)
		return;
	m->len = wsmsg_error((char *)m->buf + LWS_PRE, cap, text);
	enqueue(s, m);
}

static void send_output(struct session *s, enum wsmsg_stream st, const char *data, size_t len)
{
	if (s->finished || !s->wsi)
		return; /* after the terminal message, or with nobody listening: dropped */
	struct wsmsg_utf8 *u = st == WSMSG_STDERR ? &s->u_err : &s->u_out;
	size_t cap = wsmsg_output_cap(len);
	struct msg *m = msg_new(cap);
	if (!m)
		return;
	m->len = data ? wsmsg_output((char *)m->buf + LWS_PRE, cap, st, u, data, len)
	              : wsmsg_output_flush((char *)m->buf + LWS_PRE, cap, st, u);
	if (!m->len) {
		free(m); /* nothing complete to send yet (WS-4: never an empty message) */
		return;
	}
	enqueue(s, m);
}

static void drop_queue(struct session *s)
{
	while (s->qhead) {
		struct msg *m = s->qhead;
		s->qhead = m->next;
		free(m);
	}
	s->qtail = NULL;
	s->qlen = 0;
}

int session_on_writeable(struct session *s)
{
	if (s->ping_due) {
		unsigned char ping[LWS_PRE + 1];
		s->ping_due = 0;
		if (lws_write(s->wsi, ping + LWS_PRE, 0, LWS_WRITE_PING) < 0)
			return -1;
		if (s->qhead || s->close_after)
			want_write(s);
		return 0;
	}
	struct msg *m = s->qhead;
	if (m) {
		s->qhead = m->next;
		if (!s->qhead)
			s->qtail = NULL;
		s->qlen--;
		int n = lws_write(s->wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT);
		free(m);
		if (n < 0)
			return -1;
		if (s->out_paused && s->qlen <= GATE_QUEUE_MAX / 2)
			pause_output(s, 0);
		if (s->qhead || s->close_after)
			want_write(s);
		return 0;
	}
	if (s->close_after) {
		lws_close_reason(s->wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
		return -1;
	}
	return 0;
}

void session_on_ping_timer(struct session *s)
{
	s->ping_due = 1;
	want_write(s);
	lws_set_timer_usecs(s->wsi, (lws_usec_t)s->g->ping_ms * 1000);
}

/* ---- outcome ------------------------------------------------------------------------------- */

/* Logs the end and counts it in poseidon_executions_total (once per execution). */
static void log_end(struct session *s)
{
	char ms[24], code[24];
	const char *kind = strcmp(s->outcome, "exit") == 0 || strcmp(s->outcome, "timeout") == 0 ? s->outcome
	                   : strncmp(s->outcome, "client ", 7) == 0                                 ? "client_close"
	                                                                                              : "error";
	metrics_execution_outcome(s->g->store, kind);
	log_info("execution ended", "runner", s->runner, "execution", s->exec_id, "outcome", s->outcome,
	         "exit", s->main_ended && !s->main_failed ? log_int(code, s->exit_code) : "", "ms",
	         log_int(ms, clock_mono_ms() - s->t0));
}

/* The one terminal message (kind: "exit", "timeout" or an error text), then close 1000. */
static void finish(struct session *s, const char *outcome, int code)
{
	if (s->finished)
		return;
	s->finished = 1;
	s->outcome = outcome;
	lws_sul_cancel(&s->sul_limit);
	lws_sul_cancel(&s->sul_poll);
	lws_sul_cancel(&s->sul_oom);
	if (s->wsi) {
		if (strcmp(outcome, "exit") == 0)
			send_exit(s, code);
		else if (strcmp(outcome, "timeout") == 0)
			send_control(s, wsmsg_timeout);
		else
			send_error(s, outcome);
		s->close_after = 1;
		want_write(s);
	}
	log_end(s);
}

static void destroy_runner(struct session *s, const char *why)
{
	s->destroying = 1;
	destroyer_push(s->g->destroyer, s->runner, why);
	/* the purge ends the program; our sessions need not wait for it */
	for (int r = 0; r < NROLES; r++)
		nomad_exec_cancel(s->x[r]);
}

static void on_grace(lws_sorted_usec_list_t *sul)
{
	struct session *s = lws_container_of(sul, struct session, sul_grace);
	if (s->main_ended)
		return;
	log_warn("program survived SIGQUIT; destroying its runner", "runner", s->runner, "execution",
	         s->exec_id);
	destroy_runner(s, "execution could not be stopped");
}

/* Stops the program: 0x1C on its tty (SIGQUIT), and its runner is destroyed if the program is
 * still there GATE_GRACE_MS later (WS-19, WS-25). */
static void on_requit(lws_sorted_usec_list_t *sul)
{
	struct session *s = lws_container_of(sul, struct session, sul_requit);
	if (s->main_ended || !s->x[ROLE_MAIN])
		return;
	nomad_exec_write_stdin(s->x[ROLE_MAIN], QUIT_BYTE, 1);
	schedule(s, &s->sul_requit, on_requit, GATE_REQUIT_MS);
}

static void cancel_program(struct session *s, int with_grace)
{
	if (s->cancelling)
		return;
	s->cancelling = 1;
	log_debug("stopping the program", "execution", s->exec_id, "main",
	          s->main_ended ? "ended" : "running");
	s->abandoned = 1;
	nomad_exec_cancel(s->x[ROLE_PREP]);
	if (!s->main_started || s->main_ended || !s->x[ROLE_MAIN])
		return;
	nomad_exec_write_stdin(s->x[ROLE_MAIN], QUIT_BYTE, 1);
	/* bash ignores SIGQUIT until it has a trap: a QUIT that reaches a shell still starting up is
	 * lost, and the program would run on until the grace destroys its runner (client close
	 * storms did that). Until the program ends, QUIT is sent again every GATE_REQUIT_MS. */
	schedule(s, &s->sul_requit, on_requit, GATE_REQUIT_MS);
	if (with_grace)
		schedule(s, &s->sul_grace, on_grace, GATE_GRACE_MS);
}

/* Redis's view of a runner that is no longer usable: what the client is told. Returns NULL while
 * the runner is fine. May destroy it (deadline passed but nobody reaped it yet). */
static const char *runner_verdict(struct session *s)
{
	struct runner run;
	struct perr e;
	int alive = store_runner_lookup(s->g->store, s->runner, 0, &run, &e);
	if (alive < 0) {
		log_warn("redis lookup failed; assuming the runner is fine", "runner", s->runner, "error",
		         e.msg);
		return NULL;
	}
	if (alive) {
		s->deadline_ms = run.deadline_ms;
		return NULL;
	}
	int exists = store_runner_get(s->g->store, s->runner, &run, &e);
	if (exists > 0) {
		/* claimed but past its deadline: the inactivity timeout fired during the execution */
		destroy_runner(s, "inactivity timeout during an execution");
		return "timeout";
	}
	s->destroying = 1; /* gone: nothing of it to sweep */
	long long now = 0;
	if (s->deadline_ms > 0 && store_time_ms(s->g->store, &now, &e) == 0 && now >= s->deadline_ms)
		return "timeout"; /* reaped by poseidon-refill at its deadline (WS-15) */
	return WSMSG_ERR_STOPPED; /* deleted through the API, or its allocation went away (WS-23) */
}

static void on_oom_wait(lws_sorted_usec_list_t *sul)
{
	struct session *s = lws_container_of(sul, struct session, sul_oom);
	struct runner run;
	struct perr e;
	if (s->finished)
		return;
	int found = store_runner_get(s->g->store, s->runner, &run, &e);
	if (found > 0 && run.oom_ms && run.oom_ms >= s->start_ms) {
		finish(s, WSMSG_ERR_OOM, 0);
		return;
	}
	s->oom_waited_ms += GATE_OOM_STEP_MS;
	if (s->oom_waited_ms >= GATE_OOM_WAIT_MS)
		finish(s, "exit", 128);
	else
		schedule(s, &s->sul_oom, on_oom_wait, GATE_OOM_STEP_MS);
}

/* The program ended and its stderr is drained (or given up): say how. */
static void conclude(struct session *s)
{
	if (s->concluded)
		return;
	s->concluded = 1;
	send_output(s, WSMSG_STDOUT, NULL, 0); /* bytes of a character cut off at the end */
	send_output(s, WSMSG_STDERR, NULL, 0);
	if (s->finished)
		return;
	const char *v = runner_verdict(s);
	if (v)
		finish(s, v, 0);
	else if (s->main_failed)
		finish(s, WSMSG_ERR_GENERIC, 0);
	else if (s->exit_code == 128)
		on_oom_wait(&s->sul_oom); /* WS-22: maybe its allocation was OOM-killed */
	else
		finish(s, "exit", s->exit_code);
}

/* Ends the stderr session: nobody waits for its output any more (or it waits for a FIFO whose
 * writer is gone). 0x1C stops its cat, or its shell still waiting in the FIFO's open, which then
 * removes the FIFO (cmd_exec_stderr's trap). */
static void on_err_kill(lws_sorted_usec_list_t *sul)
{
	struct session *s = lws_container_of(sul, struct session, sul_errkill);
	nomad_exec_cancel(s->x[ROLE_ERR]); /* it did not end after its 0x1C: let go of it */
}

static void stop_stderr(struct session *s)
{
	s->err_muted = 1;
	lws_sul_cancel(&s->sul_drain);
	if (s->x[ROLE_ERR] && !s->err_ended) {
		log_debug("stopping the stderr session", "execution", s->exec_id);
		nomad_exec_write_stdin(s->x[ROLE_ERR], QUIT_BYTE, 1);
		nomad_exec_close_stdin(s->x[ROLE_ERR]);
		schedule(s, &s->sul_errkill, on_err_kill, GATE_ERR_KILL_MS);
	}
}

static void on_drain(lws_sorted_usec_list_t *sul)
{
	struct session *s = lws_container_of(sul, struct session, sul_drain);
	/* something still holds the stderr FIFO open (a background process): stop waiting for it */
	stop_stderr(s);
	conclude(s);
}

static void main_ended(struct session *s)
{
	s->main_ended = 1;
	lws_sul_cancel(&s->sul_grace);
	if (s->x[ROLE_ERR] && !s->err_ended && !s->finished)
		schedule(s, &s->sul_drain, on_drain, GATE_STDERR_DRAIN_MS);
	else {
		if (s->finished)
			stop_stderr(s); /* the outcome is out already: its stderr goes nowhere */
		conclude(s);
	}
}

static void on_time_limit(lws_sorted_usec_list_t *sul)
{
	struct session *s = lws_container_of(sul, struct session, sul_limit);
	if (s->finished)
		return;
	finish(s, "timeout", 0); /* WS-12 */
	cancel_program(s, 1);
}

static void on_poll(lws_sorted_usec_list_t *sul)
{
	struct session *s = lws_container_of(sul, struct session, sul_poll);
	if (s->finished)
		return;
	const char *v = runner_verdict(s);
	if (!v) {
		schedule(s, &s->sul_poll, on_poll, GATE_POLL_MS);
		return;
	}
	finish(s, v, 0);
	s->abandoned = 1;
	/* the runner is gone or going: its allocation takes the program with it */
	for (int r = 0; r < NROLES; r++)
		nomad_exec_cancel(s->x[r]);
}

/* ---- Nomad sessions ------------------------------------------------------------------------ */

static void maybe_free(struct session *s);
static void start_program(struct session *s);

static void x_stdout(void *ud, const char *data, size_t len)
{
	struct link *l = ud;
	struct session *s = l->s;
	if (l->role == ROLE_MAIN)
		send_output(s, WSMSG_STDOUT, data, len);
	else if (l->role == ROLE_ERR && !s->err_muted)
		send_output(s, WSMSG_STDERR, data, len);
}

static void x_stderr(void *ud, const char *data, size_t len)
{
	struct link *l = ud;
	if (l->role == ROLE_MAIN) /* only without a tty, which we never ask for */
		send_output(l->s, WSMSG_STDERR, data, len);
}

static const char *role_name(enum role r)
{
	return r == ROLE_MAIN ? "main" : r == ROLE_ERR ? "stderr" : "script";
}

static void x_exit(void *ud, int code)
{
	struct link *l = ud;
	struct session *s = l->s;
	char ec[24];
	log_debug("nomad exec ended", "execution", s->exec_id, "session", role_name(l->role), "exit",
	          log_int(ec, code));
	switch (l->role) {
	case ROLE_MAIN:
		s->exit_code = code;
		s->main_exit_seen = 1;
		main_ended(s);
		break;
	case ROLE_ERR:
		s->err_ended = 1;
		s->err_exit_seen = 1;
		s->err_exit_code = code;
		lws_sul_cancel(&s->sul_drain);
		if (s->main_ended)
			conclude(s);
		break;
	case ROLE_PREP:
		if (code != 0) {
			char c[24];
			log_warn("writing the script of a long command failed", "runner", s->runner, "exit",
			         log_int(c, code));
			s->main_failed = 1;
			s->main_ended = 1;
			conclude(s);
		} else if (!s->abandoned) {
			start_program(s);
		}
		break;
	default: break;
	}
}

static void x_error(void *ud, const struct perr *e, enum nomad_exec_failure f)
{
	(void)f;
	struct link *l = ud;
	struct session *s = l->s;
	log_warn("nomad exec failed", "runner", s->runner, "execution", s->exec_id, "session",
	         role_name(l->role), "error", e->msg);
	switch (l->role) {
	case ROLE_ERR:
		s->err_ended = 1;
		lws_sul_cancel(&s->sul_drain);
		if (s->main_ended) {
			conclude(s);
			break;
		}
		/* the program cannot reach its stderr: the execution cannot go on */
		if (!s->finished) {
			const char *v = runner_verdict(s);
			finish(s, v ? v : WSMSG_ERR_GENERIC, 0);
		}
		cancel_program(s, 1);
		break;
	case ROLE_MAIN:
	case ROLE_PREP:
		s->main_failed = 1;
		if (!s->main_ended)
			main_ended(s);
		nomad_exec_cancel(s->x[ROLE_ERR]); /* nobody will ever open its FIFO now */
		break;
	default: break;
	}
}

static void feed_script(struct session *s);

static void x_stdin_ready(void *ud)
{
	struct link *l = ud;
	struct session *s = l->s;
	if (l->role == ROLE_PREP) {
		feed_script(s);
		return;
	}
	if (l->role != ROLE_MAIN || !s->pend_len)
		return;
	ssize_t n = nomad_exec_write_stdin(s->x[ROLE_MAIN], s->pend, s->pend_len);
	if (n < 0)
		n = (ssize_t)s->pend_len; /* the program is gone: its input with it */
	memmove(s->pend, s->pend + n, s->pend_len - (size_t)n);
	s->pend_len -= (size_t)n;
	if (!s->pend_len && s->rx_paused && s->wsi) {
		s->rx_paused = 0;
		lws_rx_flow_control(s->wsi, 1);
	}
}

static void x_closed(void *ud)
{
	struct link *l = ud;
	struct session *s = l->s;
	s->x[l->role] = NULL;
	if (l->role == ROLE_ERR && !s->err_ended) {
		s->err_ended = 1; /* cancelled by us: nothing more will come from it */
		lws_sul_cancel(&s->sul_drain);
		if (s->main_ended)
			conclude(s);
	}
	maybe_free(s);
}

static const struct nomad_exec_callbacks exec_cbs = {
    .on_stdout = x_stdout,
    .on_stderr = x_stderr,
    .on_exit = x_exit,
    .on_error = x_error,
    .on_stdin_ready = x_stdin_ready,
    .on_closed = x_closed,
};

static struct nomad_exec *open_exec(struct session *s, enum role role, const char *line, int tty)
{
	struct perr e;
	const char *argv[] = {"/bin/bash", "-c", line, NULL};
	struct nomad_exec_opts o = {.alloc_id = s->alloc, .argv = argv, .tty = tty};
	s->link[role].s = s;
	s->link[role].role = role;
	s->x[role] = nomad_exec_start(s->g->ctx, &s->g->ep, &o, &exec_cbs, &s->link[role], &e);
	if (!s->x[role])
		log_warn("cannot start a nomad exec", "runner", s->runner, "execution", s->exec_id, "error",
		         e.msg);
	return s->x[role];
}

/* 1 when line fits into an exec request (NOMAD_EXEC_PATH_MAX). */
static int fits(struct session *s, const char *line)
{
	char path[NOMAD_EXEC_PATH_MAX];
	const char *argv[] = {"/bin/bash", "-c", line, NULL};
	struct nomad_exec_opts o = {.alloc_id = s->alloc, .argv = argv, .tty = 1};
	return nomad_exec_request_path(path, sizeof path, s->g->ep.namespace, &o, NULL) >= 0;
}

static void feed_script(struct session *s)
{
	struct nomad_exec *x = s->x[ROLE_PREP];
	while (x && s->script_off < s->script_len) {
		ssize_t n =
		    nomad_exec_write_stdin(x, s->script_body + s->script_off, s->script_len - s->script_off);
		if (n <= 0)
			return; /* full: on_stdin_ready brings us back */
		s->script_off += (size_t)n;
	}
	if (x && s->script_off == s->script_len)
		nomad_exec_close_stdin(x);
}

static void fail_start(struct session *s)
{
	s->main_failed = 1;
	s->main_ended = 1;
	conclude(s);
}

/* Starts the script writer for a line too long for an exec request (docs/wsgate.md). */
static void start_script_writer(struct session *s)
{
	char *w = cmd_exec_write_script(s->dir);
	s->use_script = 1;
	s->script_body = cmd_exec_script(&s->req, &s->script_len);
	if (!w || !s->script_body || !open_exec(s, ROLE_PREP, w, 0)) {
		free(w);
		fail_start(s);
		return;
	}
	free(w);
	feed_script(s);
}

/* Starts the program and its stderr reader (once the script is written, for a long line). */
static void start_program(struct session *s)
{
	int split = s->g->cfg.server.interactivestderr;
	char *line = cmd_exec_main(&s->req, s->dir, split, s->use_script);
	if (line && !s->use_script && !fits(s, line)) {
		free(line);
		start_script_writer(s);
		return;
	}
	if (!line || !fits(s, line)) {
		free(line);
		fail_start(s);
		return;
	}
	if (split) {
		char *r = cmd_exec_stderr(s->dir);
		s->x_err_used = 1;
		if (!r || !open_exec(s, ROLE_ERR, r, 1)) {
			free(r);
			free(line);
			fail_start(s);
			return;
		}
		free(r);
	}
	if (!open_exec(s, ROLE_MAIN, line, 1)) {
		free(line);
		nomad_exec_cancel(s->x[ROLE_ERR]);
		fail_start(s);
		return;
	}
	free(line);
	s->main_started = 1;
	if (s->pend_len)
		x_stdin_ready(&s->link[ROLE_MAIN]);
}

/* ---- life of a session --------------------------------------------------------------------- */

struct session *session_new(struct gate *g, struct lws *wsi, const char *runner_id, const char *exec_id,
                            const char *alloc_id)
{
	struct session *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->magic = SESSION_MAGIC;
	s->g = g;
	s->wsi = wsi;
	s->outcome = "none";
	snprintf(s->runner, sizeof s->runner, "%s", runner_id);
	snprintf(s->exec_id, sizeof s->exec_id, "%s", exec_id);
	snprintf(s->alloc, sizeof s->alloc, "%s", alloc_id);
	snprintf(s->dir, sizeof s->dir, CMD_EXEC_TMP_PREFIX "%s", exec_id);
	lws_set_opaque_user_data(wsi, s);
	return s;
}

void session_established(struct session *s)
{
	struct gate *g = s->g;
	struct perr e;
	char *stored = NULL;
	char owner[MODEL_RUNNER_ID_MAX] = "";
	s->live = 1;
	s->t0 = clock_mono_ms();
	s->next = g->sessions;
	if (g->sessions)
		g->sessions->prev = s;
	g->sessions = s;
	g->nsessions++;
	lws_set_timer_usecs(s->wsi, (lws_usec_t)g->ping_ms * 1000);

	/* single use (WS-24): whoever takes it first runs it; a second connection that passed the
	 * check at the same moment receives an error instead of the reference's silent hang (DIS-10) */
	int taken = store_exec_take(g->store, s->exec_id, &stored, &e);
	if (taken > 0 && model_parse_stored_execution(stored, owner, sizeof owner, &s->req, &e) == 0)
		s->have_req = 1;
	free(stored);
	if (!s->have_req || strcmp(owner, s->runner) != 0) {
		log_warn("execution could not be taken", "runner", s->runner, "execution", s->exec_id,
		         "error", taken < 0 ? e.msg : "already taken");
		s->abandoned = 1;
		finish(s, WSMSG_ERR_GENERIC, 0);
		return;
	}
	send_control(s, wsmsg_start);

	/* connecting is an activity: the runner's inactivity deadline moves (RUN-11) */
	struct runner run;
	int alive = store_runner_lookup(g->store, s->runner, 1, &run, &e);
	if (alive > 0) {
		s->deadline_ms = run.deadline_ms;
		snprintf(s->alloc, sizeof s->alloc, "%s", run.alloc_id);
	}
	if (alive == 0 || store_time_ms(g->store, &s->start_ms, &e) < 0) {
		s->abandoned = 1;
		finish(s, alive == 0 ? WSMSG_ERR_STOPPED : WSMSG_ERR_GENERIC, 0);
		return;
	}
	char tl[24];
	log_debug("execution starting", "runner", s->runner, "execution", s->exec_id, "timeLimit",
	          log_int(tl, s->req.time_limit));
	start_program(s);
	if (s->finished)
		return;
	if (s->req.time_limit > 0)
		schedule(s, &s->sul_limit, on_time_limit, (int)(s->req.time_limit * 1000));
	schedule(s, &s->sul_poll, on_poll, GATE_POLL_MS);
}

void session_on_receive(struct session *s, const void *in, size_t len)
{
	/* raw stdin bytes (text or binary frames alike); after the end they go nowhere */
	if (!s->have_req || s->finished || s->main_ended || s->abandoned || !len)
		return;
	if (s->main_started && !s->pend_len) {
		ssize_t n = nomad_exec_write_stdin(s->x[ROLE_MAIN], in, len);
		if (n < 0)
			return;
		in = (const char *)in + n;
		len -= (size_t)n;
		if (!len)
			return;
	}
	/* held input is at most one received chunk: reading from the client pauses until Nomad
	 * took it (x_writable), so a fast typist back-pressures instead of growing memory */
	unsigned char *p = realloc(s->pend, s->pend_len + len);
	if (!p)
		return;
	s->pend = p;
	memcpy(s->pend + s->pend_len, in, len);
	s->pend_len += len;
	if (!s->rx_paused) {
		s->rx_paused = 1;
		lws_rx_flow_control(s->wsi, 0);
	}
}

int session_on_peer_close(struct session *s)
{
	/* WS-19: no terminal message, the program is stopped, the runner stays; our close frame
	 * says 1000 whatever the client's said */
	if (!s->finished) {
		s->finished = 1;
		s->outcome = "client closed";
		drop_queue(s);
		log_end(s);
	}
	cancel_program(s, 1);
	lws_close_reason(s->wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
	return -1;
}

void session_on_client_gone(struct session *s)
{
	if (!s->wsi)
		return;
	lws_set_opaque_user_data(s->wsi, NULL);
	s->wsi = NULL;
	drop_queue(s);
	free(s->pend);
	s->pend = NULL;
	s->pend_len = 0;
	if (s->live && !s->finished) {
		s->finished = 1;
		s->outcome = "client gone";
		log_end(s);
	}
	if (s->live)
		cancel_program(s, 1);
	maybe_free(s);
}

/* ---- leftovers ----------------------------------------------------------------------------- */

/* After an execution that did not end cleanly (cancelled, failed, stderr stopped), its directory
 * (FIFO, script) may be left in the runner's /tmp: a shell killed by a signal it could not trap, a side
 * that never started. One non-tty exec removes them (WS-14); it outlives the session. */
static void sweep_closed(void *ud)
{
	(void)ud;
}

static void sweep_leftovers(struct session *s)
{
	struct perr e;
	static const struct nomad_exec_callbacks cbs = {.on_closed = sweep_closed};
	char *line = s->x_err_used || s->use_script ? cmd_exec_sweep(s->dir) : NULL;
	if (!line)
		return;
	const char *argv[] = {"/bin/bash", "-c", line, NULL};
	struct nomad_exec_opts o = {.alloc_id = s->alloc, .argv = argv};
	/* the session copies argv; nothing of ours needs to outlive this call */
	if (!nomad_exec_start(s->g->ctx, &s->g->ep, &o, &cbs, NULL, &e))
		log_debug("cannot sweep an execution's leftovers", "execution", s->exec_id, "error", e.msg);
	free(line);
}

static int ended_cleanly(const struct session *s)
{
	if (!s->main_started)
		return !s->use_script; /* nothing ran, or the script may be there */
	return !s->cancelling && s->main_exit_seen && !s->main_failed &&
	       (!s->x_err_used || (s->err_exit_seen && s->err_exit_code == 0));
}

static void maybe_free(struct session *s)
{
	if (s->wsi)
		return;
	for (int r = 0; r < NROLES; r++)
		if (s->x[r])
			return;
	lws_sul_cancel(&s->sul_limit);
	lws_sul_cancel(&s->sul_grace);
	lws_sul_cancel(&s->sul_requit);
	lws_sul_cancel(&s->sul_drain);
	lws_sul_cancel(&s->sul_errkill);
	lws_sul_cancel(&s->sul_oom);
	lws_sul_cancel(&s->sul_poll);
	if (s->live) {
		if (s->prev)
			s->prev->next = s->next;
		else
			s->g->sessions = s->next;
		if (s->next)
			s->next->prev = s->prev;
		s->g->nsessions--;
	}
	if (s->live && !ended_cleanly(s) && !s->g->stopping && !s->destroying)
		sweep_leftovers(s);
	if (s->have_req)
		model_execution_free(&s->req);
	free(s->script_body);
	s->magic = 0;
	free(s);
}

void session_shutdown_all(struct gate *g)
{
	for (struct session *s = g->sessions; s; s = s->next) {
		if (!s->finished)
			finish(s, WSMSG_ERR_GENERIC, 0);
		/* the program stops with the gateway; the runner stays for the client's next try */
		cancel_program(s, 0);
	}
}

int session_clients(const struct gate *g)
{
	int n = 0;
	for (const struct session *s = g->sessions; s; s = s->next)
		n += s->wsi != NULL;
	return n;
}

int session_count(const struct gate *g, const char *runner)
{
	int n = 0;
	for (const struct session *s = g->sessions; s; s = s->next)
		n += runner ? s->wsi && strcmp(s->runner, runner) == 0 : !s->main_ended;
	return n;
}
