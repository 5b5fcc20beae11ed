#!/usr/bin/env python3
"""Session-leak benchmark (issue 13, item 5): a cluster (auth, proxy, node in one daemon), then
ROUNDS times: N `tsh ssh -t NODE sleep 600` clients are opened, then killed (SIGTERM, SIGHUP,
SIGKILL in turn), the way users' terminals and systems kill them. Prints, for the daemon, the
resident memory (VmRSS), its session processes and the open connections on the proxy's and node's
SSH ports: at the baseline (after one warm-up session), with the N sessions open, and after they
closed. A daemon that hangs up its sessions returns close to its baseline every round, with no
process and no connection left. Run by hand (not part of the test suite):

    bench/session_leak.py [--bin .build/debug] [--sessions 100] [--rounds 2] [--max-ratio 1.05] [--mappings]

Columns: resident memory, its ratio to the baseline, the daemon's threads, its session processes,
open connections; --mappings adds the resident memory by kind of mapping (from /proc/PID/smaps).
"""
import argparse, getpass, os, shutil, signal, socket, subprocess, sys, tempfile, time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def threads(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


def mappings(pid):
    """Resident KiB of the daemon's mappings by kind: the [heap], anonymous mappings of 8 MiB and
    more (thread stacks, malloc arenas of other threads), smaller anonymous ones, and files."""
    kinds = {"heap": 0, "anon>=8M": 0, "anon<8M": 0, "file": 0}
    size = 0
    kind = "file"
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            fields = line.split()
            if "-" in fields[0] and not fields[0].endswith(":"):
                start, end = (int(x, 16) for x in fields[0].split("-"))
                size = end - start
                name = fields[5] if len(fields) > 5 else ""
                if name == "[heap]":
                    kind = "heap"
                elif name == "" or name.startswith("[stack"):
                    kind = "anon>=8M" if size >= 8 << 20 else "anon<8M"
                else:
                    kind = "file"
            elif fields[0] == "Rss:":
                kinds[kind] += int(fields[1])
    return kinds


def children(pid, comm="sleep"):
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if ppid == pid and name == comm:
            found.append(int(entry))
    return found


def connections(ports):
    """Server-side connections on `ports` still open (ESTABLISHED or CLOSE-WAIT)."""
    count = 0
    for table in ["/proc/net/tcp", "/proc/net/tcp6"]:
        try:
            with open(table) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            port = int(fields[1].rsplit(":", 1)[1], 16)
            if port in ports and fields[3] in ("01", "08"):
                count += 1
    return count


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=".build/debug")
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-ratio", type=float, default=None,
                        help="exit 1 if the RSS after the last round exceeds this multiple of the baseline")
    parser.add_argument("--mappings", action="store_true",
                        help="also print the resident memory by kind of mapping (heap, anonymous, file)")
    args = parser.parse_args()
    bindir = os.path.abspath(args.bin)
    for name in ["teleport", "tctl", "tsh"]:
        if not os.access(f"{bindir}/{name}", os.X_OK):
            sys.exit(f"{bindir}/{name} is missing: build first (swift build), or pass --bin DIR")
    work = tempfile.mkdtemp(prefix="bench-leak-")
    ports = {name: free_port() for name in ["auth", "web", "proxy", "node", "tunnel"]}
    config = os.path.join(work, "teleport.yaml")
    with open(config, "w") as f:
        f.write(f"""teleport:
  nodename: leaknode
  data_dir: {work}/data
auth_service:
  cluster_name: leak
  listen_addr: 127.0.0.1:{ports['auth']}
proxy_service:
  listen_addr: 127.0.0.1:{ports['proxy']}
  web_listen_addr: 127.0.0.1:{ports['web']}
  tunnel_listen_addr: 127.0.0.1:{ports['tunnel']}
ssh_service:
  listen_addr: 127.0.0.1:{ports['node']}
""")
    log = open(os.path.join(work, "teleport.log"), "w")
    daemon = subprocess.Popen([f"{bindir}/teleport", "start", "-c", config], stdout=log, stderr=log)
    clients = []
    exit_code = 0
    try:
        tctl = [f"{bindir}/tctl", "-c", config]
        login = getpass.getuser()
        if not wait_for(lambda: subprocess.run(tctl + ["status"], capture_output=True).returncode == 0, 60):
            sys.exit(f"teleport did not start; see {work}/teleport.log")
        subprocess.run(tctl + ["users", "add", "bench", login], check=True, capture_output=True)
        identity = os.path.join(work, "bench.id")
        subprocess.run(tctl + ["auth", "sign", "--user=bench", f"--out={identity}"], check=True, capture_output=True)
        tsh = [f"{bindir}/tsh", "-i", identity, f"--proxy=127.0.0.1:{ports['web']}", "--insecure", "ssh"]
        if not wait_for(lambda: subprocess.run(tsh + [f"{login}@leaknode", "true"], capture_output=True).returncode == 0, 60):
            sys.exit(f"tsh ssh does not work; see {work}/teleport.log")
        ssh_ports = {ports["proxy"], ports["node"]}

        def figures(label, baseline=None):
            rss = rss_kib(daemon.pid)
            ratio = f"{rss / baseline:6.2f}x" if baseline else f"{'':>7}"
            print(f"{label:<28} {rss / 1024:9.1f} {ratio} {threads(daemon.pid):8d} {len(children(daemon.pid)):10d} "
                  f"{connections(ssh_ports):12d}", flush=True)
            if args.mappings:
                kinds = mappings(daemon.pid)
                print(f"{'':<28} " + ", ".join(f"{k} {v / 1024:.1f}" for k, v in kinds.items()) + " MiB", flush=True)
            return rss

        print(f"binaries: {bindir}; {args.sessions} sessions per round, {args.rounds} rounds")
        print(f"{'':<28} {'RSS MiB':>9} {'ratio':>7} {'threads':>8} {'processes':>10} {'connections':>12}")
        time.sleep(2)
        baseline = figures("baseline")
        signals = [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL]
        after = baseline
        for round_number in range(1, args.rounds + 1):
            clients = []
            for index in range(args.sessions):
                clients.append(subprocess.Popen(tsh + ["-t", f"{login}@leaknode", "sleep 600"],
                                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                if index % 10 == 9:  # a few at a time
                    wait_for(lambda: len(children(daemon.pid)) > index - 5, 60)
            if not wait_for(lambda: len(children(daemon.pid)) >= args.sessions, 180):
                print(f"only {len(children(daemon.pid))} of {args.sessions} sessions started", file=sys.stderr)
            figures(f"round {round_number}: {args.sessions} open", baseline)
            for index, client in enumerate(clients):
                client.send_signal(signals[index % len(signals)])
            for client in clients:
                client.wait(timeout=30)
            clients = []
            wait_for(lambda: not children(daemon.pid) and connections(ssh_ports) == 0, 60)
            time.sleep(3)  # let the allocator settle
            after = figures(f"round {round_number}: closed", baseline)
        print(f"after the last round: {after / 1024:.1f} MiB, {100 * (after - baseline) / baseline:+.1f}% of the baseline")
        if args.max_ratio is not None and after > args.max_ratio * baseline:
            print(f"FAIL: {after / baseline:.2f}x the baseline exceeds --max-ratio {args.max_ratio}", file=sys.stderr)
            exit_code = 1
    finally:
        for client in clients:
            client.kill()
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=15)
        except subprocess.TimeoutExpired:
            daemon.kill()
        if os.environ.get("KEEP_BENCH_DIR"):
            print(f"work directory (kept): {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(exit_code)


if __name__ == "__main__":
    main()
