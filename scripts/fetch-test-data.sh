#!/usr/bin/env bash
# Everything the tests need that is not in git, fetched from PyPI into git-ignored folders:
#   - llama.cpp's tokenizer test vectors (llama-cpp-python 0.3.36 sdist)
#   - Botchan (sentencepiece 0.2.3 sdist), and the perplexity slice: from "CHAPTER I", 100,000 chars
# The model itself is fetched by collm (ModelStore) on first use.
# Usage: scripts/fetch-test-data.sh [DEST]     (default: <repo>/.cache/test-data). Idempotent.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:-${COLLM_TEST_DATA:-$REPO/.cache/test-data}}"
DOWNLOADS="${COLLM_DOWNLOADS:-$REPO/.cache/downloads}"
mkdir -p "$DEST" "$DOWNLOADS"

"$REPO/scripts/fetch-tokenizer-vectors.sh" "$DEST"

if [[ ! -s "$DEST/botchan.txt" ]]; then
    tarball="$(python3 "$REPO/scripts/pypi_fetch.py" sentencepiece 0.2.3 "$DOWNLOADS" --sdist)"
    tar -xzf "$tarball" -O sentencepiece-0.2.3/test/botchan.txt > "$DEST/botchan.txt.part"
    mv "$DEST/botchan.txt.part" "$DEST/botchan.txt"
fi
if [[ ! -s "$DEST/botchan-chapter1-100k.txt" ]]; then
    python3 - "$DEST/botchan.txt" "$DEST/botchan-chapter1-100k.txt" <<'PY'
import sys
text = open(sys.argv[1], encoding="utf-8").read()
start = text.index("CHAPTER I")
open(sys.argv[2], "w", encoding="utf-8").write(text[start:start + 100_000])
PY
fi
echo "test data ready in $DEST"
