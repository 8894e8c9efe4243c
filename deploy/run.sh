#!/bin/sh
# `make run`: the whole service on this machine, in the foreground, until Ctrl-C.
#
# Uses the Redis at the configured address (redis.address/redis.port, default 127.0.0.1:6379) or
# starts one there when none answers (data under run/redis, appendonly on); uses the Nomad API at
# nomad.address/nomad.port when one answers, else starts nomad-local there; then starts
# poseidon-refill, poseidon-wsgate and lighttpd with the poseidon-api workers on
# server.address:server.port (default 127.0.0.1:7200).
#
# It either serves or says why not: the ports it will listen on must be free (else one line naming
# the port and exit 1, before anything starts), one `make run` per run directory (a lock), and
# every component must come up (Redis and Nomad answer, the gateway and lighttpd accept, the API
# answers /health) or everything started is stopped again and it exits 1. Once up, it watches
# them: when one exits, it stops the rest and exits 1.
# Ctrl-C (or SIGTERM, SIGHUP) stops everything this script started, and nothing else: the daemons,
# lighttpd with its workers, and the sandboxes of the nomad-local it started (make run is a
# development stack; the systemd deployment keeps sandboxes across agent restarts instead).
#
# Daemons start through `env --default-signal`: a non-interactive shell starts `cmd &` with
# SIGINT and SIGQUIT ignored, and that would be inherited by every program in every runner.
#
# Environment: POSEIDON_BIN_DIR (built programs, set by make), POSEIDON_RUN_DIR (default ./run),
# POSEIDON_CONFIG / -config file and every POSEIDON_<SECTION>_<KEY> override, POSEIDON_API_WORKERS,
# POSEIDON_FRONT_WRITE_IDLE (lighttpd's write idle limit, default 60 s).
set -eu

SRC_DIR=$(cd "$(dirname "$0")/.." && pwd)
BIN=${POSEIDON_BIN_DIR:-$SRC_DIR/build/bin}
RUN=${POSEIDON_RUN_DIR:-$SRC_DIR/run}
mkdir -p "$RUN"
RUN=$(cd "$RUN" && pwd)
START_TIMEOUT=${POSEIDON_RUN_START_TIMEOUT:-30} # seconds each component may take to come up

say() { echo "run: $*"; }
die() { echo "run: $*" >&2; exit 1; }

cfg() { "$BIN/poseidon-api" -config-get "$1"; }
REDIS_ADDR=$(cfg redis.address)
REDIS_PORT=$(cfg redis.port)
SERVER_ADDR=$(cfg server.address)
SERVER_PORT=$(cfg server.port)
WSGATE_PORT=$(cfg wsgate.port)
NOMAD_ADDR=$(cfg nomad.address)
NOMAD_PORT=$(cfg nomad.port)
MAXBODY=$(cfg server.maxbodysize)

# One stack per run directory: a second `make run` here would share its Redis data and state.
exec 9>"$RUN/run.lock"
flock -n 9 || die "another 'make run' is using $RUN (stop it first, or set POSEIDON_RUN_DIR)"

# Does something accept connections at address $1, port $2? (0.0.0.0 and :: are reached on loopback)
listening() {
	case $1 in 0.0.0.0 | "") a=127.0.0.1 ;; :: | "[::]") a=::1 ;; *) a=$1 ;; esac
	timeout 2 bash -c ': <>"/dev/tcp/$0/$1"' "$a" "$2" 2>/dev/null
}
redis_up() { [ "$(redis-cli -h "$REDIS_ADDR" -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]; }
nomad_up() { curl -fsS -o /dev/null --max-time 2 "http://$NOMAD_ADDR:$NOMAD_PORT/v1/agent/self" 2>/dev/null; }
api_up() {
	[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$SERVER_ADDR:$SERVER_PORT/api/v1/health")" = 204 ]
}
taken() { die "$1:$2 is already in use ($3); stop what listens there or choose another port with $4"; }

# ---- before anything starts: the ports this stack will listen on must be free ----------------
listening "$SERVER_ADDR" "$SERVER_PORT" && taken "$SERVER_ADDR" "$SERVER_PORT" "the API port" POSEIDON_SERVER_PORT
listening 127.0.0.1 "$WSGATE_PORT" && taken 127.0.0.1 "$WSGATE_PORT" "poseidon-wsgate's port" POSEIDON_WSGATE_PORT
START_REDIS=1
redis_up && START_REDIS=0
[ $START_REDIS = 1 ] && listening "$REDIS_ADDR" "$REDIS_PORT" &&
	taken "$REDIS_ADDR" "$REDIS_PORT" "not by a Redis that answers" POSEIDON_REDIS_PORT
START_NOMAD=0
if [ -x "$BIN/nomad-local" ] && ! nomad_up; then
	START_NOMAD=1
	listening "$NOMAD_ADDR" "$NOMAD_PORT" &&
		taken "$NOMAD_ADDR" "$NOMAD_PORT" "not by a Nomad API that answers" POSEIDON_NOMAD_PORT
fi

# ---- starting and stopping -------------------------------------------------------------------
PIDS=""  # "name:pid" of everything started, newest first
TICK=""  # the watch loop's sleep
STOPPING=0
stop_all() {
	[ $STOPPING = 1 ] && return
	STOPPING=1
	trap '' INT TERM HUP
	say "stopping"
	[ -n "$TICK" ] && kill "$TICK" 2>/dev/null # the watch loop's sleep
	for np in $PIDS; do kill -TERM "${np#*:}" 2>/dev/null || true; done
	# give them 10 s, then kill what is left
	i=0
	for np in $PIDS; do
		while alive "${np#*:}" && [ $i -lt 100 ]; do
			i=$((i + 1))
			sleep 0.1
		done
	done
	for np in $PIDS; do
		if alive "${np#*:}"; then
			say "${np%%:*} did not stop within 10 s; killing it"
			kill -KILL "${np#*:}" 2>/dev/null || true
		fi
	done
	for np in $PIDS; do wait "${np#*:}" 2>/dev/null || true; done
	if [ $START_NOMAD = 1 ]; then
		"$BIN/nomad-local" -state "$RUN/nomad-local" -cleanup -log-level warn || true
	fi
	say "stopped"
}
trap 'stop_all; exit 0' INT TERM HUP
trap 'rc=$?; stop_all; exit $rc' EXIT

start() { # name, then the command; output goes to the terminal
	name=$1
	shift
	env --default-signal "$@" 9>&- &
	PIDS="$name:$! $PIDS"
	say "started $name (pid $!)"
}

# A process that exited stays a zombie until the shell reaps it, and kill -0 still finds it.
alive() {
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[ "${st#Z}" = "$st" ]
}

pid_of() {
	for np in $PIDS; do
		if [ "${np%%:*}" = "$1" ]; then echo "${np#*:}"; fi
	done
}

# Waits until `$2` succeeds while the process named $1 lives; fails with one line otherwise.
await() {
	name=$1 check=$2 what=$3
	pid=$(pid_of "$name")
	i=0
	until $check; do
		alive "$pid" || die "$name exited before it $what (its messages are above)"
		i=$((i + 1))
		[ $i -gt $((START_TIMEOUT * 10)) ] && die "$name did not come up within ${START_TIMEOUT} s ($what)"
		sleep 0.1
	done
	alive "$pid" || die "$name exited right after it $what (its messages are above)"
}

wsgate_up() { listening 127.0.0.1 "$WSGATE_PORT"; }
refill_up() { sleep 0.5; }

if [ $START_REDIS = 1 ]; then
	mkdir -p "$RUN/redis"
	start redis-server redis-server --bind "$REDIS_ADDR" --port "$REDIS_PORT" --dir "$RUN/redis" \
		--appendonly yes --save "" --daemonize no --loglevel warning
	await redis-server redis_up "answered PING on $REDIS_ADDR:$REDIS_PORT"
else
	say "using the Redis at $REDIS_ADDR:$REDIS_PORT"
fi

if [ $START_NOMAD = 1 ]; then
	mkdir -p "$RUN/nomad-local"
	start nomad-local "$BIN/nomad-local" -bind "$NOMAD_ADDR" -port "$NOMAD_PORT" -state "$RUN/nomad-local"
	await nomad-local nomad_up "answered on $NOMAD_ADDR:$NOMAD_PORT"
elif nomad_up; then
	say "using the Nomad API at $NOMAD_ADDR:$NOMAD_PORT"
fi
if [ -x "$BIN/poseidon-refill" ]; then
	start poseidon-refill "$BIN/poseidon-refill"
	await poseidon-refill refill_up "started"
fi
if [ -x "$BIN/poseidon-wsgate" ]; then
	start poseidon-wsgate "$BIN/poseidon-wsgate"
	await poseidon-wsgate wsgate_up "listened on 127.0.0.1:$WSGATE_PORT"
fi

export POSEIDON_SERVER_ADDRESS="$SERVER_ADDR" POSEIDON_SERVER_PORT="$SERVER_PORT"
export POSEIDON_RUN_DIR="$RUN" POSEIDON_BIN_DIR="$BIN" POSEIDON_WSGATE_PORT="$WSGATE_PORT"
export POSEIDON_WWW_DIR="$SRC_DIR/deploy/www" POSEIDON_API_WORKERS="${POSEIDON_API_WORKERS:-4}"
# lighttpd's body limit is the workers' server.maxbodysize, in kB (rounded up; lighttpd takes at
# most 2^32-1 kB); it spools bodies in the run directory; a client that takes nothing of a
# response for POSEIDON_FRONT_WRITE_IDLE seconds is cut
MAXBODY_KB=$(((MAXBODY + 1023) / 1024))
[ "$MAXBODY_KB" -gt 4294967295 ] && MAXBODY_KB=4294967295
mkdir -p "$RUN/tmp"
export POSEIDON_FRONT_MAXBODY_KB="$MAXBODY_KB" POSEIDON_FRONT_TEMP_DIR="$RUN/tmp"
export POSEIDON_FRONT_WRITE_IDLE="${POSEIDON_FRONT_WRITE_IDLE:-60}"
start lighttpd lighttpd -D -f "$SRC_DIR/lighttpd.conf"
await lighttpd api_up "answered /api/v1/health on $SERVER_ADDR:$SERVER_PORT"
say "Poseidon listens on http://$SERVER_ADDR:$SERVER_PORT/api/v1 (Ctrl-C stops)"

# ---- watching: a component that exits takes the stack down with a line that says so ----------
while :; do
	for np in $PIDS; do
		alive "${np#*:}" || die "${np%%:*} exited; stopping the rest"
	done
	sleep 1 &
	TICK=$!
	wait $TICK || true
done
