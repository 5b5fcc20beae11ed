#!/usr/bin/env python3
"""Reverse-tunnel benchmark (issue 14). One cluster: an auth+proxy daemon (no node service), a
tunnelled node (`teleport.proxy_server`, joined through the proxy's web port, no listen_addr) and
a direct node in two more daemons. Three parts, printed as plain text (not a test):

1. SSH, interleaved (each round runs A, B, C in a rotating order): `tsh ssh NODE true` latency
   (p50/p95 over --runs) and `head -c MB | tsh ssh NODE 'cat >/dev/null'` throughput (--rounds) to
   (A) the tunnelled node, (B) the direct node, and (C) OpenSSH: a plain sshd behind an OpenSSH
   reverse tunnel (`ssh -R` from the sshd's side to a "jump" sshd), reached with `ssh -J jump`.
   AES-128-GCM on every OpenSSH hop.
2. Memory per idle tunnel at the proxy: `tunnel-agents` (Sources/tunnel-agents) joins --agents
   hosts, heartbeats them as tunnelled nodes, then runs one real ReverseTunnelAgent per host. The
   proxy daemon's VmRSS is read with the hosts registered and heartbeating but no tunnel (before)
   and with every tunnel up and idle for --idle seconds (after): (after - before) / agents; then
   again after gdb had the daemon call malloc_trim(0) (glibc keeps the pages freed after 1,000
   concurrent handshakes; the trimmed figure is what the tunnels hold). --no-trim skips gdb.
   For comparison, the resident memory of the jump sshd's processes holding part 1's idle `-R`.
3. Restart: SIGKILL the auth+proxy daemon and start it again on the same data dir, once per
   --down value: after that many seconds down (0: at once; while it is down the agents' dials fail
   and back off). Prints the time until every agent is back and, per wall-clock second from the
   kill's, the agents' dials, failed dials, lost and established tunnels (their own counters) and
   the proxy's "reverse tunnel established" log lines: how far jittered backoff spreads the redials.

    bench/tunnels.py [--bin .build/debug] [--agents 1000] [--runs 20] [--mb 1000] [--rounds 3]
                     [--idle 10] [--down 0 10] [--no-trim] [--skip-ssh] [--skip-agents]

Needs root (sshd), openssh-server and a built tree including `tunnel-agents`
(`swift build`; release figures: `swift build -c release --scratch-path .build-release` and
`--bin .build-release/release`). The figures of a loaded, shared machine are noisy.
"""
import argparse, datetime, getpass, os, queue, re, resource, shutil, signal, socket, statistics, subprocess, sys
import tempfile, threading, time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout, step=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def bound(port):
    """Whether something listens on local `port` (read from /proc/net/tcp: no connection is made,
    so the proxy logs no refused tunnel)."""
    for table in ["/proc/net/tcp", "/proc/net/tcp6"]:
        try:
            with open(table) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                return True
    return False


def status_field(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rollup_kib(pid, *fields):
    """The sum of `fields` (Pss, Private_Dirty, ...) of /proc/PID/smaps_rollup, in KiB."""
    total = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.split(":")[0] in fields:
                    total += int(line.split()[1])
    except OSError:
        pass
    return total


def descendants(pid):
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            parents[int(entry)] = int(stat[stat.rindex(")") + 2:].split()[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent:
                found.append(child)
                frontier.append(child)
    return found


def established(port):
    """Server-side ESTABLISHED connections on local `port`."""
    count = 0
    for table in ["/proc/net/tcp", "/proc/net/tcp6"]:
        try:
            with open(table) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                count += 1
    return count


def trim(pid):
    """Asks the daemon's allocator to return its free pages (glibc malloc_trim(0), through gdb), so
    that VmRSS counts what is live rather than what malloc kept after the handshakes."""
    subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "call (int)malloc_trim(0)"], capture_output=True, timeout=120)


def mappings(pid):
    """Resident KiB by kind of mapping: anonymous (the heap, malloc arenas, stacks) and files (the
    binary's code pages, touched once)."""
    kinds = {"anonymous": 0, "file": 0}
    kind = "file"
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            fields = line.split()
            if "-" in fields[0] and not fields[0].endswith(":"):
                name = fields[5] if len(fields) > 5 else ""
                kind = "anonymous" if name == "" or name.startswith("[") else "file"
            elif fields[0] == "Rss:":
                kinds[kind] += int(fields[1])
    return kinds


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p * (len(ordered) - 1))))]


class Daemon:
    """A teleport daemon in the work dir, started and stopped by PID."""

    def __init__(self, bindir, config, log):
        self.bindir, self.config, self.log = bindir, config, log
        self.process = None

    def start(self):
        out = open(self.log, "a")
        self.process = subprocess.Popen([f"{self.bindir}/teleport", "start", "-c", self.config], stdout=out, stderr=out)
        out.close()

    def kill(self, sig=signal.SIGKILL):
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Agents:
    """The tunnel-agents process; its stdout lines are queued with the time they were read."""

    def __init__(self, command, log):
        self.lines = queue.Queue()
        self.statuses = []  # (epoch, {field: int})
        self.all_connected = []  # epochs of "all N connected" lines
        self.seconds = {}  # epoch second -> {dials, failures, up, lost}
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(log, "w"),
                                        text=True, bufsize=1)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            line = line.strip()
            if line.startswith("status "):
                fields = dict(item.split("=", 1) for item in line.split()[1:])
                self.statuses.append((float(fields.pop("at")), {k: int(v) for k, v in fields.items()}))
            elif line.startswith("second "):
                fields = dict(item.split("=", 1) for item in line.split()[1:])
                self.seconds[int(fields.pop("at"))] = {k: int(v) for k, v in fields.items()}
            elif line.startswith("all "):
                self.all_connected.append(float(line.rsplit("at=", 1)[1]))
            self.lines.put(line)
        self.lines.put(None)

    def wait_line(self, prefix, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.time()))
            except queue.Empty:
                break
            if line is None:
                return None
            if line.startswith(prefix):
                return line
        return None

    def latest(self):
        return self.statuses[-1][1] if self.statuses else {}

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def log_seconds(path, message, since):
    """Epoch seconds of the lines of `path` containing `message` (StreamLogHandler timestamps)."""
    found = []
    with open(path, errors="replace") as f:
        for line in f:
            if message in line:
                try:
                    at = datetime.datetime.strptime(line.split(" ", 1)[0], "%Y-%m-%dT%H:%M:%S%z").timestamp()
                except ValueError:
                    continue
                if at >= int(since):
                    found.append(at)
    return found


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=".build/debug")
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16, help="joins at once")
    parser.add_argument("--runs", type=int, default=20, help="latency runs per client")
    parser.add_argument("--rounds", type=int, default=3, help="throughput transfers per client")
    parser.add_argument("--mb", type=int, default=1000, help="MiB per transfer (large enough that the session start does not count)")
    parser.add_argument("--idle", type=float, default=10, help="seconds the tunnels stay idle before the memory is read")
    parser.add_argument("--down", type=float, nargs="+", default=[0, 10],
                        help="restarts: seconds the proxy stays down after its SIGKILL, one restart each")
    parser.add_argument("--no-trim", dest="trim", action="store_false",
                        help="skip the second memory reading after the proxy's allocator returned its free pages (gdb, malloc_trim)")
    parser.add_argument("--skip-ssh", action="store_true")
    parser.add_argument("--skip-agents", action="store_true")
    args = parser.parse_args()
    bindir = os.path.abspath(args.bin)
    for name in ["teleport", "tctl", "tsh"] + ([] if args.skip_agents else ["tunnel-agents"]):
        if not os.access(f"{bindir}/{name}", os.X_OK):
            sys.exit(f"{bindir}/{name} is missing: build first (swift build), or pass --bin DIR")
    if args.trim and not shutil.which("gdb"):
        print("gdb is not installed: memory is read without malloc_trim (--no-trim)", file=sys.stderr)
        args.trim = False
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    login = getpass.getuser()
    work = tempfile.mkdtemp(prefix="bench-tunnels-")
    ports = {name: free_port() for name in ["auth", "web", "proxy", "tunnel", "direct", "target", "jump", "forward"]}
    token = "bench-" + os.urandom(12).hex()
    config = os.path.join(work, "teleport.yaml")
    with open(config, "w") as f:
        f.write(f"""teleport:
  nodename: benchproxy
  data_dir: {work}/data
auth_service:
  cluster_name: bench
  listen_addr: 127.0.0.1:{ports['auth']}
  tokens: ["node:{token}"]
proxy_service:
  listen_addr: 127.0.0.1:{ports['proxy']}
  web_listen_addr: 127.0.0.1:{ports['web']}
  tunnel_listen_addr: 127.0.0.1:{ports['tunnel']}
ssh_service:
  enabled: no
""")
    proxy = Daemon(bindir, config, os.path.join(work, "teleport.log"))
    nodes, procs, agents = [], [], None
    try:
        proxy.start()
        tctl = [f"{bindir}/tctl", "-c", config]
        if not wait_for(lambda: subprocess.run(tctl + ["status"], capture_output=True).returncode == 0, 90):
            sys.exit(f"teleport did not start; see {work}/teleport.log")
        status = subprocess.run(tctl + ["status"], capture_output=True, text=True).stdout
        pin = re.search(r"sha256:[0-9a-f]{64}", status).group(0)
        subprocess.run(tctl + ["users", "add", "bench", login], check=True, capture_output=True)
        identity = os.path.join(work, "bench.id")
        subprocess.run(tctl + ["auth", "sign", "--user=bench", f"--out={identity}"], check=True, capture_output=True)
        tsh = [f"{bindir}/tsh", "-i", identity, f"--proxy=127.0.0.1:{ports['web']}", "--insecure", "ssh"]
        print(f"binaries: {bindir}; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start (shared machine: noisy)")

        ssh_results = None
        if not args.skip_ssh:
            ssh_results = ssh_part(args, bindir, work, ports, token, pin, tsh, login, nodes, procs)

        if not args.skip_agents:
            agents = agents_part(args, bindir, work, ports, token, pin, proxy, procs)
            for number, down in enumerate(args.down):
                restart_part(args, work, ports, proxy, agents, tsh, login, not args.skip_ssh, down, number)
    finally:
        if agents:
            agents.stop()
        for node in nodes:
            node.kill(signal.SIGTERM)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
        proxy.kill(signal.SIGTERM)
        if os.environ.get("KEEP_BENCH_DIR"):
            print(f"work directory (kept): {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def ssh_part(args, bindir, work, ports, token, pin, tsh, login, nodes, procs):
    """Part 1: latency and throughput, A (tunnelled), B (direct), C (OpenSSH -R + -J), interleaved."""
    for name, extra in [("tunnelnode", f"""  auth_servers: [127.0.0.1:{ports['web']}]
  proxy_server: 127.0.0.1:{ports['web']}
ssh_service:
  enabled: yes
"""), ("directnode", f"""  auth_servers: [127.0.0.1:{ports['auth']}]
ssh_service:
  enabled: yes
  listen_addr: 127.0.0.1:{ports['direct']}
""")]:
        path = os.path.join(work, f"{name}.yaml")
        with open(path, "w") as f:
            f.write(f"""version: v3
teleport:
  nodename: {name}
  data_dir: {work}/{name}
  auth_token: {token}
  ca_pin: {pin}
{extra}auth_service:
  enabled: no
proxy_service:
  enabled: no
""")
        node = Daemon(bindir, path, os.path.join(work, f"{name}.log"))
        node.start()
        nodes.append(node)

    # OpenSSH: the target sshd (the host "behind NAT") and the jump sshd, plain keys.
    for key in ["target_host", "jump_host", "user"]:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{work}/{key}"], check=True)
    shutil.copy(f"{work}/user.pub", f"{work}/authorized_keys")
    os.chmod(f"{work}/authorized_keys", 0o600)
    os.makedirs("/run/sshd", exist_ok=True)
    sshd = {}
    for name in ["target", "jump"]:
        with open(f"{work}/sshd_{name}", "w") as f:
            f.write(f"""Port {ports[name]}
ListenAddress 127.0.0.1
HostKey {work}/{name}_host
AuthorizedKeysFile {work}/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
AllowTcpForwarding yes
PidFile {work}/sshd_{name}.pid
Ciphers aes128-gcm@openssh.com,aes256-gcm@openssh.com
MaxStartups 200:30:400
""")
        sshd[name] = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", f"{work}/sshd_{name}"],
                                      stderr=open(f"{work}/sshd_{name}.log", "w"))
        procs.append(sshd[name])
        if not wait_for(lambda: listening(ports[name]), 30):
            sys.exit(f"sshd ({name}) did not start; see {work}/sshd_{name}.log")
    client_config = f"{work}/ssh_config"
    with open(client_config, "w") as f:
        f.write("Host *\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n  BatchMode yes\n"
                f"  IdentitiesOnly yes\n  IdentityFile {work}/user\n  Ciphers aes128-gcm@openssh.com\n")
    # The reverse tunnel: from the target's side, the jump sshd listens on `forward` and forwards
    # its connections back to the target sshd.
    reverse = subprocess.Popen(["ssh", "-F", client_config, "-N", "-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=30",
                                "-R", f"127.0.0.1:{ports['forward']}:127.0.0.1:{ports['target']}",
                                "-p", str(ports["jump"]), f"{login}@127.0.0.1"], stderr=open(f"{work}/ssh_R.log", "w"))
    procs.append(reverse)
    if not wait_for(lambda: listening(ports["forward"]), 30):
        sys.exit(f"ssh -R did not open its forward; see {work}/ssh_R.log")

    clients = {
        "A tsh ssh, tunnelled node": tsh + [f"{login}@tunnelnode"],
        "B tsh ssh, direct node": tsh + [f"{login}@directnode"],
        "C ssh -J, sshd behind ssh -R": ["ssh", "-F", client_config, "-J", f"{login}@127.0.0.1:{ports['jump']}",
                                         "-p", str(ports["forward"]), f"{login}@127.0.0.1"],
    }
    for name, command in clients.items():
        if not wait_for(lambda: subprocess.run(command + ["true"], capture_output=True, timeout=60).returncode == 0, 90, 0.5):
            check = subprocess.run(command + ["true"], capture_output=True, text=True, timeout=60)
            sys.exit(f"{name} does not work: {check.stderr.strip()}; see {work}")

    results = {name: {"lat": [], "mbps": []} for name in clients}
    names = list(clients)
    for round_number in range(max(args.runs, args.rounds)):
        order = names[round_number % 3:] + names[:round_number % 3]
        for name in order:
            command = clients[name]
            if round_number < args.runs:
                start = time.monotonic()
                subprocess.run(command + ["true"], check=True, capture_output=True, timeout=60)
                results[name]["lat"].append((time.monotonic() - start) * 1000)
            if round_number < args.rounds:
                source = subprocess.Popen(["head", "-c", str(args.mb * 1024 * 1024), "/dev/zero"], stdout=subprocess.PIPE)
                start = time.monotonic()
                subprocess.run(command + ["cat > /dev/null"], stdin=source.stdout, check=True, capture_output=True, timeout=1800)
                elapsed = time.monotonic() - start
                source.stdout.close()
                source.wait()
                results[name]["mbps"].append(args.mb * 1.048576 / elapsed)

    print()
    print(f"1. SSH, interleaved: {args.runs} `true` runs and {args.rounds} transfers of {args.mb} MiB per path "
          f"(rounds alternate A/B/C in a rotating order)")
    print(f"{'path':<31} {'true p50 ms':>11} {'p95 ms':>8} {'MB/s median':>12} {'MB/s best':>10}")
    for name, r in results.items():
        print(f"{name:<31} {statistics.median(r['lat']):11.1f} {percentile(r['lat'], 0.95):8.1f} "
              f"{statistics.median(r['mbps']):12.1f} {max(r['mbps']):10.1f}")
    print("   A: tsh -> proxy -> reverse tunnel (mTLS + SSH) -> node; B: tsh -> proxy -> TCP -> node;")
    print("   C: ssh -> jump sshd -> its -R listener -> the ssh -R session -> target sshd (AES-128-GCM on each SSH hop)")

    shell_note(login)

    # OpenSSH's memory for the one idle -R tunnel: the jump sshd's processes serving it.
    held = descendants(sshd["jump"].pid)
    rss = sum(status_field(pid, "VmRSS") for pid in held)
    pss = sum(rollup_kib(pid, "Pss") for pid in held)
    private = sum(rollup_kib(pid, "Private_Clean", "Private_Dirty") for pid in held)
    version = subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.split(",")[0].strip()
    print(f"   OpenSSH ({version}), the idle -R tunnel at the jump sshd: {len(held)} process(es), {rss / 1024:.1f} MiB RSS, "
          f"{pss / 1024:.1f} MiB PSS, {private / 1024:.1f} MiB private")
    return results


def shell_note(login):
    """bash sources ~/.bashrc for a non-interactive command when SSH_CLIENT is set (its rule for
    commands run by a remote shell daemon). sshd and our direct node set SSH_CLIENT; a session that
    came through a reverse tunnel does not get it, so a costly ~/.bashrc weighs on B and C only.
    Prints that cost here, measured the way the sessions start the shell."""
    import pwd
    entry = pwd.getpwnam(login)
    if not entry.pw_shell.endswith("bash"):
        return

    def median_ms(extra):
        env = {"PATH": "/usr/bin:/bin", "HOME": entry.pw_dir, "USER": login, **extra}
        values = []
        for _ in range(7):
            start = time.monotonic()
            subprocess.run([entry.pw_shell, "-c", "true"], env=env, capture_output=True, timeout=60)
            values.append((time.monotonic() - start) * 1000)
        return statistics.median(values)

    plain, remote = median_ms({}), median_ms({"SSH_CLIENT": "127.0.0.1 1 2"})
    print(f"   note: `{entry.pw_shell} -c true` as {login} takes {plain:.0f} ms here, {remote:.0f} ms with SSH_CLIENT set "
          f"(bash then sources {entry.pw_dir}/.bashrc); all three paths set SSH_CLIENT, so each pays it")


def agents_part(args, bindir, work, ports, token, pin, proxy, procs):
    """Part 2: memory per idle tunnel at the proxy."""
    n = args.agents
    pid = proxy.process.pid
    command = [f"{bindir}/tunnel-agents", f"--auth=127.0.0.1:{ports['auth']}", f"--token={token}", f"--ca-pin={pin}",
               f"--proxy=127.0.0.1:{ports['tunnel']}", f"--count={n}", f"--concurrency={args.concurrency}", "--wait-stdin"]
    started = time.time()
    agents = Agents(command, os.path.join(work, "agents.log"))
    if agents.wait_line("joined", 1800) is None or agents.wait_line("registered", 600) is None:
        with open(os.path.join(work, "agents.log"), errors="replace") as f:
            sys.stderr.write(f.read()[-3000:])
        sys.exit(f"tunnel-agents did not join and register {n} hosts (its log above)")
    joined = time.time() - started
    time.sleep(max(5.0, args.idle / 2))  # heartbeats of every host settle in

    def sample(count=5):
        values = []
        for _ in range(count):
            values.append(status_field(pid, "VmRSS"))
            time.sleep(1)
        return statistics.median(values)

    def readings():
        """VmRSS as it is, then (with gdb) after malloc_trim(0), with the trimmed mappings."""
        raw = sample()
        if not args.trim:
            return raw, None, mappings(pid)
        trim(pid)
        return raw, sample(3), mappings(pid)

    before, before_trimmed, kinds_before = readings()
    threads_before = status_field(pid, "Threads")
    dial = time.time()
    agents.process.stdin.write("go\n")
    agents.process.stdin.flush()
    if agents.wait_line("all ", 600) is None:
        sys.exit(f"not every agent connected: {agents.latest()}; see {work}/agents.log and {work}/teleport.log")
    up = agents.all_connected[-1] - dial
    time.sleep(args.idle)
    after, after_trimmed, kinds_after = readings()
    at_proxy = established(ports["tunnel"])
    agent_rss = status_field(agents.process.pid, "VmRSS")
    print()
    print(f"2. Memory per idle tunnel at the proxy (auth+proxy daemon, {n} tunnel agents: real ReverseTunnelAgent clients)")
    print(f"   joined and registered {n} hosts in {joined:.1f} s; every tunnel up {up:.1f} s after the agents started dialling")
    print(f"   tunnels the proxy holds (ESTABLISHED on its tunnel port): {at_proxy} "
          f"({'the agents and part 1' + chr(39) + 's tunnelled node' if not args.skip_ssh else 'the agents'}); "
          f"agents connected: {agents.latest().get('connected')}")
    print(f"   proxy VmRSS: {before / 1024:.1f} MiB before (hosts registered and heartbeating, no tunnel), "
          f"{after / 1024:.1f} MiB after {args.idle:.0f} s idle; threads {threads_before} -> {status_field(pid, 'Threads')}")
    print(f"   per tunnel: {(after - before) / n:.1f} KiB as VmRSS reads (target <= 64 KiB)")
    if args.trim:
        print(f"   after malloc_trim(0) (through gdb; what is live, not what malloc kept from the handshakes): "
              f"{before_trimmed / 1024:.1f} -> {after_trimmed / 1024:.1f} MiB, "
              f"{(after_trimmed - before_trimmed) / n:.1f} KiB per tunnel")
    print(f"   resident by mapping{' (trimmed)' if args.trim else ''}, before -> after: " + ", ".join(
        f"{kind} {kinds_before[kind] / 1024:.1f} -> {kinds_after[kind] / 1024:.1f} MiB" for kind in kinds_before)
        + f"; anonymous memory per tunnel {(kinds_after['anonymous'] - kinds_before['anonymous']) / n:.1f} KiB")
    print(f"   (the agents' own process: {agent_rss / 1024:.1f} MiB RSS, {agent_rss / n:.1f} KiB per agent)")
    return agents


def restart_part(args, work, ports, proxy, agents, tsh, login, tunnelled_node, down, number):
    """Part 3: SIGKILL the auth+proxy daemon and restart it after `down` seconds; time until every
    agent is back."""
    n = args.agents
    time.sleep(3)
    killed = time.time()
    proxy.kill(signal.SIGKILL)
    time.sleep(down)
    proxy.log = os.path.join(work, f"teleport-restart-{number + 1}.log")
    proxy.start()
    listening_again = None
    if wait_for(lambda: bound(ports["tunnel"]), 120, 0.02):
        listening_again = time.time() - killed
    # Wait for the "all N connected" line that follows the kill.
    back = None
    deadline = time.time() + 180
    while time.time() < deadline:
        later = [at for at in agents.all_connected if at > killed]
        if later:
            back = later[0] - killed
            break
        time.sleep(0.2)
    time.sleep(3)
    reachable = None
    if tunnelled_node:
        if wait_for(lambda: subprocess.run(tsh + [f"{login}@tunnelnode", "true"], capture_output=True, timeout=30).returncode == 0,
                    60, 0.3):
            reachable = time.time() - killed

    print()
    print(f"3.{number + 1} Restart: the auth+proxy daemon is SIGKILLed and started again on the same data dir "
          + (f"{down:.0f} s later" if down else "at once"))
    print(f"   the restarted proxy listens on its tunnel port {listening_again:.1f} s after the kill" if listening_again is not None
          else "   the restarted proxy did not listen within 120 s")
    if back is not None:
        print(f"   all {n} agents back {back:.1f} s after the kill "
              f"({back - (listening_again or 0):.1f} s after the proxy listened again; target: within 60 s)")
    else:
        print(f"   NOT all agents back within 180 s: {agents.latest()}")
    if reachable is not None:
        print(f"   the tunnelled node of part 1 answered `tsh ssh ... true` again {reachable:.1f} s after the kill")
    # Per wall-clock second from the kill's: the agents' own counters and the proxy's log lines.
    time.sleep(1.5)  # the last second's line
    start = int(killed)
    logged = log_seconds(proxy.log, "reverse tunnel established", killed)
    refused = log_seconds(proxy.log, "reverse tunnel refused", killed)
    per_second_log = {}
    for at in logged:
        per_second_log[int(at) - start] = per_second_log.get(int(at) - start, 0) + 1
    rows = {second - start: fields for second, fields in agents.seconds.items() if second >= start}
    last = int(back + killed) - start + 2 if back is not None else max(rows, default=0)
    print(f"   {'second':>6} {'dials':>6} {'failed':>7} {'lost':>6} {'up':>6} {'proxy log: established':>23}")
    for second in range(0, last + 1):
        row = rows.get(second, {"dials": 0, "failures": 0, "up": 0, "lost": 0})
        print(f"   {second:6d} {row['dials']:6d} {row['failures']:7d} {row['lost']:6d} {row['up']:6d} "
              f"{per_second_log.get(second, 0):23d}")
    first_up = min((second for second, row in rows.items() if row["up"] > 0), default=None)
    if first_up is not None:
        print(f"   the first tunnel was up in second {first_up}")
    dials = [row["dials"] for s, row in rows.items() if s <= last]
    total = sum(dials)
    print(f"   dials after the kill: {total} for {n} agents ({total / n:.2f} per agent); most in one second: "
          f"{max(dials, default=0)} ({100 * max(dials, default=0) / n:.0f}% of the agents); "
          f"proxy log: {len(logged)} tunnels established, {len(refused)} refused")
    print("   (agent backoff: first redial after a wait drawn in [0, 5 s], then a failed dial backs off from 1 s, doubling per failure up to 60 s, "
          "each wait drawn in [bound/2, bound]; second 0 is the wall-clock second of the kill"
          + ("; the proxy's log counts part 1's tunnelled node too)" if tunnelled_node else ")"))


if __name__ == "__main__":
    main()
