#!/usr/bin/env bash
# Builds llama.cpp's tools (llama-server, llama-bench, llama-perplexity, llama-tokenize) from the
# llama-cpp-python==0.3.36 source distribution into the git-ignored folder .cache/llama.cpp/ (GGML_NATIVE,
# CPU only). They are the peers the benchmarks measure side by side with collm.
#
# Usage: scripts/build-llama.sh [--jobs N] [--quiet]
#   Prints the bin folder on stdout when done. Idempotent: a finished build is reused.
#   Installs cmake with apt-get when it is missing. Takes ~10 minutes on 2 cores the first time.
#   Exit status 1 (with the reason on stderr) when llama.cpp cannot be built here.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION=0.3.36
JOBS="$(nproc)"
QUIET=0
while [ $# -gt 0 ]; do
    case "$1" in
        --jobs) JOBS="$2"; shift 2 ;;
        --quiet) QUIET=1; shift ;;
        -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-llama: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

# The same cache collm uses ($COLLM_CACHE, else ~/.cache/collm), so `collm bench load` finds it.
DEST="${COLLM_CACHE:-$HOME/.cache/collm}/llama.cpp"
BIN="$DEST/build/bin"
TOOLS="llama-server llama-bench llama-perplexity llama-tokenize"
say() { [ "$QUIET" = 1 ] || echo "build-llama: $*" >&2; }

done_already=1
for tool in $TOOLS; do [ -x "$BIN/$tool" ] || done_already=0; done
if [ "$done_already" = 1 ] && [ -f "$DEST/VERSION" ] && [ "$(cat "$DEST/VERSION")" = "$VERSION" ]; then
    echo "$BIN"
    exit 0
fi

if ! command -v cmake >/dev/null 2>&1; then
    say "installing cmake with apt-get"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake; } >&2 ||
        { echo "build-llama: cmake is missing and could not be installed" >&2; exit 1; }
fi
command -v c++ >/dev/null 2>&1 || { echo "build-llama: no C++ compiler (c++) on PATH" >&2; exit 1; }

mkdir -p "$DEST"
SRC="$DEST/src"
if [ ! -f "$SRC/CMakeLists.txt" ]; then
    say "fetching the llama-cpp-python==$VERSION source distribution from PyPI"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    archive="$(python3 "$ROOT/scripts/pypi_fetch.py" llama-cpp-python "$VERSION" "$tmp" --sdist)" ||
        { echo "build-llama: could not download the sdist" >&2; exit 1; }
    tar -xzf "$archive" -C "$tmp"
    rm -rf "$SRC"
    mv "$tmp"/llama_cpp_python-"$VERSION"/vendor/llama.cpp "$SRC"
fi

say "configuring (cmake, GGML_NATIVE=ON, CPU only)"
cmake -S "$SRC" -B "$DEST/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON \
    >"$DEST/configure.log" 2>&1 || { echo "build-llama: cmake configure failed (see $DEST/configure.log)" >&2; exit 1; }
say "building $TOOLS with $JOBS jobs (log: $DEST/build.log)"
# shellcheck disable=SC2086
cmake --build "$DEST/build" --config Release -j "$JOBS" --target $TOOLS >"$DEST/build.log" 2>&1 ||
    { echo "build-llama: build failed (see $DEST/build.log)" >&2; tail -n 20 "$DEST/build.log" >&2; exit 1; }
echo "$VERSION" >"$DEST/VERSION"
echo "$BIN"
