#!/usr/bin/env bash
# Coverage-guided fuzzing with libFuzzer (README "Fuzzing"; targets in Sources/FuzzTargets).
#   scripts/fuzz.sh TARGET|all SECONDS [libFuzzer flags...]
# Builds the fuzz binary (swiftc -sanitize=fuzzer, C code with -fsanitize=fuzzer-no-link) incrementally in
# .build-fuzz, away from the normal build; then runs each target for SECONDS on its corpus in
# .cache/fuzz/TARGET (git-ignored, seeded by the target itself) plus the committed inputs in
# Tests/FuzzRegressions/TARGET. A crash, leak, timeout or out-of-memory input is saved in
# Tests/FuzzRegressions/TARGET/ (commit it with the fix: Tests/FuzzTests replays it) and the exit status is 1.
# Prints executions, executions per second and peak RSS per target.
# Environment: COLLM_MODEL (default .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf); COLLM_FUZZ_NO_BUILD=1 skips the
# build; COLLM_FUZZ_BUILD_TIMEOUT=S stops a build that takes longer than S seconds and exits 4 (.ci/run: a cold
# fuzz build is slow, and what was built is kept for the next run).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
TARGETS=(gguf tokenizer codec session openai)
if [[ $# -lt 2 ]]; then
    echo "usage: scripts/fuzz.sh TARGET|all SECONDS [libFuzzer flags...]   (targets: ${TARGETS[*]})" >&2
    exit 2
fi
which="$1"
seconds="$2"
shift 2
if [[ "$which" == all ]]; then
    selected=("${TARGETS[@]}")
elif [[ " ${TARGETS[*]} " == *" $which "* ]]; then
    selected=("$which")
else
    echo "fuzz: unknown target '$which' (targets: ${TARGETS[*]} all)" >&2
    exit 2
fi
export COLLM_MODEL="${COLLM_MODEL:-$REPO/.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
BUILD=(swift build --build-path .build-fuzz -Xswiftc -sanitize=fuzzer -Xcc -fsanitize=fuzzer-no-link --product FuzzDriver)
mkdir -p .cache/fuzz
if [[ "${COLLM_FUZZ_NO_BUILD:-}" != 1 ]]; then
    echo "== fuzz build (.build-fuzz)"
    start=$SECONDS
    rc=0
    if [[ -n "${COLLM_FUZZ_BUILD_TIMEOUT:-}" ]]; then
        timeout --kill-after=60 "$COLLM_FUZZ_BUILD_TIMEOUT" "${BUILD[@]}" >.cache/fuzz-build.log 2>&1 || rc=$?
    else
        "${BUILD[@]}" >.cache/fuzz-build.log 2>&1 || rc=$?
    fi
    grep -E 'error:|warning: .*FuzzTargets' .cache/fuzz-build.log | head -20 || true
    if [[ $rc -eq 124 || $rc -eq 137 ]]; then
        echo "fuzz: the build did not finish within ${COLLM_FUZZ_BUILD_TIMEOUT} s (kept in .build-fuzz for the next run)" >&2
        exit 4
    fi
    [[ $rc -eq 0 ]] || { echo "fuzz: build failed (exit $rc; .cache/fuzz-build.log)" >&2; exit 3; }
    echo "fuzz build: $((SECONDS - start)) s"
fi
BIN="$("${BUILD[@]}" --show-bin-path)/FuzzDriver"
[[ -x "$BIN" ]] || { echo "fuzz: no binary at $BIN" >&2; exit 3; }

# Largest input per target: enough for a small model file, a message sequence or a request body.
max_len() {
    case "$1" in
        gguf) echo 65536 ;;
        session) echo 16384 ;;
        codec) echo 8192 ;;
        *) echo 4096 ;;
    esac
}

status=0
summary=()
for target in "${selected[@]}"; do
    corpus=".cache/fuzz/$target"
    crashes="Tests/FuzzRegressions/$target"
    mkdir -p "$corpus" "$crashes"
    if [[ -z "$(ls -A "$corpus")" ]]; then
        COLLM_FUZZ_TARGET="$target" COLLM_FUZZ_SEEDS="$corpus" "$BIN" >/dev/null
    fi
    log=".cache/fuzz/$target.log"
    echo "== fuzz $target for $seconds s (corpus $corpus, crashers to $crashes/)"
    rc=0
    COLLM_FUZZ_TARGET="$target" "$BIN" "$corpus" "$crashes" -max_total_time="$seconds" -max_len="$(max_len "$target")" \
        -timeout=60 -rss_limit_mb=3072 -print_final_stats=1 -artifact_prefix="$crashes/" "$@" >"$log" 2>&1 || rc=$?
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
    rss="$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)"
    cov="$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)"
    line="$target: ${runs:-?} executions, ${rate:-?} exec/s, peak RSS ${rss:-?} MB, ${cov:-no coverage line}"
    if [[ $rc -ne 0 ]]; then
        status=1
        line="$line, FAILED (exit $rc; see $log)"
        grep -E '^(==[0-9]+==|Fatal error|.*fuzz invariant|SUMMARY|artifact_prefix|Test unit written)' "$log" | head -20 || true
    fi
    echo "$line"
    summary+=("$line")
done
if [[ ${#summary[@]} -gt 1 ]]; then
    echo "== fuzz summary"
    printf '%s\n' "${summary[@]}"
fi
exit "$status"
