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
import http.client
import json
import multiprocessing
import os
import socket
import ssl
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from webcluster import CHROMIUM, ROOT, BenchCluster, insecure_context, percentile  # noqa: E402


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

    cluster = BenchCluster(args.bin, prefix="bench-web-nodes-")
    try:
        keys, auth_port, web, base = cluster.keys, cluster.auth_port, cluster.web_port, cluster.base
        start = time.monotonic()
        registered, failures, stop = multiprocessing.Value("l", 0), multiprocessing.Value("l", 0), multiprocessing.Event()
        workers = [multiprocessing.Process(target=heartbeat, args=(keys, auth_port, k, 16, args.nodes, registered, failures, stop))
                   for k in range(16)]
        for worker in workers:
            worker.start()
        while registered.value < args.nodes:
            time.sleep(0.1)
        print(f"registered {args.nodes} nodes in {time.monotonic() - start:.1f} s; they keep heartbeating every 10 s")

        user = cluster.add_web_user("bench")
        insecure = insecure_context()

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
            context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 800})
            tab = context.new_page()
            tab.set_default_timeout(60_000)
            tab.goto(base + "/web/login")
            tab.get_by_label("User name").fill(user.name)
            tab.get_by_label("Password").fill(user.password)
            tab.get_by_label("Authenticator code").fill(user.codes.next())
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
        cluster.close()


if __name__ == "__main__":
    main()
