#!/usr/bin/env bash
# Installs what the tests need, builds everything, checks the module layering, runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
python3 scripts/check_layering.py
swift build --build-tests
# The tests start our binaries (teleport, tctl) and real OpenSSH; they stop every process by PID.
swift test --skip-build
