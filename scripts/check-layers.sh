#!/usr/bin/env bash
# Checks that targets depend downward only: the layer order is the block between the layers markers in
# docs/ARCHITECTURE.md; a target may depend only on targets of strictly lower layers (product
# dependencies from other packages are not checked). Exit status 1 names every violation.
#   scripts/check-layers.sh [--dump FILE]   (FILE: saved output of `swift package dump-package`)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DUMP="$(mktemp)"
trap 'rm -f "$DUMP"' EXIT
if [ "${1:-}" = "--dump" ]; then
    cp "$2" "$DUMP"
else
    # Its own scratch folder: reading the manifest must not wait for a build holding .build's lock.
    swift package --scratch-path "${TMPDIR:-/tmp}/collm-dump-package" dump-package >"$DUMP"
fi
python3 - "$ROOT/docs/ARCHITECTURE.md" "$DUMP" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
block = re.search(r"<!-- layers:begin -->\s*```\n(.*?)```\s*<!-- layers:end -->", text, re.S)
if not block:
    sys.exit("check-layers: no layers block in docs/ARCHITECTURE.md")
layer = {}
for line in block.group(1).strip().splitlines():
    level, names = line.split(":", 1)
    for name in names.split():
        layer[name] = int(level)
package = json.load(open(sys.argv[2]))
errors = []
for target in package["targets"]:
    name = target["name"]
    if target["type"] == "test":
        continue
    if name not in layer:
        errors.append(f"{name}: not placed in any layer of docs/ARCHITECTURE.md")
        continue
    for dep in target.get("dependencies", []):
        kind = next(iter(dep))
        if kind not in ("byName", "target"):
            continue
        other = dep[kind][0]
        if other not in layer:
            continue  # a product of another package
        if layer[other] >= layer[name]:
            errors.append(f"{name} (layer {layer[name]}) depends on {other} (layer {layer[other]})")
for error in errors:
    print("check-layers:", error, file=sys.stderr)
if errors:
    sys.exit(1)
print(f"check-layers: {sum(1 for t in package['targets'] if t['type'] != 'test')} targets depend downward only")
PY
