/* sdnotify: systemd's readiness and watchdog protocol, without libsystemd.
 *
 * Under a unit with Type=notify systemd sets $NOTIFY_SOCKET (a path, or "@name" for an abstract
 * socket) and, with WatchdogSec=, $WATCHDOG_USEC (and $WATCHDOG_PID). A daemon tells systemd its
 * state by sending one datagram of "KEY=VALUE" lines to that socket: READY=1 when it serves,
 * WATCHDOG=1 at least every WATCHDOG_USEC, STOPPING=1 when it shuts down, STATUS=... a line for
 * `systemctl status`. This module sends exactly those datagrams (sd_notify(3)'s protocol, minus
 * fd passing and credentials, which we do not need).
 *
 * Every function is a no-op returning 0 when $NOTIFY_SOCKET is unset, so programs call them
 * unconditionally: outside systemd (make run, the tests, a terminal) nothing happens.
 * Return values: 1 sent, 0 nothing to do, -1 the send failed (errno set; a daemon logs it and
 * goes on: systemd restarts it if the watchdog really starves).
 * The functions read the environment on each call and keep one piece of state (the time of the
 * last watchdog ping, for sdnotify_watchdog_tick); call them from one thread.
 */
#ifndef POSEIDON_SDNOTIFY_H
#define POSEIDON_SDNOTIFY_H

/* Sends state (one or more "KEY=VALUE" lines separated by '\n') to $NOTIFY_SOCKET. */
int sdnotify_send(const char *state);

/* READY=1 (with STATUS=status when status is not NULL). */
int sdnotify_ready(const char *status);
/* STOPPING=1 (with STATUS=status when status is not NULL). */
int sdnotify_stopping(const char *status);
/* STATUS=status: one line; '\n' in it is replaced by ' '. */
int sdnotify_status(const char *status);
/* WATCHDOG=1, now. */
int sdnotify_watchdog(void);

/* The watchdog interval in microseconds that systemd expects pings within: $WATCHDOG_USEC when
 * it is a positive number and $WATCHDOG_PID is unset or names this process; 0 otherwise (no
 * watchdog). */
long long sdnotify_watchdog_usec(void);

/* For main loops that run more often than the watchdog needs: sends WATCHDOG=1 when no ping was
 * sent in the last half interval (systemd's advice), else nothing (returns 0). No-op without a
 * watchdog. */
int sdnotify_watchdog_tick(void);

#endif
