#!/usr/bin/env bash
# SSH benchmark (see bench/ssh.py): OpenSSH direct, OpenSSH -J, and tsh ssh through our proxy.
# Build first: swift build -c release --scratch-path .build-release
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 bench/ssh.py "$@"
