#!/usr/bin/env python3
"""Runs plink (argv[1:]) for ThirdPartyClientTests and exits with its status.

plink's `-proxycmd` child outlives plink (PuTTY does not stop it; it ends when the proxy closes
the channel), and a child that inherits the test runner's descriptors would keep the runner from
noticing that plink exited. So plink runs in its own session with no descriptor but 0-2
inherited, and whatever is left of that session when plink exits is terminated.
"""
import os
import signal
import subprocess
import sys

process = subprocess.Popen(sys.argv[1:], close_fds=True, start_new_session=True, stdin=subprocess.DEVNULL)
try:
    status = process.wait(timeout=120)
except subprocess.TimeoutExpired:
    status = 124
try:
    os.killpg(process.pid, signal.SIGTERM)
except ProcessLookupError:
    pass
sys.exit(status)
