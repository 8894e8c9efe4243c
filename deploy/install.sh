#!/bin/sh
# deploy/install.sh install|uninstall: what `make install` and `make uninstall` do, run by the
# Makefile from the top of the source tree with the GNU directory variables in the environment:
#   DESTDIR (may be empty), bindir, man1dir, systemdunitdir, pkgdatadir, docdir, sysconfdir, and
#   BIN_DIR / MAN_DIR, where the build put the programs and the man pages.
#
# Installed: the five programs, their man pages, the systemd units, lighttpd.conf, the nginx and
# Apache sites, the status page, the job template, the documentation with the example
# configuration and environment file, and those two as $sysconfdir/poseidon/configuration.yaml
# and poseidon.env. The units, sites, man pages and examples name the install paths of the
# default layout (/usr/local/bin, /usr/local/share/poseidon, /usr/local/share/doc/poseidon,
# /etc/poseidon); they are rewritten for the directories given here while being installed, so
# the repository holds one copy of each.
#
# An existing configuration is never overwritten: configuration.yaml and poseidon.env are
# installed only where none exists (the examples always go to $docdir/examples), and uninstall
# removes them only while they are what install wrote. Every other file is replaced.
#
# Directories: install records every directory it had to create (below DESTDIR) in
# $pkgdatadir/.installed-dirs; uninstall removes the files it installs, then those directories
# and the package's own ones, each only when empty. Nothing else is touched. Paths must not
# contain spaces.
set -eu

action=${1:-}
: "${DESTDIR=}" "${bindir:?}" "${man1dir:?}" "${systemdunitdir:?}" "${pkgdatadir:?}" "${docdir:?}"
: "${sysconfdir:?}" "${BIN_DIR:?}" "${MAN_DIR:?}"
PROGRAMS="poseidon-api poseidon-refill poseidon-wsgate poseidon-admin nomad-local"
MANIFEST=$pkgdatadir/.installed-dirs

# The default layout's paths in a file, pointed at the directories of this install.
rewrite() {
	sed -e "s|/etc/poseidon|$sysconfdir/poseidon|g" \
	    -e "s|/usr/local/share/doc/poseidon|$docdir|g" \
	    -e "s|/usr/local/share/poseidon|$pkgdatadir|g" \
	    -e "s|/usr/local/bin|$bindir|g" "$1"
}

# "source destination mode rewrite(r|-)", one line per installed file but the configuration.
items() {
	for p in $PROGRAMS; do echo "$BIN_DIR/$p $bindir/$p 0755 -"; done
	for p in $PROGRAMS; do echo "$MAN_DIR/$p.1 $man1dir/$p.1 0644 r"; done
	for u in deploy/systemd/*; do echo "$u $systemdunitdir/${u##*/} 0644 r"; done
	echo "lighttpd.conf $pkgdatadir/lighttpd.conf 0644 r"
	echo "deploy/nginx/poseidon.conf $pkgdatadir/nginx/poseidon.conf 0644 r"
	echo "deploy/apache/poseidon.conf $pkgdatadir/apache/poseidon.conf 0644 r"
	echo "deploy/template-job.json $pkgdatadir/template-job.json 0644 -"
	find deploy/www -type f | LC_ALL=C sort | while read -r f; do
		echo "$f $pkgdatadir/www/${f#deploy/www/} 0644 -"
	done
	for d in docs/*.md; do echo "$d $docdir/${d##*/} 0644 -"; done
	echo "deploy/configuration.example.yaml $docdir/examples/configuration.example.yaml 0644 r"
	echo "deploy/poseidon.env.example $docdir/examples/poseidon.env.example 0644 r"
}

# Installed only where absent (mode 0640: they may hold tokens and passwords).
configs() {
	echo "deploy/configuration.example.yaml $sysconfdir/poseidon/configuration.yaml 0640 r"
	echo "deploy/poseidon.env.example $sysconfdir/poseidon/poseidon.env 0640 r"
}

# The package's own directories, removed by uninstall when empty even without the record.
own_dirs() {
	printf '%s\n' "$pkgdatadir/www/status" "$pkgdatadir/www/errors" "$pkgdatadir/www" \
		"$pkgdatadir/nginx" "$pkgdatadir/apache" "$pkgdatadir" "$docdir/examples" "$docdir" \
		"$sysconfdir/poseidon"
}

put() { # source destination mode rewrite
	mkdir -p "$DESTDIR$(dirname "$2")"
	if [ "$4" = r ]; then
		rewrite "$1" > "$DESTDIR$2.tmp"
		chmod "$3" "$DESTDIR$2.tmp"
		mv -f "$DESTDIR$2.tmp" "$DESTDIR$2"
	else
		install -m "$3" "$1" "$DESTDIR$2"
	fi
	echo "  INSTALL $DESTDIR$2"
}

do_install() {
	for p in $PROGRAMS; do
		[ -x "$BIN_DIR/$p" ] || { echo "install: $BIN_DIR/$p is missing: run make first" >&2; exit 1; }
		[ -f "$MAN_DIR/$p.1" ] || { echo "install: $MAN_DIR/$p.1 is missing: run make man first" >&2; exit 1; }
	done
	[ -z "$DESTDIR" ] || mkdir -p "$DESTDIR"
	items | while read -r src dst mode rw; do put "$src" "$dst" "$mode" "$rw"; done
	configs | while read -r src dst mode rw; do
		if [ -e "$DESTDIR$dst" ]; then
			echo "  KEEP    $DESTDIR$dst (exists; the example is in $docdir/examples)"
			continue
		fi
		put "$src" "$dst" "$mode" "$rw"
		# the services run as poseidon and read it; outside a staging directory, where the
		# system user exists (the .deb's postinst does this with dpkg-statoverride)
		if [ -z "$DESTDIR" ] && getent group poseidon >/dev/null 2>&1; then
			chgrp poseidon "$dst"
		fi
	done
}

# Every directory of an installed file, and its parents, that did not exist before: found
# before anything is installed, recorded after.
missing_dirs() {
	{ items; configs; } | while read -r src dst mode rw; do
		d=$DESTDIR$(dirname "$dst")
		while [ ! -d "$d" ] && [ "$d" != "$DESTDIR" ] && [ "$d" != / ]; do
			echo "${d#"$DESTDIR"}"
			d=$(dirname "$d")
		done
	done | LC_ALL=C sort -u
}

case $action in
install)
	new=$(missing_dirs)
	do_install
	{ cat "$DESTDIR$MANIFEST" 2>/dev/null || true; [ -z "$new" ] || printf '%s\n' "$new"; } |
		LC_ALL=C sort -u > "$DESTDIR$MANIFEST.tmp"
	mv -f "$DESTDIR$MANIFEST.tmp" "$DESTDIR$MANIFEST"
	;;
uninstall)
	items | while read -r src dst mode rw; do
		if [ -e "$DESTDIR$dst" ]; then
			rm -f "$DESTDIR$dst"
			echo "  RM      $DESTDIR$dst"
		fi
	done
	configs | while read -r src dst mode rw; do
		[ -e "$DESTDIR$dst" ] || continue
		if rewrite "$src" | cmp -s - "$DESTDIR$dst"; then
			rm -f "$DESTDIR$dst"
			echo "  RM      $DESTDIR$dst"
		else
			echo "  KEEP    $DESTDIR$dst (changed since install; remove it yourself)"
		fi
	done
	dirs=$(cat "$DESTDIR$MANIFEST" 2>/dev/null || true)
	rm -f "$DESTDIR$MANIFEST"
	# deepest first, each only when empty
	{ [ -z "$dirs" ] || printf '%s\n' "$dirs"; own_dirs; } | LC_ALL=C sort -u -r | while read -r d; do
		[ -d "$DESTDIR$d" ] && rmdir "$DESTDIR$d" 2>/dev/null && echo "  RMDIR   $DESTDIR$d"
		:
	done
	;;
*)
	echo "usage: $0 install|uninstall (run by make install / make uninstall)" >&2
	exit 2
	;;
esac
