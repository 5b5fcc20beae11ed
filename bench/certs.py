#!/usr/bin/env python3
"""User certificates per second (issue 23): `POST /v1/certs/user` (what `tctl auth sign --user`
calls) over keep-alive mTLS with the admin identity, from --clients worker processes (8), against
`teleport start` with only the auth service on a fresh SQLite data dir.

Every request certifies a fresh key pair (Ed25519 for SSH, P-256 for X.509) with its proof of
possession, like `tsh login` and `tctl auth sign` do; the workers make their keys before the clock
starts. Prints, as plain text (not a test): certificates per second, the daemon's CPU per
certificate (from /proc, user + system), request latency p50/p99, and the ratio to the target
(1,000/s); as a yardstick, OpenSSL's Ed25519 signatures per second on one core here (what signing
alone costs; each certificate needs one Ed25519 and one ECDSA P-256 signature).

    bench/certs.py [--bin .build/release] [--seconds 10] [--clients 8] [--rounds 3]
"""
import argparse
import base64
import http.client
import json
import multiprocessing
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import free_port, percentile, run, wait_for  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER = "bench"
TARGET = 1000


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ssh_string(data):
    return len(data).to_bytes(4, "big") + data


def request_body(ttl=3600):
    """One `SignUserRequest` for a fresh key pair, with its proof (LoginProof, purpose `signUser`)."""
    ssh_key = ed25519.Ed25519PrivateKey.generate()
    raw = ssh_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    ssh_line = "ssh-ed25519 " + base64.b64encode(ssh_string(b"ssh-ed25519") + ssh_string(raw)).decode()
    tls_key = ec.generate_private_key(ec.SECP256R1())
    public = tls_key.public_key()
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    timestamp = int(time.time())
    message = (f"teleport sign user v1\nuser={USER}\nssh_public_key={ssh_line}\n"
               f"tls_public_key={base64.b64encode(der).decode()}\ntimestamp={timestamp}\n").encode()
    ssh_signature = ssh_string(b"ssh-ed25519") + ssh_string(ssh_key.sign(message))
    tls_signature = tls_key.sign(message, ec.ECDSA(hashes.SHA256()))
    return json.dumps({
        "user": USER, "ssh_public_key": f"{ssh_line} {USER}", "tls_public_key": pem, "ttl_seconds": ttl,
        "key_proof": {"timestamp": timestamp, "ssh_signature": base64.b64encode(ssh_signature).decode(),
                      "tls_signature": base64.b64encode(tls_signature).decode()},
    }).encode()


def worker(port, keys, count, ready, go, results):
    bodies = [request_body() for _ in range(count)]
    context = ssl.create_default_context(cafile=os.path.join(keys, "ca.crt"))
    context.load_cert_chain(os.path.join(keys, "admin.crt"), os.path.join(keys, "admin.key"))
    conn = http.client.HTTPSConnection("teleport.cluster.local", port, context=context)
    conn.sock = context.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="teleport.cluster.local")
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # One request before the clock starts: the TLS handshake is not what is measured.
    conn.request("POST", "/v1/certs/user", body=bodies.pop(), headers={"Content-Type": "application/json"})
    warm = conn.getresponse()
    warm.read()
    ready.put(warm.status)
    stop = go.get()
    latencies, failures = [], 0
    for body in bodies:
        if time.monotonic() >= stop:
            break
        start = time.monotonic()
        conn.request("POST", "/v1/certs/user", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        payload = response.read()
        if response.status == 200 and b"ssh_certificate" in payload:
            latencies.append(time.monotonic() - start)
        else:
            failures += 1
    results.put((latencies, failures, time.monotonic() >= stop))


def one_round(daemon_pid, port, keys, seconds, clients, per_client):
    ready, go, results = multiprocessing.Queue(), multiprocessing.Queue(), multiprocessing.Queue()
    workers = [multiprocessing.Process(target=worker, args=(port, keys, per_client, ready, go, results)) for _ in range(clients)]
    for w in workers:
        w.start()
    statuses = [ready.get(timeout=120) for _ in workers]
    if any(s != 200 for s in statuses):
        sys.exit(f"the first certificate request failed: HTTP {statuses}")
    cpu0, wall0 = cpu_seconds(daemon_pid), time.monotonic()
    stop = wall0 + seconds
    for _ in workers:
        go.put(stop)
    collected = [results.get(timeout=seconds + 120) for _ in workers]
    wall = time.monotonic() - wall0
    cpu = cpu_seconds(daemon_pid) - cpu0
    for w in workers:
        w.join()
    latencies = [x for c in collected for x in c[0]]
    failures = sum(c[1] for c in collected)
    ran_out = not all(c[2] for c in collected)
    issued = len(latencies)
    return {"rate": issued / wall, "cpu_ms": cpu * 1000 / max(issued, 1), "p50": percentile(latencies, 0.5) * 1000,
            "p99": percentile(latencies, 0.99) * 1000, "failures": failures, "ran_out": ran_out, "cores": cpu / wall}


def openssl_ed25519_per_second():
    result = run(["openssl", "speed", "-seconds", "2", "ed25519"], check=False)
    match = re.search(r"253 bits EdDSA \(Ed25519\)\s+\S+s\s+\S+s\s+([\d.]+)", result.stdout)
    return float(match.group(1)) if match else float("nan")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=os.path.join(ROOT, ".build", "release"))
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="bench-certs-")
    port = free_port()
    config = os.path.join(work, "teleport.yaml")
    with open(config, "w") as f:
        f.write(f"teleport:\n  data_dir: {work}/data\n  log:\n    severity: ERROR\n"
                f"auth_service:\n  cluster_name: bench\n  listen_addr: 127.0.0.1:{port}\n"
                f"proxy_service:\n  enabled: no\nssh_service:\n  enabled: no\n")
    log = open(os.path.join(work, "teleport.log"), "w")
    daemon = subprocess.Popen([os.path.join(args.bin, "teleport"), "start", "-c", config], stdout=log, stderr=log)
    try:
        keys = os.path.join(work, "data", "keys")
        if not wait_for(lambda: os.path.exists(os.path.join(keys, "admin.crt")), 60, 0.05):
            sys.exit(f"the auth service did not start; see {work}/teleport.log")
        tctl = [os.path.join(args.bin, "tctl"), "-c", config]
        wait_for(lambda: run(tctl + ["status"], check=False).returncode == 0, 60)
        run(tctl + ["users", "add", USER, "--logins=root", "--roles=access"])
        # Enough keys for the fastest client to run out of time first (about 2,000/s in all).
        per_client = int(args.seconds * 2500 / args.clients) + 50
        rounds = []
        for r in range(args.rounds):
            result = one_round(daemon.pid, port, keys, args.seconds, args.clients, per_client)
            rounds.append(result)
            print(f"round {r + 1}: certs/s={result['rate']:7.0f} daemon_cpu_ms_per_cert={result['cpu_ms']:6.2f} "
                  f"daemon_cores={result['cores']:4.2f} p50_ms={result['p50']:6.2f} p99_ms={result['p99']:6.2f} "
                  f"failures={result['failures']}{' (ran out of keys)' if result['ran_out'] else ''}", flush=True)
        median = sorted(rounds, key=lambda x: x["rate"])[len(rounds) // 2]
        signing = openssl_ed25519_per_second()
        print(f"ours: {median['rate']:.0f} certificates/s, {median['cpu_ms']:.2f} ms of daemon CPU each "
              f"(median round of {len(rounds)}, {args.clients} clients); target {TARGET}/s: ratio {median['rate'] / TARGET:.2f}; "
              f"OpenSSL Ed25519 signing alone: {signing:.0f}/s on one core")
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=15)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
