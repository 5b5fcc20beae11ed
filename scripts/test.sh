#!/usr/bin/env bash
# Installs what the tests need, builds everything, checks the module layering, runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
python3 scripts/check_layering.py
swift build --build-tests
# Machine hygiene: when root's ~/.bashrc runs `pyenv init` (as on this kind of machine), every
# root shell our tests' sessions open (bash reads ~/.bashrc under SSH_CLIENT, as with sshd) runs
# `pyenv rehash`, which holds a lock file; a session the tests kill mid-rehash leaves it behind and
# every later root shell then waits 60 s for it (tests then see a silent terminal). So, before and
# during the run, a lock older than 3 s is removed (a rehash takes about 0.1 s; waiters poll every
# 0.1 s and then go on; two racing rehashes only print errors that `pyenv init` sends to /dev/null).
lock="${PYENV_ROOT:-$HOME/.pyenv}/shims/.pyenv-shim"
rm -f "$lock"
(
  while sleep 0.5; do
    [ -e "$lock" ] || continue
    age=$(( $(date +%s) - $(stat -c %Y "$lock" 2>/dev/null || date +%s) ))
    if [ "$age" -ge 3 ]; then rm -f "$lock"; fi
  done
) &
watcher=$!
trap 'kill "$watcher" 2>/dev/null || true' EXIT
# The tests start our binaries (teleport, tctl) and real OpenSSH; they stop every process by PID.
# At most 8 tests at once: each may start a cluster, real servers and clients, and an unbounded
# width put 2 cores under a load of 40 (the whole run took as long with 8).
swift test --skip-build --experimental-maximum-parallelization-width 8
