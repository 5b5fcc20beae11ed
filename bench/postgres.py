#!/usr/bin/env python3
"""PostgreSQL through the proxy vs direct (issue 16). One cluster: an auth+proxy daemon with
`proxy_service.postgres_listen_addr`, a database service in a second daemon (joined with a static
`db` token) and a PostgreSQL 15 server (`initdb` in a temporary directory, run as `postgres`,
TLS on a `tctl auth sign --format=db` certificate, `cert` authentication only). Prints, as plain
text (not a test):

1. `pgbench -S` (select-only) and `pgbench` (TPC-B-like) TPS with --clients clients for --seconds
   seconds, (A) through the proxy and (B) direct, interleaved: each of --rounds rounds runs A and
   B in a rotating order; the median of each.
2. Connection set-up: p50/p95 of --runs `psql -c 'select 1'`, through the proxy and direct,
   interleaved one by one.

Direct connections use a db-CA client certificate `CN=postgres` (`tctl auth sign --format=db
--user=postgres`) with `sslmode=verify-full`; proxied ones the route certificate of a user from
`tctl auth sign --user` (its identity file) that the proxy's `POST /webapi/databases/login` issues
(as `tsh db login` does) with `sslmode=verify-ca`. Every query through the proxy is audited
(`db.session.query`), so the proxied figures include the audit path.

    bench/postgres.py [--bin .build/debug] [--clients 8] [--seconds 10] [--rounds 3] [--runs 100] [--scale 10] [--profile N]

It also prints the CPU time the two daemons spend per proxied `-S` transaction, and with
--profile N the top N symbols of each under `perf record` (linux-perf).

Needs root (PostgreSQL runs as `postgres` through setpriv), postgresql-15 and a built tree.
"""
import argparse, json, os, re, shutil, socket, statistics, subprocess, sys, tempfile, time
from benchlib import PGBIN, as_postgres, free_port, listening, run, wait_for  # noqa: E402


def pem_blocks(text):
    """(block, type) for every PEM block of `text`."""
    return re.findall(r"(-----BEGIN ([A-Z ]+)-----\n.*?-----END \2-----\n?)", text, re.S)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=".build/debug")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--profile", type=int, default=0, help="print the top N symbols of each daemon under proxied -S (perf)")
    args = parser.parse_args()
    binary = os.path.abspath(args.bin)
    teleport, tctl = os.path.join(binary, "teleport"), os.path.join(binary, "tctl")
    root = tempfile.mkdtemp(prefix="pgbench-")
    os.chmod(root, 0o755)
    processes = []
    try:
        ports = {name: free_port() for name in ["auth", "web", "ssh", "tunnel", "pgproxy", "dbservice", "postgres"]}
        token = "db" + os.urandom(15).hex()
        config = os.path.join(root, "teleport.yaml")
        with open(config, "w") as f:
            f.write(f"""teleport:
  nodename: bench
  data_dir: {root}/data
auth_service:
  cluster_name: pgbench.example
  listen_addr: 127.0.0.1:{ports['auth']}
  tokens: ["db:{token}"]
proxy_service:
  listen_addr: 127.0.0.1:{ports['ssh']}
  web_listen_addr: 127.0.0.1:{ports['web']}
  tunnel_listen_addr: 127.0.0.1:{ports['tunnel']}
  postgres_listen_addr: 127.0.0.1:{ports['pgproxy']}
ssh_service:
  enabled: false
""")
        log = open(os.path.join(root, "teleport.log"), "w")
        processes.append(subprocess.Popen([teleport, "start", "-c", config], stdout=log, stderr=log))
        if not wait_for(lambda: listening(ports["web"]) and listening(ports["pgproxy"]), 60):
            sys.exit("the cluster did not start: see " + log.name)
        tctl_c = [tctl, "-c", config]
        wait_for(lambda: run(tctl_c + ["status"], check=False).returncode == 0, 30)

        certs = os.path.join(root, "certs")
        os.makedirs(certs)
        run(tctl_c + ["auth", "sign", "--format=db", "--host=localhost,127.0.0.1", f"--out={certs}/server", "--ttl=24h"])
        run(tctl_c + ["auth", "sign", "--format=db", "--user=postgres", f"--out={certs}/postgres", "--ttl=24h"])
        pgdir = os.path.join(root, "pg")
        os.makedirs(pgdir)
        for name in ["server.crt", "server.key", "server.cas"]:
            shutil.copy(os.path.join(certs, name), pgdir)
        shutil.chown(pgdir, "postgres", "postgres")
        for name in os.listdir(pgdir):
            shutil.chown(os.path.join(pgdir, name), "postgres", "postgres")
        os.chmod(os.path.join(pgdir, "server.key"), 0o600)
        run(as_postgres([f"{PGBIN}/initdb", "-D", f"{pgdir}/data", "-U", "postgres", "--auth=trust", "-E", "UTF8"]))
        with open(f"{pgdir}/data/pg_hba.conf", "w") as f:
            f.write("local all all trust\nhostssl all all 127.0.0.1/32 cert\nhostssl all all ::1/128 cert\n")
        pglog = open(os.path.join(root, "postgres.log"), "w")
        processes.append(subprocess.Popen(as_postgres([
            f"{PGBIN}/postgres", "-D", f"{pgdir}/data", "-c", f"port={ports['postgres']}", "-c", "listen_addresses=127.0.0.1",
            "-c", f"unix_socket_directories={pgdir}", "-c", "ssl=on", "-c", f"ssl_cert_file={pgdir}/server.crt",
            "-c", f"ssl_key_file={pgdir}/server.key", "-c", f"ssl_ca_file={pgdir}/server.cas", "-c", "fsync=off",
            "-c", "max_connections=200"]), stdout=pglog, stderr=pglog))
        if not wait_for(lambda: listening(ports["postgres"]), 60):
            sys.exit("postgres did not start: see " + pglog.name)
        run(as_postgres([f"{PGBIN}/pgbench", "-i", "-q", "-s", str(args.scale), "-h", pgdir, "-p", str(ports["postgres"]), "-U", "postgres", "postgres"]))

        dbconfig = os.path.join(root, "db.yaml")
        with open(dbconfig, "w") as f:
            f.write(f"""teleport:
  nodename: dbhost
  data_dir: {root}/dbdata
  auth_token: {token}
  auth_servers: [127.0.0.1:{ports['auth']}]
auth_service:
  enabled: false
proxy_service:
  enabled: false
ssh_service:
  enabled: false
db_service:
  enabled: true
  listen_addr: 127.0.0.1:{ports['dbservice']}
  databases:
  - name: bench
    protocol: postgres
    uri: localhost:{ports['postgres']}
""")
        dblog = open(os.path.join(root, "db.log"), "w")
        processes.append(subprocess.Popen([teleport, "start", "-c", dbconfig], stdout=dblog, stderr=dblog))
        role = os.path.join(root, "role.yaml")
        with open(role, "w") as f:
            f.write("kind: role\nversion: v5\nmetadata:\n  name: benchdb\nspec:\n  allow:\n    db_labels:\n      '*': '*'\n"
                    "    db_users: ['*']\n    db_names: ['*']\n")
        run(tctl_c + ["create", role])
        run(tctl_c + ["users", "add", "bench", "--roles=benchdb"])
        identity = os.path.join(root, "bench.id")
        run(tctl_c + ["auth", "sign", "--user=bench", f"--out={identity}", "--ttl=8h"])
        with open(identity) as f:
            blocks = pem_blocks(f.read())
        key = next(text for text, kind in blocks if kind == "PRIVATE KEY")
        certificates = [text for text, kind in blocks if kind == "CERTIFICATE"]
        files = {"key": os.path.join(root, "bench.key"), "cert": os.path.join(root, "bench.crt"), "ca": os.path.join(root, "ca.pem")}
        for name, text in [("key", key), ("cert", certificates[0]), ("ca", "".join(certificates[1:]))]:
            with open(files[name], "w") as f:
                f.write(text)
            os.chmod(files[name], 0o600)
        if not wait_for(lambda: "bench" in run(tctl_c + ["get", "db_server"], check=False).stdout, 60):
            sys.exit("the database service did not register: see " + dblog.name)
        reply = run(["curl", "-sS", "-k", "--cert", files["cert"], "--key", files["key"], "-H", "Content-Type: application/json",
                     "-d", json.dumps({"name": "bench", "db_user": "postgres", "db_name": "postgres"}),
                     f"https://127.0.0.1:{ports['web']}/webapi/databases/login"])
        route = os.path.join(root, "route.pem")
        with open(route, "w") as f:
            f.write(json.loads(reply.stdout)["certificate"])
        os.chmod(route, 0o600)

        targets = {
            "proxy": f"host=127.0.0.1 port={ports['pgproxy']} sslmode=verify-ca sslrootcert={files['ca']} sslcert={route} "
                     f"sslkey={files['key']} user=postgres dbname=postgres",
            "direct": f"host=localhost port={ports['postgres']} sslmode=verify-full sslrootcert={certs}/server.cas "
                      f"sslcert={certs}/postgres.crt sslkey={certs}/postgres.key user=postgres dbname=postgres",
        }
        check = {name: run(["psql", conninfo, "-tAc", "select 1"], check=False) for name, conninfo in targets.items()}
        for name, result in check.items():
            if result.stdout.strip() != "1":
                sys.exit(f"{name}: psql failed: {result.stderr}\nsee {root}")

        def cpu_seconds(pid):
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        daemons = {"auth+proxy": processes[0].pid, "db service": processes[2].pid}
        cpu_per_transaction = {name: [] for name in daemons}

        def pgbench(conninfo, select_only):
            command = ["pgbench", "-n", "-c", str(args.clients), "-j", str(min(args.clients, 4)), "-T", str(args.seconds)]
            if select_only:
                command.append("-S")
            result = run(command + [conninfo], check=False, timeout=args.seconds * 10 + 60)
            match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", result.stdout)
            if not match:
                sys.exit(f"pgbench failed: {result.stdout}\n{result.stderr}")
            return float(match.group(1))

        print(f"pgbench, {args.clients} clients, {args.seconds} s, scale {args.scale}, {args.rounds} interleaved rounds "
              f"({os.cpu_count()} CPUs, binaries in {args.bin})")
        for label, select_only in [("-S (select-only)", True), ("TPC-B-like", False)]:
            tps = {"proxy": [], "direct": []}
            for round_number in range(args.rounds):
                order = ["proxy", "direct"] if round_number % 2 == 0 else ["direct", "proxy"]
                for name in order:
                    before = {daemon: cpu_seconds(pid) for daemon, pid in daemons.items()}
                    tps[name].append(pgbench(targets[name], select_only))
                    if name == "proxy" and select_only:
                        for daemon, pid in daemons.items():
                            used = cpu_seconds(pid) - before[daemon]
                            cpu_per_transaction[daemon].append(used / (tps[name][-1] * args.seconds) * 1e6)
            proxy, direct = statistics.median(tps["proxy"]), statistics.median(tps["direct"])
            print(f"  {label:18} proxy {proxy:9.1f} tps   direct {direct:9.1f} tps   ratio {proxy / direct:.2f}   "
                  f"(rounds: proxy {', '.join(f'{t:.0f}' for t in tps['proxy'])}; direct {', '.join(f'{t:.0f}' for t in tps['direct'])})")

        print("  CPU per proxied -S transaction: " + ", ".join(
            f"{daemon} {statistics.median(values):.0f} µs" for daemon, values in cpu_per_transaction.items() if values))
        if args.profile:
            # The daemons' hot paths under proxied -S (perf from linux-perf; symbols of the build given).
            for daemon, pid in daemons.items():
                data = os.path.join(root, f"perf-{daemon.replace(' ', '-').replace('+', '-')}.data")
                recorder = subprocess.Popen(["perf", "record", "-F", "999", "-g", "-o", data, "-p", str(pid)],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                pgbench(targets["proxy"], True)
                recorder.send_signal(2)
                recorder.wait(timeout=60)
                report = run(["perf", "report", "-i", data, "--no-children", "--sort", "symbol", "--stdio", "-g", "none",
                              "--percent-limit", "0.7"], check=False)
                lines = [line for line in report.stdout.splitlines() if line.strip() and not line.startswith("#")]
                print(f"  perf, {daemon} (self time, symbols over 0.7%):")
                for line in lines[:args.profile]:
                    print("    " + line.strip()[:160])
        times = {"proxy": [], "direct": []}
        for index in range(args.runs):
            order = ["proxy", "direct"] if index % 2 == 0 else ["direct", "proxy"]
            for name in order:
                start = time.perf_counter()
                result = run(["psql", targets[name], "-tAc", "select 1"], check=False)
                elapsed = time.perf_counter() - start
                if result.returncode != 0:
                    sys.exit(f"{name}: psql failed: {result.stderr}")
                times[name].append(elapsed * 1000)
        print(f"connection set-up, {args.runs} x psql -c 'select 1' (process start included), interleaved")
        for name in ["proxy", "direct"]:
            values = sorted(times[name])
            p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
            print(f"  {name:6}  p50 {statistics.median(values):7.1f} ms   p95 {p95:7.1f} ms")
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
