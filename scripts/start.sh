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
# The web terminal and the recordings player use xterm.js from Debian (never committed here).
if [ ! -f /usr/share/nodejs/xterm/lib/xterm.js ] && ! { [ -f /usr/share/javascript/xterm/xterm.js ] && ! grep -q 'require(' /usr/share/javascript/xterm/xterm.js; }; then
    echo "note: xterm.js is not installed: the web UI's terminal and player need it (apt-get install libjs-xterm node-xterm)" >&2
fi
cat <<EOF
Starting a single-node cluster (auth + proxy + node) with its data in $PWD/teleport-data.
Where to log in, once it says "teleport is ready":
  proxy (tsh and the signup pages): https://127.0.0.1:3080   (self-signed certificate: tsh login needs --insecure)
  web UI (servers, terminal, sessions, recordings): https://127.0.0.1:3080/web/login
  in another terminal:  export PATH=$PWD/.build/debug:\$PATH
                        tctl -c teleport-data/teleport.yaml users add NAME LOGIN   # prints the signup link
                        tsh login --proxy=127.0.0.1:3080 --user=NAME --insecure
EOF
exec .build/debug/teleport start -c teleport-data/teleport.yaml --diag-addr 127.0.0.1:3000 "$@"
