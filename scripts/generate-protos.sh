#!/usr/bin/env bash
# Regenerates the Swift code for the edge <-> cloud gRPC protocol.
#
#   Protos/collm/v1/*.proto  ->  Sources/CollabProtocol/Generated/*.pb.swift, *.grpc.swift
#
# The generated files are committed: a normal `swift build` never runs protoc or the plugins.
# Run this script after editing a .proto file, then commit the .proto and the regenerated files together.
#
# What it needs, all offline:
#   - protoc: Debian's protobuf-compiler (installed with apt-get when missing),
#   - protoc-gen-swift (apple/swift-protobuf) and protoc-gen-grpc-swift-2 (grpc/grpc-swift-protobuf), built from the
#     package's own pinned dependencies in a separate scratch path (.build-protoc, git-ignored). The first build
#     takes ~10 minutes on 2 cores; later runs reuse it.
#
# Idempotent: running it twice produces the same files.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PROTO_ROOT="Protos"
OUT_DIR="Sources/CollabProtocol/Generated"
SCRATCH="${PROTOC_SCRATCH_PATH:-.build-protoc}"

log() { printf '[generate-protos] %s\n' "$*"; }

# 1. protoc
if ! command -v protoc >/dev/null 2>&1; then
    log "protoc not found: installing Debian's protobuf-compiler"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    $SUDO DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler
fi
log "protoc: $(command -v protoc) ($(protoc --version))"

# 2. plugins, built from the package's dependencies (same versions as the runtime libraries).
log "building protoc-gen-swift and protoc-gen-grpc-swift-2 in $SCRATCH (debug; slow the first time)"
swift build --scratch-path "$SCRATCH" --product protoc-gen-swift
swift build --scratch-path "$SCRATCH" --product protoc-gen-grpc-swift-2
BIN_DIR="$(swift build --scratch-path "$SCRATCH" --show-bin-path)"
PROTOC_GEN_SWIFT="$BIN_DIR/protoc-gen-swift"
PROTOC_GEN_GRPC="$BIN_DIR/protoc-gen-grpc-swift-2"
for plugin in "$PROTOC_GEN_SWIFT" "$PROTOC_GEN_GRPC"; do
    [ -x "$plugin" ] || { log "missing plugin: $plugin"; exit 1; }
done
log "plugins: $PROTOC_GEN_SWIFT, $PROTOC_GEN_GRPC"

# 3. generate into a temporary directory, then replace the committed files only if something changed.
mapfile -t PROTOS < <(cd "$PROTO_ROOT" && find . -name '*.proto' | sed 's|^\./||' | LC_ALL=C sort)
if [ "${#PROTOS[@]}" -eq 0 ]; then log "no .proto files under $PROTO_ROOT"; exit 1; fi
log "protos: ${PROTOS[*]}"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# FileNaming=PathToUnderscores: collm/v1/collab.proto -> collm_v1_collab.pb.swift (flat target folder, unique names).
protoc \
    --proto_path="$PROTO_ROOT" \
    --plugin=protoc-gen-swift="$PROTOC_GEN_SWIFT" \
    --plugin=protoc-gen-grpc-swift-2="$PROTOC_GEN_GRPC" \
    --swift_out="$TMP" \
    --swift_opt=Visibility=Public,FileNaming=PathToUnderscores \
    --grpc-swift-2_out="$TMP" \
    --grpc-swift-2_opt=Visibility=Public,Server=true,Client=true,FileNaming=PathToUnderscores \
    "${PROTOS[@]}"

mkdir -p "$OUT_DIR"
changed=0
# Remove generated files whose .proto is gone.
for f in "$OUT_DIR"/*.pb.swift "$OUT_DIR"/*.grpc.swift; do
    [ -e "$f" ] || continue
    if [ ! -e "$TMP/$(basename "$f")" ]; then
        rm -f "$f"; log "removed stale $f"; changed=1
    fi
done
for f in "$TMP"/*.swift; do
    dest="$OUT_DIR/$(basename "$f")"
    if [ -e "$dest" ] && cmp -s "$f" "$dest"; then
        log "unchanged $dest"
    else
        cp "$f" "$dest"; log "wrote $dest"; changed=1
    fi
done
if [ "$changed" -eq 0 ]; then log "generated code already up to date"; else log "done: commit $PROTO_ROOT and $OUT_DIR together"; fi
