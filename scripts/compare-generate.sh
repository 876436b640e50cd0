#!/usr/bin/env bash
# Records `collm generate --json` for every mode on five prompts, with the measured times removed, so that two
# builds can be compared byte for byte (issue 11: a refactor must not change any output).
#   scripts/compare-generate.sh record DIR [COLLM]     # writes DIR/<mode>-<n>.json (COLLM: default .build/release/collm)
#   scripts/compare-generate.sh compare DIR1 DIR2      # exit 1 and a diff when any file differs
# Split modes use the embedded cloud (f32 wire), the default split and the shipped calibration; greedy, 24 tokens.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODES=(local edge collab spec cloud naive)
PROMPTS=(
    "What is the capital of France?"
    "Write a haiku about the sea."
    "Explain photosynthesis in one sentence."
    "List three primary colors."
    "Once upon a time"
)

# Times (and what follows from them) differ between any two runs; everything else must not.
normalise() {
    python3 -c '
import json, sys
o = json.load(sys.stdin)
for key in ("timings", "token_seconds", "model_path"):
    o.pop(key, None)
if isinstance(o.get("exits"), dict):
    o["exits"].pop("rtt_ms", None)
if isinstance(o.get("failover"), dict):
    for key in ("recovery_seconds", "wait_seconds"):
        o["failover"].pop(key, None)
print(json.dumps(o, sort_keys=True, ensure_ascii=False, indent=1))
'
}

case "${1:-}" in
record)
    dir="${2:?usage: $0 record DIR [COLLM]}"
    collm="${3:-$REPO/.build/release/collm}"
    mkdir -p "$dir"
    for mode in "${MODES[@]}"; do
        for i in "${!PROMPTS[@]}"; do
            chat=(--chat)
            [[ $i -eq 4 ]] && chat=()
            "$collm" generate --json --mode "$mode" "${chat[@]}" --max-tokens 24 --prompt "${PROMPTS[$i]}" 2>/dev/null \
                | normalise > "$dir/$mode-$i.json"
            echo "recorded $mode $i: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["text"][:60].replace("\n"," "))' "$dir/$mode-$i.json")"
        done
    done
    ;;
compare)
    a="${2:?usage: $0 compare DIR1 DIR2}"
    b="${3:?usage: $0 compare DIR1 DIR2}"
    status=0
    for f in "$a"/*.json; do
        name="$(basename "$f")"
        if ! cmp -s "$f" "$b/$name"; then
            echo "differs: $name"
            diff "$f" "$b/$name" | head -20 || true
            status=1
        fi
    done
    [[ $status -eq 0 ]] && echo "identical: $(ls "$a"/*.json | wc -l) outputs"
    exit $status
    ;;
*)
    sed -n 2,6p "$0"
    exit 2
    ;;
esac
