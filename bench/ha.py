#!/usr/bin/env python3
"""High availability at scale (issue 18), in one run. Prints figures as plain text (not a test).

1. Presence on each backend: for SQLite, PostgreSQL and etcd, `bench/heartbeats.py`'s measurement
   (an auth+proxy daemon on that store; N simulated nodes heartbeat every --interval seconds over 64
   keep-alive mTLS connections for --duration seconds: heartbeats/s, errors, the daemon's CPU in
   cores; then `tsh ls`, the proxy's `/webapi/nodes`, `tctl nodes ls` p50 of 7 and the RSS). With
   --preload-nodes M also the listings alone at M nodes (written once through the batch route,
   without expiry; --duration 0).
2. Certificates per second on PostgreSQL with one and with two auth servers (same cluster_name,
   one store; the CAs created once): `bench/certs.py`'s workers (`POST /v1/certs/user` over
   keep-alive mTLS, a fresh key pair and proof each), spread over the auth servers; the auth
   servers' CPU summed.

PostgreSQL 15 (initdb in a temporary directory, run as `postgres`, trust on loopback, fsync off as in
the other benches) and etcd (Debian's etcd-server, one member, as `nobody`, TLS with client certificates
made by openssl, as in the tests) are started here and stopped by PID. On this machine everything (the stores,
the daemons and the Python clients) shares the same cores: two auth servers cannot be faster than
one here; the figure shows what the second costs, not what a second machine would add.

    bench/ha.py [--bin .build/release] [--nodes 10000] [--preload-nodes 50000] [--duration 30]
                [--backends sqlite postgresql etcd] [--cert-seconds 10] [--clients 8] [--rounds 3] [--skip-certs]

Needs root (PostgreSQL runs as `postgres`, etcd as `nobody`, through setpriv), postgresql-15,
etcd-server, python3-cryptography and a built tree.
"""
import argparse
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import certs  # noqa: E402
import heartbeats  # noqa: E402
from benchlib import PGBIN, as_postgres, free_port, listening, percentile, run, wait_for  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Stores:
    """PostgreSQL and etcd in one temporary directory, started once, stopped by PID."""

    def __init__(self, root):
        self.root = root
        self.processes = []
        self.pg_port = None
        self.etcd_port = None

    def start_postgres(self):
        pgdir = os.path.join(self.root, "pg")
        os.makedirs(pgdir)
        shutil.chown(pgdir, "postgres", "postgres")
        run(as_postgres([f"{PGBIN}/initdb", "-D", f"{pgdir}/data", "-U", "postgres", "--auth=trust", "-E", "UTF8"]))
        with open(f"{pgdir}/data/pg_hba.conf", "w") as f:
            f.write("local all all trust\nhost all all 127.0.0.1/32 trust\n")
        self.pg_port = free_port()
        log = open(os.path.join(self.root, "postgres.log"), "w")
        self.processes.append(subprocess.Popen(as_postgres([
            f"{PGBIN}/postgres", "-D", f"{pgdir}/data", "-c", f"port={self.pg_port}", "-c", "listen_addresses=127.0.0.1",
            "-c", f"unix_socket_directories={pgdir}", "-c", "fsync=off", "-c", "max_connections=200"]), stdout=log, stderr=log))
        self.psql = [f"{PGBIN}/psql", "-h", pgdir, "-p", str(self.pg_port), "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-tAc"]
        if not wait_for(lambda: run(self.psql + ["SELECT 1", "postgres"], check=False).returncode == 0, 60):
            sys.exit("postgres did not start: see " + log.name)
        run(self.psql + ["CREATE ROLE teleport LOGIN", "postgres"])

    def postgres_storage(self, database):
        run(self.psql + [f"CREATE DATABASE {database} OWNER teleport", "postgres"])
        return (f"  storage:\n    type: postgresql\n"
                f"    conn_string: \"postgresql://teleport@127.0.0.1:{self.pg_port}/{database}?sslmode=disable\"\n")

    def start_etcd(self):
        data = os.path.join(self.root, "etcd")
        os.makedirs(data)
        # TLS with client certificates, as the tests run it (plain http:// with `insecure: true`
        # does not work today: see docs/architecture.md, issue 18).
        curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        self.etcd_dir = data
        path = lambda name: os.path.join(data, name)  # noqa: E731
        run(["openssl", "req", "-x509"] + curve + ["-keyout", path("ca.key"), "-out", path("ca.pem"), "-subj", "/CN=bench-etcd-ca", "-days", "2"])
        open(path("server.ext"), "w").write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n")
        open(path("client.ext"), "w").write("extendedKeyUsage=clientAuth\n")
        for name in ["server", "client"]:
            run(["openssl", "req"] + curve + ["-keyout", path(f"{name}.key"), "-out", path(f"{name}.csr"), "-subj", f"/CN={name}"])
            run(["openssl", "x509", "-req", "-in", path(f"{name}.csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"), "-CAcreateserial",
                 "-out", path(f"{name}.pem"), "-days", "2", "-extfile", path(f"{name}.ext")])
        run(["chown", "-R", "nobody:nogroup", data])
        self.etcd_port, peer = free_port(), free_port()
        url = f"https://127.0.0.1:{self.etcd_port}"
        log = open(os.path.join(self.root, "etcd.log"), "w")
        self.processes.append(subprocess.Popen([
            "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "/usr/bin/etcd",
            "--name", "bench", "--data-dir", path("data"),
            "--listen-client-urls", url, "--advertise-client-urls", url,
            "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-cluster", f"bench=http://127.0.0.1:{peer}", "--quota-backend-bytes", str(8 * 1024 ** 3),
            "--cert-file", path("server.pem"), "--key-file", path("server.key"), "--trusted-ca-file", path("ca.pem"),
            "--client-cert-auth", "--log-level", "error",
            # The preload writes 1,000 nodes a batch, one etcd transaction (etcd's default allows 128 operations).
            "--max-txn-ops", "1024"], stdout=log, stderr=log))
        ready = ["curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", path("ca.pem"), "--cert", path("client.pem"),
                 "--key", path("client.key"), "-X", "POST", "-d", '{"key":"AA=="}', f"{url}/v3/kv/range"]
        if not wait_for(lambda: run(ready, check=False).stdout == "200", 60, 0.5):
            sys.exit("etcd did not start: see " + log.name)

    def etcd_storage(self, prefix):
        path = lambda name: os.path.join(self.etcd_dir, name)  # noqa: E731
        return (f"  storage:\n    type: etcd\n    peers: [\"https://127.0.0.1:{self.etcd_port}\"]\n"
                f"    prefix: /{prefix}/\n    tls_cert_file: {path('client.pem')}\n    tls_key_file: {path('client.key')}\n"
                f"    tls_ca_file: {path('ca.pem')}\n")

    def stop(self):
        for process in reversed(self.processes):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def auth_config(path, data_dir, port, storage):
    with open(path, "w") as f:
        f.write(f"teleport:\n  data_dir: {data_dir}\n  log:\n    severity: ERROR\n{storage}"
                f"auth_service:\n  cluster_name: hacerts\n  listen_addr: 127.0.0.1:{port}\n"
                f"  tokens: [\"node:benchtoken\"]\n"
                f"proxy_service:\n  enabled: no\nssh_service:\n  enabled: no\n")


def cert_round(daemons, seconds, clients, per_client):
    """One timed round: `clients` workers, client i on auth server i mod len(daemons)."""
    ready, go, results = multiprocessing.Queue(), multiprocessing.Queue(), multiprocessing.Queue()
    workers = [multiprocessing.Process(target=certs.worker, args=(daemons[i % len(daemons)]["port"], daemons[i % len(daemons)]["keys"],
                                                                   per_client, ready, go, results)) for i in range(clients)]
    for w in workers:
        w.start()
    statuses = [ready.get(timeout=120) for _ in workers]
    if any(s != 200 for s in statuses):
        sys.exit(f"the first certificate request failed: HTTP {statuses}")
    cpu0 = sum(certs.cpu_seconds(d["process"].pid) for d in daemons)
    wall0 = time.monotonic()
    stop = wall0 + seconds
    for _ in workers:
        go.put(stop)
    collected = [results.get(timeout=seconds + 120) for _ in workers]
    wall = time.monotonic() - wall0
    cpu = sum(certs.cpu_seconds(d["process"].pid) for d in daemons) - cpu0
    for w in workers:
        w.join()
    latencies = [x for c in collected for x in c[0]]
    issued = len(latencies)
    return {"rate": issued / wall, "cpu_ms": cpu * 1000 / max(issued, 1), "cores": cpu / wall,
            "p50": percentile(latencies, 0.5) * 1000, "p99": percentile(latencies, 0.99) * 1000,
            "failures": sum(c[1] for c in collected), "ran_out": not all(c[2] for c in collected)}


def certificates(bin_dir, stores, count, args):
    """Certificates per second with `count` auth servers on one PostgreSQL database."""
    work = tempfile.mkdtemp(prefix=f"bench-ha-certs{count}-")
    storage = stores.postgres_storage(f"certs{count}")
    daemons = []
    try:
        for n in range(count):
            port = free_port()
            config = os.path.join(work, f"auth{n}.yaml")
            auth_config(config, os.path.join(work, f"auth{n}"), port, storage)
            log = open(os.path.join(work, f"auth{n}.log"), "w")
            process = subprocess.Popen([os.path.join(bin_dir, "teleport"), "start", "-c", config], stdout=log, stderr=log)
            daemons.append({"port": port, "config": config, "process": process, "keys": os.path.join(work, f"auth{n}", "keys"), "log": log.name})
        tctl = lambda d: [os.path.join(bin_dir, "tctl"), "-c", d["config"]]  # noqa: E731
        for d in daemons:
            if not wait_for(lambda: os.path.exists(os.path.join(d["keys"], "admin.crt")), 120, 0.1) or \
                    not wait_for(lambda: run(tctl(d) + ["status"], check=False).returncode == 0, 120):
                sys.exit(f"the auth server did not start; see {d['log']}")
        run(tctl(daemons[0]) + ["users", "add", certs.USER, "--logins=root", "--roles=access"])
        per_client = int(args.cert_seconds * 2500 / args.clients) + 50
        rounds = []
        for r in range(args.rounds):
            result = cert_round(daemons, args.cert_seconds, args.clients, per_client)
            rounds.append(result)
            print(f"  {count} auth server(s), round {r + 1}: certs/s={result['rate']:6.0f} auth_cpu_ms_per_cert={result['cpu_ms']:5.2f} "
                  f"auth_cores={result['cores']:4.2f} p50_ms={result['p50']:6.1f} p99_ms={result['p99']:6.1f} "
                  f"failures={result['failures']}{' (ran out of keys)' if result['ran_out'] else ''}", flush=True)
        median = sorted(rounds, key=lambda x: x["rate"])[len(rounds) // 2]
        records = run(stores.psql + ["SELECT count(*) FROM teleport_items WHERE key >= '/usercerts/'::bytea AND key < '/usercerts0'::bytea",
                                     f"certs{count}"], check=False).stdout.strip()
        print(f"postgresql auth_servers={count} certs/s={median['rate']:.0f} (median of {len(rounds)} rounds, {args.clients} clients) "
              f"auth_cpu_ms_per_cert={median['cpu_ms']:.2f} auth_cores={median['cores']:.2f} p50_ms={median['p50']:.1f} "
              f"p99_ms={median['p99']:.1f} (usercert records in the store: {records or '?'})", flush=True)
        return median
    finally:
        for d in daemons:
            d["process"].terminate()
        for d in daemons:
            try:
                d["process"].wait(timeout=20)
            except subprocess.TimeoutExpired:
                d["process"].kill()
                d["process"].wait()
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=os.path.join(ROOT, ".build", "release"))
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql", "etcd"])
    parser.add_argument("--nodes", type=int, nargs="*", default=[10000])
    parser.add_argument("--preload-nodes", type=int, nargs="*", default=[],
                        help="also list this many nodes, written once without expiry (no heartbeats)")
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--interval", type=float, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--cert-seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-certs", action="store_true")
    parser.add_argument("--skip-presence", action="store_true")
    args = parser.parse_args()
    bin_dir = os.path.abspath(args.bin)
    print(f"binaries: {bin_dir}; {os.cpu_count()} cores", flush=True)
    root = tempfile.mkdtemp(prefix="bench-ha-")
    os.chmod(root, 0o755)
    stores = Stores(root)
    try:
        if "postgresql" in args.backends or not args.skip_certs:
            stores.start_postgres()
        if "etcd" in args.backends:
            stores.start_etcd()
        if not args.skip_presence:
            for backend in args.backends:
                for n in args.nodes:
                    storage = {"sqlite": lambda: "", "postgresql": lambda: stores.postgres_storage(f"presence{n}"),
                               "etcd": lambda: stores.etcd_storage(f"presence{n}")}[backend]()
                    heartbeats.run(bin_dir, n, args.duration, args.interval, args.connections, storage=storage, label=f"{backend:10s} ")
                    sys.stdout.flush()
                for n in args.preload_nodes:
                    storage = {"sqlite": lambda: "", "postgresql": lambda: stores.postgres_storage(f"preload{n}"),
                               "etcd": lambda: stores.etcd_storage(f"preload{n}")}[backend]()
                    heartbeats.run(bin_dir, n, 0, args.interval, args.connections, preload=True, storage=storage,
                                   label=f"{backend:10s} (preloaded, no heartbeats) ")
                    sys.stdout.flush()
        if not args.skip_certs:
            one = certificates(bin_dir, stores, 1, args)
            two = certificates(bin_dir, stores, 2, args)
            print(f"certificates/s on PostgreSQL: one auth server {one['rate']:.0f}, two {two['rate']:.0f} "
                  f"(target 1,000/s in total: ratio {two['rate'] / 1000:.2f}); all on {os.cpu_count()} shared cores", flush=True)
    finally:
        stores.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
