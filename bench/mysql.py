#!/usr/bin/env python3
"""MySQL/MariaDB through the proxy vs direct (issue 16). The same shape as bench/postgres.py (whose
helpers it uses): an auth+proxy daemon with `proxy_service.mysql_listen_addr`, a database service
in a second daemon (joined with a static `db` token) and a MariaDB server (`mariadb-install-db` in a
temporary directory, run as `mysql`, TLS on a `tctl auth sign --format=db` certificate, the
account `bench` with `REQUIRE SUBJECT '/CN=bench'`). Prints, as plain text (not a test):

1. `mysqlslap` with --clients concurrent clients: `SELECT 1` (--queries in all) and the
   auto-generated mixed read/write load, (A) through the proxy and (B) direct, interleaved over
   --rounds rounds (rotating order); the median queries per second of each.
2. Connection set-up: p50/p95 of --runs `mariadb -e 'select 1'`, through the proxy and direct,
   interleaved one by one.

Direct connections use a db-CA client certificate `CN=bench`; proxied ones the route certificate
the proxy's `POST /webapi/databases/login` issues (as `tsh db login` does). Every statement through
the proxy is audited (`db.session.query`), so the proxied figures include the audit path.

    bench/mysql.py [--bin .build/debug] [--clients 8] [--queries 20000] [--rounds 3] [--runs 100]

Needs root (MariaDB runs as `mysql` through setpriv), mariadb-server, mariadb-client and a built tree.
"""
import argparse, json, os, re, shutil, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from postgres import free_port, listening, pem_blocks, run, wait_for  # noqa: E402


def as_mysql(args):
    return ["setpriv", "--reuid=mysql", "--regid=mysql", "--init-groups", "--"] + args


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=".build/debug")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--queries", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    binary = os.path.abspath(args.bin)
    teleport, tctl = os.path.join(binary, "teleport"), os.path.join(binary, "tctl")
    root = tempfile.mkdtemp(prefix="mysqlbench-")
    os.chmod(root, 0o755)
    processes = []
    try:
        ports = {name: free_port() for name in ["auth", "web", "ssh", "tunnel", "myproxy", "dbservice", "mariadb"]}
        token = "db" + os.urandom(15).hex()
        config = os.path.join(root, "teleport.yaml")
        with open(config, "w") as f:
            f.write(f"""teleport:
  nodename: bench
  data_dir: {root}/data
auth_service:
  cluster_name: mysqlbench.example
  listen_addr: 127.0.0.1:{ports['auth']}
  tokens: ["db:{token}"]
proxy_service:
  listen_addr: 127.0.0.1:{ports['ssh']}
  web_listen_addr: 127.0.0.1:{ports['web']}
  tunnel_listen_addr: 127.0.0.1:{ports['tunnel']}
  mysql_listen_addr: 127.0.0.1:{ports['myproxy']}
ssh_service:
  enabled: false
""")
        log = open(os.path.join(root, "teleport.log"), "w")
        processes.append(subprocess.Popen([teleport, "start", "-c", config], stdout=log, stderr=log))
        if not wait_for(lambda: listening(ports["web"]) and listening(ports["myproxy"]), 60):
            sys.exit("the cluster did not start: see " + log.name)
        tctl_c = [tctl, "-c", config]
        wait_for(lambda: run(tctl_c + ["status"], check=False).returncode == 0, 30)

        certs = os.path.join(root, "certs")
        os.makedirs(certs)
        run(tctl_c + ["auth", "sign", "--format=db", "--host=localhost,127.0.0.1", f"--out={certs}/server", "--ttl=24h"])
        run(tctl_c + ["auth", "sign", "--format=db", "--user=bench", f"--out={certs}/bench", "--ttl=24h"])
        mydir = os.path.join(root, "maria")
        os.makedirs(mydir)
        for name in ["server.crt", "server.key", "server.cas"]:
            shutil.copy(os.path.join(certs, name), mydir)
        shutil.chown(mydir, "mysql", "mysql")
        for name in os.listdir(mydir):
            shutil.chown(os.path.join(mydir, name), "mysql", "mysql")
        os.chmod(os.path.join(mydir, "server.key"), 0o600)
        run(as_mysql(["mariadb-install-db", "--no-defaults", f"--datadir={mydir}/data", "--skip-test-db",
                      "--auth-root-authentication-method=socket"]))
        mylog = open(os.path.join(root, "mariadb.log"), "w")
        processes.append(subprocess.Popen(as_mysql([
            "/usr/sbin/mariadbd", "--no-defaults", f"--datadir={mydir}/data", f"--socket={mydir}/mysqld.sock", f"--port={ports['mariadb']}",
            "--bind-address=127.0.0.1", f"--pid-file={mydir}/mariadbd.pid", "--skip-name-resolve", "--skip-log-bin",
            f"--ssl-cert={mydir}/server.crt", f"--ssl-key={mydir}/server.key", f"--ssl-ca={mydir}/server.cas",
            "--innodb-buffer-pool-size=64M", "--max-connections=300"]), stdout=mylog, stderr=mylog))
        if not wait_for(lambda: listening(ports["mariadb"]), 60):
            sys.exit("mariadbd did not start: see " + mylog.name)
        run(["mariadb", "--no-defaults", "-S", f"{mydir}/mysqld.sock", "-u", "root", "-e",
             "CREATE USER 'bench'@'%' REQUIRE SUBJECT '/CN=bench'; GRANT ALL ON *.* TO 'bench'@'%';"])

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
    protocol: mysql
    uri: localhost:{ports['mariadb']}
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
                     "-d", json.dumps({"name": "bench", "db_user": "bench", "db_name": ""}),
                     f"https://127.0.0.1:{ports['web']}/webapi/databases/login"])
        route = os.path.join(root, "route.pem")
        with open(route, "w") as f:
            f.write(json.loads(reply.stdout)["certificate"])
        os.chmod(route, 0o600)

        common = ["--no-defaults", "--protocol=TCP", "--user=bench"]
        targets = {
            "proxy": common + ["--host=127.0.0.1", f"--port={ports['myproxy']}", f"--ssl-ca={files['ca']}", f"--ssl-cert={route}",
                               f"--ssl-key={files['key']}"],
            "direct": common + ["--host=localhost", f"--port={ports['mariadb']}", f"--ssl-ca={certs}/server.cas",
                                f"--ssl-cert={certs}/bench.crt", f"--ssl-key={certs}/bench.key", "--ssl-verify-server-cert"],
        }
        for name, options in targets.items():
            result = run(["mariadb"] + options + ["-N", "-B", "-e", "select 1"], check=False)
            if result.stdout.strip() != "1":
                sys.exit(f"{name}: mariadb failed: {result.stderr}\nsee {root}")

        def slap(options, workload):
            command = ["mysqlslap"] + options + [f"--concurrency={args.clients}", "--iterations=1", f"--number-of-queries={args.queries}",
                                                  "--create-schema=slap"]
            if workload == "select1":
                command += ["--query=SELECT 1"]
            else:
                command += ["--auto-generate-sql", "--auto-generate-sql-load-type=mixed", "--auto-generate-sql-add-autoincrement"]
            result = run(command, check=False, timeout=1800)
            match = re.search(r"Average number of seconds to run all queries: ([0-9.]+) seconds", result.stdout)
            if result.returncode != 0 or not match:
                sys.exit(f"mysqlslap failed: {result.stdout}\n{result.stderr}")
            return args.queries / max(float(match.group(1)), 0.001)

        print(f"mysqlslap, {args.clients} clients, {args.queries} queries, {args.rounds} interleaved rounds "
              f"({os.cpu_count()} CPUs, binaries in {args.bin})")
        for label, workload in [("SELECT 1", "select1"), ("mixed (auto-generated)", "mixed")]:
            qps = {"proxy": [], "direct": []}
            for round_number in range(args.rounds):
                order = ["proxy", "direct"] if round_number % 2 == 0 else ["direct", "proxy"]
                for name in order:
                    qps[name].append(slap(targets[name], workload))
            proxy, direct = statistics.median(qps["proxy"]), statistics.median(qps["direct"])
            print(f"  {label:24} proxy {proxy:9.1f} q/s   direct {direct:9.1f} q/s   ratio {proxy / direct:.2f}   "
                  f"(rounds: proxy {', '.join(f'{q:.0f}' for q in qps['proxy'])}; direct {', '.join(f'{q:.0f}' for q in qps['direct'])})")

        times = {"proxy": [], "direct": []}
        for index in range(args.runs):
            order = ["proxy", "direct"] if index % 2 == 0 else ["direct", "proxy"]
            for name in order:
                start = time.perf_counter()
                result = run(["mariadb"] + targets[name] + ["-N", "-B", "-e", "select 1"], check=False)
                elapsed = time.perf_counter() - start
                if result.returncode != 0:
                    sys.exit(f"{name}: mariadb failed: {result.stderr}")
                times[name].append(elapsed * 1000)
        print(f"connection set-up, {args.runs} x mariadb -e 'select 1' (process start included), interleaved")
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
