#!/bin/sh
# Builds and runs the single-thread kernel benchmark against Sources/CKernels.
# Usage: scripts/kernelbench/run.sh [isa ...]   (isa: scalar, avx2, avx512vnni; CC=clang to pick the compiler)
set -e
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
${CC:-cc} -O3 -fno-math-errno -ffp-contract=fast -I"$root/Sources/CKernels/include" \
    "$root"/Sources/CKernels/*.c "$root/scripts/kernelbench/main.c" -o "$dir/bench" -lm
"$dir/bench" "$@"
