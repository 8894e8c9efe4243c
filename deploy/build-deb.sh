#!/bin/sh
# deploy/build-deb.sh OUTDIR: what `make deb` does. Builds the Debian packages (debian/) from a
# copy of the tree's tracked files, uncommitted changes included, in OUTDIR/poseidon-<version>/,
# so that the tree itself gains nothing; the .debs, .buildinfo and .changes land in OUTDIR.
# lintian then checks the packages: its errors fail the build, its warnings are printed.
# VERSION (the programs' -version) comes from the environment, else git describe.
set -eu

out=${1:?usage: build-deb.sh OUTDIR}
cd "$(dirname "$0")/.."
for c in dpkg-buildpackage dh lintian; do
	command -v "$c" >/dev/null || { echo "make deb: $c is missing (deploy/install-deps.sh deb)" >&2; exit 1; }
done
VERSION=${VERSION:-$(git describe --always --dirty --tags 2>/dev/null || echo unknown)}
export VERSION
pkgver=$(dpkg-parsechangelog -S Version)
arch=$(dpkg --print-architecture)
src=$out/poseidon-$pkgver

rm -rf "$src"
rm -f "$out"/poseidon_"$pkgver"_* "$out"/poseidon-dbgsym_"$pkgver"_* "$out"/nomad-local_"$pkgver"_* \
	"$out"/nomad-local-dbgsym_"$pkgver"_*
mkdir -p "$src"
# the working tree's tracked files as they are now (git stash create records them without
# touching the tree, the index or any ref; it prints nothing when there is no change)
tree=$(git stash create)
git archive --format=tar "${tree:-HEAD}" | tar -x -C "$src"

echo "make deb: building poseidon $pkgver (programs: $VERSION) in $src"
(cd "$src" && dpkg-buildpackage -b -us -uc -j"$(nproc)") > "$out/build.log" 2>&1 || {
	tail -40 "$out/build.log" >&2
	echo "make deb: dpkg-buildpackage failed; the whole log: $out/build.log" >&2
	exit 1
}
rm -rf "$src"

changes=$out/poseidon_${pkgver}_$arch.changes
echo "make deb: lintian"
lintian --info --fail-on error "$changes" | tee "$out/lintian.log" || {
	echo "make deb: lintian reports errors ($out/lintian.log)" >&2
	exit 1
}
for p in poseidon nomad-local; do
	echo "make deb: $out/${p}_${pkgver}_$arch.deb"
done
