#!/usr/bin/env python3
"""The `postgresql://` audit log (issue 18). One auth server (SQLite state) whose
`audit_events_uri` is a PostgreSQL 15 database (initdb in a temporary directory, run as `postgres`,
trust on loopback, fsync off as in the other benches). Prints, as plain text (not a test):

1. Audit events written per second: --threads clients POST batches of --batch events to the auth
   API's `/v1/events` with the node identity (mutual TLS, as nodes send theirs) for --seconds
   seconds; each event is sealed into its auth server's hash chain and inserted.
2. `tctl events ls` over --events stored events (inserted with SQL across 30 days, about
   events/30 a day): p50/p95 of --runs listings of one day's first page (500 events), and of one
   event type in that day.

    bench/audit_postgres.py [--bin .build/debug] [--threads 4] [--batch 50] [--seconds 10] [--events 1000000] [--runs 10]

Needs root (PostgreSQL runs as `postgres` through setpriv), postgresql-15 and a built tree.
"""
import argparse, http.client, json, os, shutil, socket, ssl, statistics, subprocess, sys, tempfile, threading, time, uuid
from benchlib import PGBIN, as_postgres, free_port, listening, percentile, run, wait_for  # noqa: E402
from datetime import datetime, timedelta, timezone


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=".build/debug")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    binary = os.path.abspath(args.bin)
    teleport, tctl = os.path.join(binary, "teleport"), os.path.join(binary, "tctl")
    root = tempfile.mkdtemp(prefix="auditbench-")
    os.chmod(root, 0o755)
    processes = []
    try:
        ports = {name: free_port() for name in ["auth", "postgres"]}
        pgdir = os.path.join(root, "pg")
        os.makedirs(pgdir)
        shutil.chown(pgdir, "postgres", "postgres")
        run(as_postgres([f"{PGBIN}/initdb", "-D", f"{pgdir}/data", "-U", "postgres", "--auth=trust", "-E", "UTF8"]))
        with open(f"{pgdir}/data/pg_hba.conf", "w") as f:
            f.write("local all all trust\nhost all all 127.0.0.1/32 trust\n")
        pglog = open(os.path.join(root, "postgres.log"), "w")
        processes.append(subprocess.Popen(as_postgres([
            f"{PGBIN}/postgres", "-D", f"{pgdir}/data", "-c", f"port={ports['postgres']}", "-c", "listen_addresses=127.0.0.1",
            "-c", f"unix_socket_directories={pgdir}", "-c", "fsync=off"]), stdout=pglog, stderr=pglog))
        psql = [f"{PGBIN}/psql", "-h", pgdir, "-p", str(ports["postgres"]), "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-tAc"]
        if not wait_for(lambda: run(psql + ["SELECT 1", "postgres"], check=False).returncode == 0, 60):
            sys.exit("postgres did not start: see " + pglog.name)
        run(psql + ["CREATE ROLE teleport LOGIN", "postgres"])
        run(psql + ["CREATE DATABASE audit OWNER teleport", "postgres"])

        config = os.path.join(root, "teleport.yaml")
        with open(config, "w") as f:
            f.write(f"""teleport:
  nodename: bench
  data_dir: {root}/data
  storage:
    audit_events_uri: ["postgresql://teleport@127.0.0.1:{ports['postgres']}/audit?sslmode=disable"]
auth_service:
  cluster_name: auditbench.example
  listen_addr: 127.0.0.1:{ports['auth']}
proxy_service:
  enabled: false
ssh_service:
  enabled: false
""")
        log = open(os.path.join(root, "teleport.log"), "w")
        processes.append(subprocess.Popen([teleport, "start", "-c", config], stdout=log, stderr=log))
        tctl_c = [tctl, "-c", config]
        if not wait_for(lambda: run(tctl_c + ["status"], check=False).returncode == 0, 90):
            sys.exit("the auth server did not start: see " + log.name)

        # 1. Events written per second through the auth API, with the node identity.
        keys = os.path.join(root, "data", "keys")
        context = ssl.create_default_context(cafile=os.path.join(keys, "ca.crt"))
        context.load_cert_chain(os.path.join(keys, "node.crt"), os.path.join(keys, "node.key"))
        context.check_hostname = False
        written = [0] * args.threads
        failures = []
        stop = time.time() + args.seconds

        def sender(index):
            connection = http.client.HTTPSConnection("127.0.0.1", ports["auth"], context=context, timeout=30)
            while time.time() < stop:
                now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                batch = [{"event": "bench.event", "code": "T9999I", "time": now, "uid": str(uuid.uuid4()), "user": f"u{index}", "n": i}
                         for i in range(args.batch)]
                connection.request("POST", "/v1/events", body=json.dumps(batch), headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                body = response.read()
                if response.status != 200:
                    failures.append(f"{response.status} {body[:200]!r}")
                    return
                written[index] += len(batch)

        started = time.time()
        threads = [threading.Thread(target=sender, args=(i,)) for i in range(args.threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        took = time.time() - started
        if failures:
            sys.exit("event writes failed: " + failures[0])
        stored = int(run(psql + ["SELECT count(*) FROM teleport_audit WHERE event = 'bench.event'", "audit"]).stdout.strip())
        print(f"audit events written to PostgreSQL: {sum(written)} in {took:.1f} s = {sum(written) / took:.0f}/s "
              f"({args.threads} clients, batches of {args.batch}; {stored} rows stored)")

        # 2. A day's page out of many stored events.
        day0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
        per_day = args.events // 30
        t0 = time.time()
        run(psql + [f"""
            INSERT INTO teleport_audit (chain, seq, time, event, username, sid, line)
            SELECT 'bulk', n, timestamp with time zone '2026-01-01 00:00:00+00' + (n * interval '1 second' * 86400 / {per_day}),
                   CASE WHEN n % 10 = 0 THEN 'session.start' ELSE 'user.login' END, 'u' || (n % 100), NULL,
                   convert_to('{{"event":"' || CASE WHEN n % 10 = 0 THEN 'session.start' ELSE 'user.login' END ||
                              '","code":"T1000I","uid":"bulk-' || n || '","time":"' ||
                              to_char((timestamp with time zone '2026-01-01 00:00:00+00' + (n * interval '1 second' * 86400 / {per_day})) AT TIME ZONE 'UTC',
                                      'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') ||
                              '","user":"u' || (n % 100) || '","prev_hash":"","hash":"0"}}', 'UTF8')
            FROM generate_series(1, {args.events}) AS n""", "audit"])
        run(psql + ["ANALYZE teleport_audit", "audit"])
        print(f"stored {args.events} events across 30 days ({per_day}/day) in {time.time() - t0:.1f} s")
        day = (day0 + timedelta(days=14)).strftime("%Y-%m-%d")
        next_day = (day0 + timedelta(days=15)).strftime("%Y-%m-%d")
        for label, extra in [("a day's first page (500)", []), ("one type in that day, first page (500)", ["--type=session.start"])]:
            times = []
            for _ in range(args.runs):
                t = time.time()
                listed = run(tctl_c + ["events", "ls", f"--from={day}", f"--to={next_day}", "--limit=500", "--format=json"] + extra)
                times.append((time.time() - t) * 1000)
                count = len(json.loads(listed.stdout))
                if not 0 < count <= 500:
                    sys.exit(f"expected a page of up to 500 events, got {count}")
            print(f"tctl events ls, {label}: p50 {statistics.median(times):.0f} ms, p95 {percentile(times, 0.95):.0f} ms "
                  f"({args.runs} runs; each includes starting tctl)")
        t = time.time()
        run(tctl_c + ["status"])
        print(f"(tctl status alone, for scale: {(time.time() - t) * 1000:.0f} ms)")
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
