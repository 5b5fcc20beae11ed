#!/usr/bin/env python3
"""The web terminal's cost: keystroke echo round trip through the browser's terminal versus `tsh ssh`,
and many concurrent web terminals.

Starts `teleport start` (auth + proxy + SSH service, one process) with bench/webcluster.py, signs a
user up (password + TOTP), then:

1. echo round trip in the browser: Debian's chromium (Playwright) signs in, opens
   /web/terminal?node=...&login=..., and in the page sends one keystroke at a time through xterm.js's
   input path (the WebSocket), timing until the echoed character is in xterm.js's buffer; KEYS
   keystrokes (a line is cleared with ^U every 40 keys, untimed);
2. the same through `tsh ssh` in a pseudo-terminal (Python's pty module): write a byte, read until
   its echo arrives;
3. CONCURRENT web terminals at once from Python (`websockets`), each running `echo` and reading
   the answer back; failures counted; the daemon's RSS (proxy and node are one process here) before
   and with all of them open gives KiB per terminal.

Every wait has a timeout; the daemon is stopped by PID.

    bench/web_terminal.py [--bin .build/debug] [--keys 500] [--concurrent 100]
"""
import argparse
import asyncio
import os
import pty
import re
import select
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from webcluster import CHROMIUM, ROOT, BenchCluster, insecure_context, percentile  # noqa: E402

# Sends the keystrokes inside the page: xterm.js's input handler (what a key press calls) sends
# the byte on the WebSocket; the time is taken when the echo is in xterm.js's buffer.
BROWSER_LOOP = r"""
async ([keys]) => {
  var term = window.teleportTerm;
  function line() { var b = term._core.buffer; return b.translateBufferLineToString(b.ybase + b.y, true); }
  function settle(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }
  async function until(test, limit) {
    var start = performance.now();
    while (!test()) {
      if (performance.now() - start > limit) { throw new Error("no echo within " + limit + " ms; line: " + line()); }
      await new Promise(function (r) { setTimeout(r, 0); });
    }
  }
  var times = [], typed = "", letters = "abcdefghij";
  for (var i = 0; i < keys; i++) {
    if (typed.length === 40) {
      term._core.handler("\x15");
      typed = "";
      await settle(100);
      await until(function () { return /[#$] ?$/.test(line()); }, 10000);
    }
    var c = letters[i % letters.length];
    typed += c;
    var expected = typed;
    var t0 = performance.now();
    term._core.handler(c);
    await until(function () { return line().endsWith(expected); }, 10000);
    times.push(performance.now() - t0);
  }
  term._core.handler("\x15");
  return times;
}
"""


def browser_round_trips(cluster, user, node, login, keys):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        try:
            context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 800})
            tab = context.new_page()
            tab.set_default_timeout(60_000)
            tab.goto(cluster.base + "/web/login")
            tab.get_by_label("User name").fill(user.name)
            tab.get_by_label("Password").fill(user.password)
            tab.get_by_label("Authenticator code").fill(user.codes.next())
            tab.get_by_role("button", name="Sign in").click()
            tab.wait_for_url(cluster.base + "/web/")
            cookie = next(c for c in context.cookies() if c["name"] == "__Host-session")["value"]
            tab.goto(f"{cluster.base}/web/terminal?node={node}&login={login}")
            tab.wait_for_function("() => window.teleportTerminalText && /[#$] ?$/m.test(window.teleportTerminalText())", timeout=60_000)
            times = tab.evaluate(BROWSER_LOOP, [keys])
            return times, cookie
        finally:
            browser.close()


def tsh_round_trips(cluster, user, node, login, keys):
    identity = os.path.join(cluster.work, "bench.id")
    cluster.tctl("auth", "sign", f"--user={user.name}", f"--out={identity}")
    command = [os.path.join(cluster.bin, "tsh"), "-i", identity, f"--proxy=127.0.0.1:{cluster.web_port}", "--insecure",
               "ssh", "-t", f"{login}@{node}"]
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "xterm"
        os.execv(command[0], command)
    seen = b""

    def read_until(pattern, limit):
        nonlocal seen
        deadline = time.monotonic() + limit
        while not re.search(pattern, seen):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"tsh: no {pattern!r} within {limit} s; got {seen[-200:]!r}")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                try:
                    seen += os.read(fd, 65536)
                except OSError:
                    raise TimeoutError(f"tsh ended: {seen[-300:]!r}")
    try:
        read_until(rb"[#$] ?$", 60)
        times, typed = [], 0
        for i in range(keys):
            if typed == 40:
                os.write(fd, b"\x15")
                typed = 0
                time.sleep(0.1)
                seen = b""
            c = b"abcdefghij"[i % 10:i % 10 + 1]
            seen = b""
            t0 = time.monotonic()
            os.write(fd, c)
            read_until(re.escape(c), 10)
            times.append((time.monotonic() - t0) * 1000)
            typed += 1
        os.write(fd, b"\x15exit\r")
        return times
    finally:
        try:
            os.kill(pid, 15)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        os.close(fd)


async def one_terminal(cluster, cookie, node, login, index, opened, release):
    from websockets.asyncio.client import connect
    marker = f"bench-{index}-{index * 2 + 1}"
    async with connect(f"wss://127.0.0.1:{cluster.web_port}/webapi/terminal?node={node}&login={login}",
                       ssl=insecure_context(), origin=f"https://127.0.0.1:{cluster.web_port}",
                       additional_headers={"Cookie": f"__Host-session={cookie}"}, open_timeout=60, max_queue=64) as ws:
        seen = b""

        async def read_until(pattern):
            nonlocal seen
            while not re.search(pattern, seen):
                message = await ws.recv()
                if isinstance(message, bytes):
                    seen += message
        await asyncio.wait_for(read_until(rb"[#$] ?$"), 120)
        await ws.send(f"echo bench-{index}-$(({index}*2+1))\r".encode())
        await asyncio.wait_for(read_until(re.escape(marker.encode()) + rb"\r?\n"), 120)
        opened.append(index)
        await asyncio.wait_for(release.wait(), 300)
        await ws.send(b"exit\r")


async def concurrent_terminals(cluster, cookie, node, login, count):
    opened, release = [], asyncio.Event()
    tasks = [asyncio.create_task(one_terminal(cluster, cookie, node, login, i, opened, release)) for i in range(count)]
    deadline = time.monotonic() + 240
    while len(opened) + sum(1 for t in tasks if t.done()) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    await asyncio.sleep(1)
    rss_open = cluster.rss_kib()
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    return len(opened), failures, rss_open


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=os.path.join(ROOT, ".build", "debug"))
    parser.add_argument("--keys", type=int, default=500)
    parser.add_argument("--concurrent", type=int, default=100)
    args = parser.parse_args()
    login = "root" if os.geteuid() == 0 else os.environ.get("USER", "root")
    cluster = BenchCluster(args.bin, ssh=True, name="bench")
    try:
        node = "bench-node"
        user = cluster.add_web_user("bench", roles="access", logins=login)
        # Let the node's heartbeat reach the auth service before the first connect.
        deadline = time.monotonic() + 60
        while node not in cluster.tctl("nodes", "ls").stdout and time.monotonic() < deadline:
            time.sleep(0.5)
        web, cookie = browser_round_trips(cluster, user, node, login, args.keys)
        tsh = tsh_round_trips(cluster, user, node, login, args.keys)
        print(f"keystroke echo, {args.keys} keys (debug build unless --bin says otherwise):")
        print(f"  web terminal (browser): p50 {percentile(web, 50):.2f} ms, p99 {percentile(web, 99):.2f} ms")
        print(f"  tsh ssh (pty):          p50 {percentile(tsh, 50):.2f} ms, p99 {percentile(tsh, 99):.2f} ms")
        print(f"  ratio web/tsh:          p50 {percentile(web, 50) / percentile(tsh, 50):.2f}x, "
              f"p99 {percentile(web, 99) / percentile(tsh, 99):.2f}x")
        time.sleep(2)
        rss_before = cluster.rss_kib()
        t0 = time.monotonic()
        opened, failures, rss_open = asyncio.run(concurrent_terminals(cluster, cookie, node, login, args.concurrent))
        elapsed = time.monotonic() - t0
        print(f"{args.concurrent} concurrent web terminals: {opened} echoed, {len(failures)} failures "
              f"({elapsed:.1f} s); daemon RSS {rss_before} KiB -> {rss_open} KiB with all open: "
              f"{(rss_open - rss_before) / max(args.concurrent, 1):.0f} KiB per terminal (proxy and node in one process)")
        for failure in failures[:5]:
            print(f"  failure: {type(failure).__name__}: {failure}")
        return 1 if failures or opened < args.concurrent else 0
    finally:
        cluster.close()


if __name__ == "__main__":
    sys.exit(main())
