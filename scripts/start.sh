#!/usr/bin/env bash
# Builds the binaries and starts a single-node cluster (auth + proxy + node) on the embedded SQLite
# backend, with its data in ./teleport-data (a directory you can write; not /var/lib).
# Then, in another terminal: .build/debug/tctl -c teleport-data/teleport.yaml status
set -euo pipefail
cd "$(dirname "$0")/.."
# TELEPORT_SKIP_BUILD=1: the binaries are built already (the README tour test sets it).
[ -n "${TELEPORT_SKIP_BUILD:-}" ] || swift build
mkdir -p teleport-data
if [ ! -f teleport-data/teleport.yaml ]; then
    .build/debug/teleport configure --data-dir "$PWD/teleport-data/data" --cluster-name "${CLUSTER_NAME:-local.cluster}" \
        -o teleport-data/teleport.yaml
fi
exec .build/debug/teleport start -c teleport-data/teleport.yaml --diag-addr 127.0.0.1:3000 "$@"
