#!/usr/bin/env bash
# Fetch llama.cpp's tokenizer test vectors (vocab-only GGUFs with .inp/.out files) from the
# llama-cpp-python==0.3.36 source distribution on PyPI, and extract only those files.
#
# Usage: scripts/fetch-tokenizer-vectors.sh [DEST]    (default DEST: <repo>/.cache/test-data)
#
# Idempotent: does nothing when every file is already present in DEST.
#
# Why not plain `pip download --no-binary :all:`: pip has to prepare the sdist's metadata before it
# saves it, which means installing scikit-build-core, cmake and ninja from source (a CMake build).
# Instead we ask pip's own package finder (same index, certificates and proxy settings as pip)
# for the sdist link, download it with pip's session and check its sha256 from the index.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:-$REPO/.cache/test-data}"
VERSION="0.3.36"
SDIST="llama_cpp_python-$VERSION.tar.gz"
# byte-level BPE: gpt-2, llama-bpe, qwen2, starcoder (required); refact, command-r, mpt, falcon
# (more pre-tokenizers); SentencePiece: llama-spm, phi-3.
VOCABS=(gpt-2 llama-bpe qwen2 starcoder refact command-r mpt falcon llama-spm phi-3)

FILES=()
for v in "${VOCABS[@]}"; do
    FILES+=("ggml-vocab-$v.gguf" "ggml-vocab-$v.gguf.inp" "ggml-vocab-$v.gguf.out")
done

missing=0
for f in "${FILES[@]}"; do
    [[ -s "$DEST/$f" ]] || missing=1
done
if [[ $missing == 0 ]]; then
    echo "tokenizer vectors already present in $DEST"
    exit 0
fi

mkdir -p "$DEST"
DOWNLOADS="${COLLM_DOWNLOADS:-$REPO/.cache/downloads}"
mkdir -p "$DOWNLOADS"
TARBALL="$DOWNLOADS/$SDIST"

if [[ ! -s "$TARBALL" ]]; then
    echo "downloading $SDIST from PyPI into $DOWNLOADS ..."
    python3 - "$TARBALL" "$VERSION" <<'PY'
import hashlib, os, sys
from pip._internal.network.session import PipSession
from pip._internal.index.collector import LinkCollector
from pip._internal.index.package_finder import PackageFinder
from pip._internal.models.search_scope import SearchScope
from pip._internal.models.selection_prefs import SelectionPreferences
from pip._internal.models.format_control import FormatControl
from pip._vendor.packaging.specifiers import SpecifierSet

target, version = sys.argv[1], sys.argv[2]
index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple")
session = PipSession()
scope = SearchScope.create(find_links=[], index_urls=[index], no_index=False)
finder = PackageFinder.create(
    link_collector=LinkCollector(session=session, search_scope=scope),
    selection_prefs=SelectionPreferences(allow_yanked=False, format_control=FormatControl({":all:"}, set())),
)
best = finder.find_best_candidate("llama-cpp-python", specifier=SpecifierSet("==" + version)).best_candidate
if best is None:
    sys.exit("llama-cpp-python==%s sdist not found on %s" % (version, index))
link = best.link
print("  ", link.url)
digest = hashlib.sha256()
tmp = target + ".part"
with session.get(link.url, stream=True) as resp:
    resp.raise_for_status()
    with open(tmp, "wb") as out:
        for chunk in resp.iter_content(chunk_size=1 << 20):
            out.write(chunk)
            digest.update(chunk)
if link.hash_name == "sha256" and link.hash and digest.hexdigest() != link.hash:
    os.unlink(tmp)
    sys.exit("sha256 mismatch for %s: got %s, index says %s" % (link.filename, digest.hexdigest(), link.hash))
os.replace(tmp, target)
print("   sha256", digest.hexdigest())
PY
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
MEMBERS=()
for f in "${FILES[@]}"; do
    MEMBERS+=("llama_cpp_python-$VERSION/vendor/llama.cpp/models/$f")
done
tar -xzf "$TARBALL" -C "$TMP" "${MEMBERS[@]}"
for f in "${FILES[@]}"; do
    mv -f "$TMP/llama_cpp_python-$VERSION/vendor/llama.cpp/models/$f" "$DEST/$f"
done
echo "tokenizer vectors extracted into $DEST:"
ls -l "$DEST"
