#!/bin/sh
# Installs the Debian packages Poseidon needs to build, test and run, when they are missing.
# Idempotent: prints nothing and touches nothing when every package is present.
# `install-deps.sh deb` adds what `make deb` needs to build and check the Debian packages.
set -eu

PACKAGES="
build-essential pkg-config git
libfcgi-dev libcurl4-openssl-dev libjson-c-dev libhiredis-dev libcmocka-dev
libwebsockets-dev libyaml-dev libarchive-dev uuid-dev libseccomp-dev libcap-ng-dev
redis-server redis-tools lighttpd nginx apache2 bubblewrap slirp4netns spawn-fcgi multiwatch
curl ca-certificates procps iproute2 python3-minimal valgrind wrk chromium
clang-14 libclang-rt-14-dev libfuzzer-14-dev
help2man libfcgi-bin man-db
"
if [ "${1:-}" = deb ]; then
	PACKAGES="$PACKAGES debhelper dpkg-dev fakeroot lintian"
fi

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
# The API contract check of make integration (tests/contract) runs on Node.js with npm packages
# pinned in tests/contract/package-lock.json; any nodejs that brings npm will do (Debian's nodejs
# and npm, or a nodejs package that bundles npm, whose conflicts with Debian's npm are avoided).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	missing="$missing nodejs npm"
fi
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing Debian packages:$missing" >&2
	echo "install-deps: run 'sudo $0' (or install them yourself), then try again" >&2
	exit 1
fi

echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
# Debian starts the services it installs where an init system runs; Poseidon
# starts its own instances, so stop any the package may have started.
for s in redis-server lighttpd nginx apache2; do
	if command -v service >/dev/null 2>&1; then service "$s" stop >/dev/null 2>&1 || true; fi
done
