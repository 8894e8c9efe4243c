#!/bin/sh
# `make run`: the whole service on this machine, in the foreground, until Ctrl-C.
#
# Uses the Redis at the configured address (redis.address/redis.port, default 127.0.0.1:6379) or
# starts one there when none answers (data under run/redis, appendonly on); then starts the
# daemons that are built (nomad-local, poseidon-refill, poseidon-wsgate) and lighttpd with the
# poseidon-api workers on server.address:server.port (default 127.0.0.1:7200).
# Ctrl-C (or SIGTERM) stops everything this script started, and nothing else.
#
# Environment: POSEIDON_BIN_DIR (built programs, set by make), POSEIDON_RUN_DIR (default ./run),
# POSEIDON_CONFIG / -config file and every POSEIDON_<SECTION>_<KEY> override, POSEIDON_API_WORKERS.
set -eu

SRC_DIR=$(cd "$(dirname "$0")/.." && pwd)
BIN=${POSEIDON_BIN_DIR:-$SRC_DIR/build/bin}
RUN=${POSEIDON_RUN_DIR:-$SRC_DIR/run}
mkdir -p "$RUN"
RUN=$(cd "$RUN" && pwd)

cfg() { "$BIN/poseidon-api" -config-get "$1"; }
REDIS_ADDR=$(cfg redis.address)
REDIS_PORT=$(cfg redis.port)
SERVER_ADDR=$(cfg server.address)
SERVER_PORT=$(cfg server.port)
WSGATE_PORT=$(cfg wsgate.port)
NOMAD_ADDR=$(cfg nomad.address)
NOMAD_PORT=$(cfg nomad.port)

PIDS=""
stop_all() {
	trap - INT TERM EXIT
	echo "run: stopping"
	for p in $PIDS; do kill -TERM "$p" 2>/dev/null || true; done
	for p in $PIDS; do wait "$p" 2>/dev/null || true; done
	exit 0
}
trap stop_all INT TERM EXIT

start() { # name, then the command; output goes to the terminal with a prefix-free log format
	name=$1
	shift
	"$@" &
	PIDS="$! $PIDS"
	echo "run: started $name (pid $!)"
}

if [ "$(redis-cli -h "$REDIS_ADDR" -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]; then
	echo "run: using the Redis at $REDIS_ADDR:$REDIS_PORT"
else
	mkdir -p "$RUN/redis"
	start redis-server redis-server --bind "$REDIS_ADDR" --port "$REDIS_PORT" --dir "$RUN/redis" \
		--appendonly yes --save "" --daemonize no --loglevel warning
	i=0
	until [ "$(redis-cli -h "$REDIS_ADDR" -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]; do
		i=$((i + 1))
		[ $i -gt 100 ] && { echo "run: redis-server did not start" >&2; exit 1; }
		sleep 0.1
	done
fi

if [ -x "$BIN/nomad-local" ]; then
	if curl -fsS "http://$NOMAD_ADDR:$NOMAD_PORT/v1/agent/self" >/dev/null 2>&1; then
		echo "run: using the Nomad API at $NOMAD_ADDR:$NOMAD_PORT"
	else
		mkdir -p "$RUN/nomad-local"
		start nomad-local "$BIN/nomad-local" -bind "$NOMAD_ADDR" -port "$NOMAD_PORT" -state "$RUN/nomad-local"
	fi
fi
[ -x "$BIN/poseidon-refill" ] && start poseidon-refill "$BIN/poseidon-refill"
[ -x "$BIN/poseidon-wsgate" ] && start poseidon-wsgate "$BIN/poseidon-wsgate"

export POSEIDON_SERVER_ADDRESS="$SERVER_ADDR" POSEIDON_SERVER_PORT="$SERVER_PORT"
export POSEIDON_RUN_DIR="$RUN" POSEIDON_BIN_DIR="$BIN" POSEIDON_WSGATE_PORT="$WSGATE_PORT"
export POSEIDON_WWW_DIR="$SRC_DIR/deploy/www" POSEIDON_API_WORKERS="${POSEIDON_API_WORKERS:-4}"
start lighttpd lighttpd -D -f "$SRC_DIR/lighttpd.conf"
echo "run: Poseidon listens on http://$SERVER_ADDR:$SERVER_PORT/api/v1 (Ctrl-C stops)"
wait
