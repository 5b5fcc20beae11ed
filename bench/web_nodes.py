#!/usr/bin/env python3
"""The web UI's resource list at scale: first paint of /web/nodes with N registered nodes.

Starts `teleport start` (auth + proxy, no SSH service) on a fresh data dir, registers N node
records through the auth API with the admin identity (one heartbeat each, as a node would send),
makes a user with `tctl users add` and completes its signup over HTTPS (password + TOTP), then
drives Debian's chromium with Playwright: logs in through the login page and loads /web/nodes
ROUNDS times, timing from the navigation to the first table row drawn (first paint of the list),
and to a search result (`node-N-1`) and the address order. Also times the page's JSON call alone
(`GET /webapi/nodes?limit=100` with the session cookie, from Python).

    bench/web_nodes.py [--bin .build/release] [--nodes 10000] [--rounds 7]

Needs a built tree (`swift build -c release --scratch-path .build-release` for meaningful figures),
/usr/bin/chromium and the playwright module (scripts/install-test-deps.sh).
"""
import argparse
import base64
import hashlib
import hmac
import http.client
import http.cookiejar
import json
import multiprocessing
import os
import re
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "bench password for the web ui 7"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def totp(secret_base32, at):
    """RFC 6238: HMAC-SHA1, 30 s steps, 6 digits."""
    key = base64.b32decode(secret_base32 + "=" * (-len(secret_base32) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(at) // 30), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(struct.unpack('>I', digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def heartbeat(keys, port, start, step, total, registered, failures, stop):
    """One worker: heartbeats its share of the node records over one keep-alive connection, a round
    every 10 s (records live 30 s, as a real node's) until `stop`."""
    context = ssl.create_default_context(cafile=os.path.join(keys, "ca.crt"))
    context.load_cert_chain(os.path.join(keys, "admin.crt"), os.path.join(keys, "admin.key"))
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context)
    conn.sock = context.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="teleport.cluster.local")
    bodies = [json.dumps({"kind": "node", "version": "v2",
                          "metadata": {"name": str(uuid.uuid5(uuid.NAMESPACE_URL, f"node-{n}")), "namespace": "default",
                                       "labels": {"env": ["prod", "staging", "dev"][n % 3], "rack": f"r{n % 50}"}},
                          "spec": {"addr": f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}:3022", "hostname": f"node-{n}"}})
              for n in range(start, total, step)]
    first = True
    while not stop.is_set():
        round_start = time.monotonic()
        for body in bodies:
            conn.request("POST", "/v1/presence/nodes", body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                with failures.get_lock():
                    failures.value += 1
        if first:
            with registered.get_lock():
                registered.value += len(bodies)
            first = False
        stop.wait(max(0, 10 - (time.monotonic() - round_start)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=os.path.join(ROOT, ".build", "debug"))
    parser.add_argument("--nodes", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if not os.access(CHROMIUM, os.X_OK):
        sys.exit(f"{CHROMIUM} is missing: run scripts/install-test-deps.sh")
    from playwright.sync_api import sync_playwright

    work = tempfile.mkdtemp(prefix="bench-web-nodes-")
    auth_port, web = free_port(), free_port()
    config = os.path.join(work, "teleport.yaml")
    with open(config, "w") as f:
        f.write(f"teleport:\n  data_dir: {work}/data\n  log:\n    severity: ERROR\n"
                f"auth_service:\n  cluster_name: bench\n  listen_addr: 127.0.0.1:{auth_port}\n"
                f"proxy_service:\n  web_listen_addr: 127.0.0.1:{web}\n  listen_addr: 127.0.0.1:{free_port()}\n"
                f"  tunnel_listen_addr: 127.0.0.1:{free_port()}\nssh_service:\n  enabled: no\n")
    log = open(os.path.join(work, "teleport.log"), "w")
    daemon = subprocess.Popen([os.path.join(args.bin, "teleport"), "start", "-c", config], stdout=log, stderr=log)
    try:
        keys = os.path.join(work, "data", "keys")
        deadline = time.monotonic() + 60
        while not os.path.exists(os.path.join(keys, "admin.crt")):
            if time.monotonic() > deadline or daemon.poll() is not None:
                sys.exit(f"teleport did not start; see {log.name}")
            time.sleep(0.05)
        time.sleep(0.5)
        start = time.monotonic()
        registered, failures, stop = multiprocessing.Value("l", 0), multiprocessing.Value("l", 0), multiprocessing.Event()
        workers = [multiprocessing.Process(target=heartbeat, args=(keys, auth_port, k, 16, args.nodes, registered, failures, stop))
                   for k in range(16)]
        for worker in workers:
            worker.start()
        while registered.value < args.nodes:
            time.sleep(0.1)
        print(f"registered {args.nodes} nodes in {time.monotonic() - start:.1f} s; they keep heartbeating every 10 s")

        tctl = [os.path.join(args.bin, "tctl"), "-c", config]
        added = subprocess.run(tctl + ["users", "add", "bench", "--roles=access", "--logins=root"], capture_output=True, text=True, check=True)
        path = re.search(r"https://[^\s/]+(/web/newuser/[0-9A-Za-z]+)", added.stdout).group(1)
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=insecure),
                                             urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        base = f"https://127.0.0.1:{web}"
        page = opener.open(base + path).read().decode()
        secret = re.search(r"secret=([A-Z2-7]+)", page).group(1)
        csrf = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page).group(1)
        enrolled = time.time()
        form = urllib.parse.urlencode({"csrf_token": csrf, "password": PASSWORD, "password_confirm": PASSWORD,
                                       "otp_code": totp(secret, enrolled)}).encode()
        opener.open(urllib.request.Request(base + path, data=form, headers={"Origin": base})).read()

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
            context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 800})
            tab = context.new_page()
            tab.set_default_timeout(60_000)
            tab.goto(base + "/web/login")
            tab.get_by_label("User name").fill("bench")
            tab.get_by_label("Password").fill(PASSWORD)
            tab.get_by_label("Authenticator code").fill(totp(secret, enrolled + 30))
            tab.get_by_role("button", name="Sign in").click()
            tab.wait_for_url(base + "/web/")

            paint, search, by_addr = [], [], []
            for _ in range(args.rounds):
                t0 = time.monotonic()
                tab.goto(base + "/web/nodes", wait_until="commit")
                tab.wait_for_selector("#nodes-body tr")
                paint.append((time.monotonic() - t0) * 1000)
                target = f"node-{args.nodes - 1}"
                t0 = time.monotonic()
                tab.get_by_label("Search").fill(target)
                tab.locator("#nodes-body tr", has_text=target).first.wait_for()
                search.append((time.monotonic() - t0) * 1000)
                tab.get_by_label("Search").fill("")
                tab.locator("#nodes-body tr").nth(1).wait_for()
                t0 = time.monotonic()
                tab.select_option("#sort", "addr")
                try:
                    tab.locator("#nodes-body tr", has_text="10.0.0.0:3022").first.wait_for(timeout=20_000)
                except Exception:
                    sys.exit("sorted by address, the first row is: " + tab.locator("#nodes-body tr").first.inner_text())
                by_addr.append((time.monotonic() - t0) * 1000)
            rows = tab.locator("#nodes-body tr").count()
            cookie = next(c for c in context.cookies() if c["name"] == "__Host-session")
            browser.close()

        api = []
        for _ in range(args.rounds):
            conn = http.client.HTTPSConnection("127.0.0.1", web, context=insecure)
            t0 = time.monotonic()
            conn.request("GET", "/webapi/nodes?limit=100", headers={"Cookie": f"__Host-session={cookie['value']}"})
            reply = conn.getresponse()
            body = reply.read()
            api.append((time.monotonic() - t0) * 1000)
            assert reply.status == 200, body[:200]
            conn.close()
        print(f"nodes={args.nodes} rows_on_first_page={rows} rounds={args.rounds}")
        print(f"first paint of /web/nodes: p50 {percentile(paint, 50):.0f} ms, max {max(paint):.0f} ms")
        print(f"search for the last node: p50 {percentile(search, 50):.0f} ms; sort by address: p50 {percentile(by_addr, 50):.0f} ms")
        print(f"GET /webapi/nodes?limit=100 with the cookie (from Python): p50 {percentile(api, 50):.1f} ms")
        print(f"heartbeat failures: {failures.value}")
    finally:
        if "stop" in locals():
            stop.set()
            for worker in workers:
                worker.join(timeout=15)
        daemon.terminate()
        daemon.wait(timeout=10)
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
