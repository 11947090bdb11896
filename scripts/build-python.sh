#!/usr/bin/env bash
# Build CPython 3.13 from Debian trixie's source package, once, for the Home Assistant
# test environment (Home Assistant 2026.2 needs Python >= 3.13.2; our machines have
# 3.13.0 at most). Prints the interpreter's path on its last line.
#   LOCARA_PYTHON_CACHE  where builds are kept (default ~/.cache/locara-python)
set -euo pipefail

cache=${LOCARA_PYTHON_CACHE:-$HOME/.cache/locara-python}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$cache"

existing=$(ls -d "$cache"/3.13.*/bin/python3.13 2>/dev/null | sort -V | tail -n 1 || true)
if [ -n "$existing" ] && "$existing" -c 'import ssl, sqlite3, ctypes, lzma, bz2, zlib' 2>/dev/null; then
  echo "$existing"
  exit 0
fi

# The orig tarball trixie's python3.13 is built from, with the checksum its index gives.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "Looking up python3.13 in Debian trixie's sources…" >&2
curl -fsS "$mirror/dists/trixie/main/source/Sources.xz" | xz -dc > "$work/Sources"
read -r sha size name < <(awk '
  /^Package: python3.13$/ { p = 1 }
  p && /^Checksums-Sha256:/ { c = 1; next }
  p && c && /^ / { if ($3 ~ /orig\.tar\.xz$/) { print $1, $2, $3; exit } next }
  p && c { c = 0 }
  /^$/ { p = 0 }' "$work/Sources")
[ -n "${name:-}" ] || { echo "python3.13 not found in trixie's Sources index" >&2; exit 1; }
version=$(sed -n 's/^python3\.13_\(3\.13\.[0-9]*\)\.orig\.tar\.xz$/\1/p' <<<"$name")

echo "Downloading $name ($((size / 1048576)) MiB)…" >&2
curl -fsS "$mirror/pool/main/p/python3.13/$name" -o "$work/$name"
echo "$sha  $work/$name" | sha256sum -c --quiet -

echo "Building Python $version into $cache/$version (about 5 minutes on 2 cores)…" >&2
tar -C "$work" -xJf "$work/$name"
src=$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -n 1)
(
  cd "$src"
  ./configure --quiet --prefix="$cache/$version" --with-ensurepip=install >"$work/configure.log" 2>&1 \
    || { tail -n 30 "$work/configure.log" >&2; exit 1; }
  make --quiet -j"$(nproc)" >"$work/make.log" 2>&1 || { tail -n 30 "$work/make.log" >&2; exit 1; }
  make --quiet altinstall >"$work/install.log" 2>&1 || { tail -n 30 "$work/install.log" >&2; exit 1; }
)
"$cache/$version/bin/python3.13" -c 'import ssl, sqlite3, ctypes, lzma, bz2, zlib'
echo "$cache/$version/bin/python3.13"
