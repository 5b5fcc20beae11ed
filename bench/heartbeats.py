#!/usr/bin/env python3
"""Presence at scale: N simulated nodes heartbeat against one auth service on SQLite.

Starts `teleport start --roles=auth` on a fresh data dir, then sends one heartbeat per node every
INTERVAL seconds (the daemon's own interval is 10 s) over 64 keep-alive TLS connections (one worker
process each: the auth service answers a heartbeat when its 200 ms batch is written) with the
admin identity (which may heartbeat any node record), for DURATION seconds. Prints the auth
process's CPU use (from /proc, in cores), the latency (p50 of 7) of listing all nodes once they
are registered (`tsh ls --format names` and plain `tsh ls`, the proxy's `/webapi/nodes` with curl,
`tctl nodes ls --format json` and plain `tctl nodes ls`) and the daemon's RSS before and after
those listings.

    bench/heartbeats.py [--nodes 1000 10000] [--duration 30] [--interval 10] [--preload]

On a loaded machine the heartbeat rate may not keep 10,000 nodes alive (30 s TTL); `--preload
--duration 0` writes them once, without expiry, and measures only the listings.

Needs a built tree (`swift build -c release` for meaningful figures; `--bin .build/release`).
"""
import argparse
import http.client
import json
import multiprocessing
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def run(bin_dir, nodes, duration, interval, connections, preload=False, storage="", label=""):
    """One measurement; `storage` is YAML lines for `teleport.storage` (bench/ha.py: PostgreSQL, etcd), `label` starts the line."""
    work = tempfile.mkdtemp(prefix="bench-heartbeats-")
    port, web = free_port(), free_port()
    config = os.path.join(work, "teleport.yaml")
    with open(config, "w") as f:
        f.write(f"teleport:\n  data_dir: {work}/data\n  log:\n    severity: ERROR\n{storage}"
                f"auth_service:\n  cluster_name: bench\n  listen_addr: 127.0.0.1:{port}\n"
                f"proxy_service:\n  web_listen_addr: 127.0.0.1:{web}\n  listen_addr: 127.0.0.1:{free_port()}\n"
                f"  tunnel_listen_addr: 127.0.0.1:{free_port()}\nssh_service:\n  enabled: no\n")
    log = open(os.path.join(work, "teleport.log"), "w")
    daemon = subprocess.Popen([os.path.join(bin_dir, "teleport"), "start", "-c", config], stdout=log, stderr=log)
    try:
        keys = os.path.join(work, "data", "keys")
        for _ in range(1200):
            if os.path.exists(os.path.join(keys, "admin.crt")) or daemon.poll() is not None:
                break
            time.sleep(0.05)
        if not os.path.exists(os.path.join(keys, "admin.crt")):
            log.flush()
            sys.exit("the daemon did not start:\n" + open(os.path.join(work, "teleport.log")).read()[-2000:])
        time.sleep(0.5)
        context = ssl.create_default_context(cafile=os.path.join(keys, "ca.crt"))
        context.load_cert_chain(os.path.join(keys, "admin.crt"), os.path.join(keys, "admin.key"))

        def connect():
            raw = socket.create_connection(("127.0.0.1", port))
            conn = http.client.HTTPSConnection("teleport.cluster.local", port, context=context)
            conn.sock = context.wrap_socket(raw, server_hostname="teleport.cluster.local")
            return conn

        ids = [str(uuid.uuid4()) for _ in range(nodes)]
        bodies = [json.dumps({"kind": "node", "version": "v2",
                              "metadata": {"name": i, "namespace": "default", "labels": {"env": "bench", "n": str(n % 100)}},
                              "spec": {"addr": f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}:3022",
                                       "hostname": f"node-{n}"}}).encode() for n, i in enumerate(ids)]
        if preload:
            # Every node written once, without expiry, through the batch route (1,000 a request): the
            # listing figures then cover exactly N nodes even where the heartbeat rate cannot keep N alive.
            conn = connect()
            for first in range(0, nodes, 1000):
                batch = b'{"upsert": true, "resources": [' + b",".join(bodies[first:first + 1000]) + b"]}"
                conn.request("POST", "/v1/resources/batch", body=batch, headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                answer = response.read()
                if response.status != 200:
                    sys.exit(f"preloading nodes failed: HTTP {response.status} {answer[:300]!r}")
        # Worker processes, not threads: one Python process cannot drive 1,000 TLS requests/s.
        errors = multiprocessing.Value("l", 0)
        sent = multiprocessing.Value("l", 0)
        stop = time.monotonic() + duration

        def worker(slice_start):
            conn = connect()
            mine = list(range(slice_start, nodes, connections))
            per_node = interval
            next_round = time.monotonic()
            while time.monotonic() < stop:
                for index in mine:
                    try:
                        conn.request("POST", "/v1/presence/nodes", body=bodies[index], headers={"Content-Type": "application/json"})
                        response = conn.getresponse()
                        response.read()
                        ok = response.status == 200
                    except Exception:
                        ok = False
                        conn = connect()
                    with sent.get_lock():
                        sent.value += 1
                    if not ok:
                        with errors.get_lock():
                            errors.value += 1
                next_round += per_node
                time.sleep(max(0, next_round - time.monotonic()))

        # First round registers every node; measure CPU over the steady state after it.
        workers = [multiprocessing.Process(target=worker, args=(k,)) for k in range(connections)]
        for w in workers:
            w.start()
        time.sleep(min(interval, duration / 2))
        cpu_start, wall_start, sent_start = cpu_seconds(daemon.pid), time.monotonic(), sent.value
        for w in workers:
            w.join()
        cpu = (cpu_seconds(daemon.pid) - cpu_start) / (time.monotonic() - wall_start)
        rate = (sent.value - sent_start) / (time.monotonic() - wall_start)

        time.sleep(0.5)  # let the last batch of heartbeats land
        tctl = [os.path.join(bin_dir, "tctl"), "-c", config]
        identity = os.path.join(work, "bench.id")
        subprocess.run(tctl + ["users", "add", "bench", "bench"], capture_output=True, check=True)
        subprocess.run(tctl + ["auth", "sign", "--user=bench", f"--out={identity}"], capture_output=True, check=True)
        tsh = [os.path.join(bin_dir, "tsh"), "-i", identity, f"--proxy=127.0.0.1:{web}", "--insecure", "ls", "--format", "names"]

        def p50(command, count):
            timings, listed = [], -1
            for _ in range(7):
                start = time.monotonic()
                out = subprocess.run(command, capture_output=True, text=True)
                timings.append(time.monotonic() - start)
                listed = count(out) if out.returncode == 0 else -1
            timings.sort()
            return timings[3] * 1000, listed

        rss_before = rss_mib(daemon.pid)
        tctl_ms, tctl_listed = p50(tctl + ["nodes", "ls", "--format", "json"], lambda out: len(json.loads(out.stdout)))
        tctl_text_ms, _ = p50(tctl + ["nodes", "ls"], lambda out: len(out.stdout.splitlines()) - 2)
        tsh_ms, tsh_listed = p50(tsh, lambda out: len(out.stdout.split()))
        tsh_text_ms, _ = p50(tsh[:-2], lambda out: len(out.stdout.splitlines()) - 2)
        # The proxy's share: the same call with curl (the identity file's TLS key and certificate).
        text = open(identity).read()
        blocks = re.findall(r"(-----BEGIN ([A-Z ]+)-----.*?-----END \2-----\n)", text, re.S)
        key_file, cert_file = os.path.join(work, "bench.key"), os.path.join(work, "bench.crt")
        open(key_file, "w").write(next(b for b, label in blocks if label == "PRIVATE KEY"))
        open(cert_file, "w").write(next(b for b, label in blocks if label == "CERTIFICATE"))
        curl = ["curl", "-sk", "--cert", cert_file, "--key", key_file, f"https://127.0.0.1:{web}/webapi/nodes?limit=10000"]
        proxy_ms, _ = p50(curl, lambda out: len(json.loads(out.stdout)["items"]))
        rss_after = rss_mib(daemon.pid)
        print(f"{label}nodes={nodes:6d} heartbeats/s={rate:7.0f} errors={errors.value} auth_cpu_cores={cpu:5.2f} "
              f"tsh_ls_p50_ms={tsh_ms:6.0f} (listed {tsh_listed}) tsh_ls_text_p50_ms={tsh_text_ms:6.0f} "
              f"proxy_nodes_p50_ms={proxy_ms:6.0f} tctl_nodes_ls_p50_ms={tctl_ms:6.0f} (json, listed {tctl_listed}) "
              f"tctl_nodes_ls_text_p50_ms={tctl_text_ms:6.0f} daemon_rss_mib={rss_before:.0f}->{rss_after:.0f} (over 35 listings)")
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
        subprocess.run(["rm", "-rf", work])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--interval", type=float, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--preload", action="store_true",
                        help="write every node once through the batch route first (no expiry), so that the listings see all of them")
    parser.add_argument("--bin", default=os.path.join(ROOT, ".build", "debug"))
    args = parser.parse_args()
    for n in args.nodes:
        run(args.bin, n, args.duration, args.interval, args.connections, args.preload)


if __name__ == "__main__":
    sys.exit(main())
