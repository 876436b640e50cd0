#!/bin/sh
# Builds and runs the single-thread kernel benchmark against Sources/CKernels.
# Usage: scripts/kernelbench/run.sh [isa ...]     (CC=clang to pick the compiler)
set -e
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${TMPDIR:-/tmp}/ckernels-bench
${CC:-cc} -O3 -fno-math-errno -ffp-contract=fast -I"$root/Sources/CKernels/include" \
    "$root"/Sources/CKernels/*.c "$root/scripts/kernelbench/main.c" -o "$out" -lm
exec "$out" "$@"
