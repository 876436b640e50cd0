#!/usr/bin/env python3
"""Measure llama.cpp (through llama-cpp-python) on a GGUF model: prefill and decode tokens per second.

Prints one JSON object with the same keys as `collm bench engine --json`:
  {"threads", "decode_tok_s", "prefill_tok_s", "decode_runs", "prefill_runs", "peak_rss_mib", ...}
(medians over --runs; extra keys describe the setup).

Protocol, per run: clear the KV cache; prefill = one llama_decode of the --prompt-tokens prompt (n_batch 512, logits
for the last position only); decode = --gen-tokens greedy steps right after that prompt, each a single-token
llama_decode followed by an argmax over the last logits (the same work our engine's greedy loop does). One untimed
warm-up run comes first. The prompt is English prose tokenized by llama.cpp itself and cut to exactly
--prompt-tokens tokens.
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time

DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

# Written for this benchmark (any prose works: speed does not depend on the words).
PASSAGE = (
    "The old harbour town woke slowly. Fishing boats came back with the tide, gulls argued over the nets, and "
    "the baker on the corner opened his shutters to let the smell of bread drift down to the water. A young "
    "teacher had arrived the week before, carrying one suitcase and a letter of introduction that nobody had "
    "asked to read. He rented a room above the tobacconist, walked to the school each morning along the sea "
    "wall, and wrote long letters home in the evenings, describing the weather, the students, and the strange "
    "customs of a place where everyone seemed to know his business before he did. "
)


def default_model_path():
    if os.environ.get("COLLM_MODEL"):
        return os.environ["COLLM_MODEL"]
    cache = os.environ.get("COLLM_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "collm")
    candidates = [
        os.path.join(cache, "models", DEFAULT_MODEL_FILE),
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".cache", "models", DEFAULT_MODEL_FILE),
    ]
    for path in candidates:
        if os.path.exists(path):
            return os.path.normpath(path)
    return os.path.normpath(candidates[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="GGUF file (default: $COLLM_MODEL, else the collm cache)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--prompt-tokens", type=int, default=256)
    ap.add_argument("--gen-tokens", type=int, default=128)
    ap.add_argument("--n-ctx", type=int, default=1024)
    ap.add_argument("--n-batch", type=int, default=512)
    ap.add_argument("--json", action="store_true", help="print only the JSON object")
    args = ap.parse_args()

    model = args.model or default_model_path()
    if not os.path.exists(model):
        sys.exit(f"bench_llamacpp: model not found: {model} (set --model or COLLM_MODEL)")
    if args.prompt_tokens + args.gen_tokens > args.n_ctx:
        sys.exit("bench_llamacpp: --prompt-tokens + --gen-tokens must fit in --n-ctx")
    if args.prompt_tokens < 1 or args.gen_tokens < 1 or args.runs < 1:
        sys.exit("bench_llamacpp: --prompt-tokens, --gen-tokens and --runs must be >= 1")

    try:
        import numpy as np
        import llama_cpp
        from llama_cpp import Llama
    except ImportError as e:
        sys.exit(f"bench_llamacpp: llama-cpp-python is not installed in this Python ({sys.executable}): {e}")

    rss_before_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    llm = Llama(
        model_path=model,
        n_ctx=args.n_ctx,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        n_batch=args.n_batch,
        verbose=False,
        logits_all=False,
    )
    ctx = llm._ctx.ctx
    n_vocab = llm.n_vocab()

    text = PASSAGE
    tokens = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
    while len(tokens) < args.prompt_tokens:
        text += PASSAGE
        tokens = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
    prompt = tokens[: args.prompt_tokens]

    def clear():
        llm.reset()
        llm._ctx.kv_cache_clear()

    def argmax_last():
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, -1), shape=(n_vocab,))
        return int(logits.argmax())

    def one_run():
        clear()
        t0 = time.perf_counter()
        llm.eval(prompt)
        token = argmax_last()
        t1 = time.perf_counter()
        generated = []
        for _ in range(args.gen_tokens):
            llm.eval([token])
            token = argmax_last()
            generated.append(token)
        t2 = time.perf_counter()
        return args.prompt_tokens / (t1 - t0), args.gen_tokens / (t2 - t1), generated

    one_run()  # warm-up: page in weights, spin up threads
    prefill_runs, decode_runs = [], []
    first_tokens = None
    for _ in range(args.runs):
        prefill, decode, generated = one_run()
        prefill_runs.append(round(prefill, 2))
        decode_runs.append(round(decode, 2))
        if first_tokens is None:
            first_tokens = generated[:16]

    result = {
        "engine": "llama.cpp",
        "llama_cpp_python_version": getattr(llama_cpp, "__version__", "?"),
        "model_path": os.path.abspath(model),
        "threads": args.threads,
        "runs": args.runs,
        "prompt_tokens": args.prompt_tokens,
        "gen_tokens": args.gen_tokens,
        "decode_tok_s": round(statistics.median(decode_runs), 2),
        "prefill_tok_s": round(statistics.median(prefill_runs), 2),
        "decode_runs": decode_runs,
        "prefill_runs": prefill_runs,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "python_baseline_rss_mib": round(rss_before_load, 1),
        "first_generated_ids": first_tokens,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"llama.cpp {result['llama_cpp_python_version']}, {args.threads} thread(s): "
            f"decode {result['decode_tok_s']} tok/s, prefill {result['prefill_tok_s']} tok/s "
            f"(median of {args.runs}; P={args.prompt_tokens}, G={args.gen_tokens}), "
            f"peak RSS {result['peak_rss_mib']} MiB"
        )
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
