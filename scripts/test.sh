#!/usr/bin/env bash
# Installs what the tests need, builds everything, checks the module layering, runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
python3 scripts/check_layering.py
swift build --build-tests
# Machine hygiene: when root's ~/.bashrc runs `pyenv init` (as on this kind of machine), every
# root login shell our tests open may run `pyenv rehash`, which holds a lock file; a session the
# tests kill mid-rehash leaves it behind and every later root shell then waits 60 s for it. A lock
# older than a minute is stale (a rehash takes seconds; waiters give up after 60 s): remove it, before
# and during the run (a younger one may belong to a running rehash: removing it lets two race).
lock="${PYENV_ROOT:-$HOME/.pyenv}/shims/.pyenv-shim"
rm -f "$lock"
( while sleep 5; do find "$lock" -maxdepth 0 -mmin +1 -delete 2>/dev/null || true; done ) &
watcher=$!
trap 'kill "$watcher" 2>/dev/null || true' EXIT
# The tests start our binaries (teleport, tctl) and real OpenSSH; they stop every process by PID.
swift test --skip-build
