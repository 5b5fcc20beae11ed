#!/usr/bin/env python3
"""SSH benchmark: OpenSSH direct to sshd, OpenSSH through an OpenSSH bastion (-J), and tsh ssh
through our proxy to our node, interleaved in one run. Prints throughput (MB/s, AES-GCM on every
hop), `true` latency p50/p95 over N runs with the daemon's CPU per session (teleport's own, without
the session's shell; sshd's with its per-connection processes and their shells), and failures among
P parallel `true` runs; each of ours
as a ratio to `ssh -J`. Run by hand (not part of the test suite):

    bench/ssh.sh [--bin .build-release/release] [--mb 1000] [--runs 20] [--parallel 100]
"""
import argparse, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def cpu_seconds(pid, children):
    """User + system CPU of `pid` (with `children`, also of the children it has reaped), in
    seconds, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After the command: state is field 3; utime, stime, cutime, cstime are fields 14-17.
    return sum(int(value) for value in fields[11:15 if children else 13]) / os.sysconf("SC_CLK_TCK")


def stop_all(procs, work):
    """Stops `procs` by PID (SIGTERM, then SIGKILL after 15 s) and removes `work`."""
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
    shutil.rmtree(work, ignore_errors=True)


class Bed:
    """One teleport daemon (auth, proxy and node `benchnode`) and one OpenSSH sshd (also its own
    bastion for -J) started in `work` (their Popen objects appended to `procs`), with a user
    `bench` allowed `root` on both. `clients` holds the three ways in (`ssh direct`, `ssh -J`,
    `tsh ssh`) as argument lists to append a command to."""

    def __init__(self, bindir, work, procs):
        ports = {name: free_port() for name in ["auth", "web", "proxy", "node", "tunnel", "sshd"]}
        config = os.path.join(work, "teleport.yaml")
        with open(config, "w") as f:
            f.write(f"""teleport:
  nodename: benchnode
  data_dir: {work}/data
auth_service:
  cluster_name: bench
  listen_addr: 127.0.0.1:{ports['auth']}
proxy_service:
  listen_addr: 127.0.0.1:{ports['proxy']}
  web_listen_addr: 127.0.0.1:{ports['web']}
  tunnel_listen_addr: 127.0.0.1:{ports['tunnel']}
ssh_service:
  listen_addr: 127.0.0.1:{ports['node']}
""")
        log = open(os.path.join(work, "teleport.log"), "w")
        procs.append(subprocess.Popen([f"{bindir}/teleport", "start", "-c", config], stdout=log, stderr=log))
        for name in ["auth", "web", "proxy", "node"]:
            if not wait_port(ports[name]):
                sys.exit(f"teleport did not listen on {name}; see {work}/teleport.log")
        time.sleep(1)
        tctl = [f"{bindir}/tctl", "-c", config]
        subprocess.run(tctl + ["users", "add", "bench", "root"], check=True, capture_output=True)
        identity = os.path.join(work, "bench.id")
        subprocess.run(tctl + ["auth", "sign", "--user=bench", f"--out={identity}"], check=True, capture_output=True)

        # OpenSSH sshd with a plain key in authorized_keys, also used as its own bastion for -J.
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{work}/host_key"], check=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{work}/user_key"], check=True)
        shutil.copy(f"{work}/user_key.pub", f"{work}/authorized_keys")
        os.chmod(f"{work}/authorized_keys", 0o600)
        with open(f"{work}/sshd_config", "w") as f:
            f.write(f"""Port {ports['sshd']}
ListenAddress 127.0.0.1
HostKey {work}/host_key
AuthorizedKeysFile {work}/authorized_keys
PermitRootLogin yes
StrictModes no
PidFile {work}/sshd.pid
Ciphers aes128-gcm@openssh.com,aes256-gcm@openssh.com
MaxStartups 200:30:400
MaxSessions 200
Subsystem sftp /usr/lib/openssh/sftp-server
""")
        os.makedirs("/run/sshd", exist_ok=True)
        procs.append(subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", f"{work}/sshd_config"], stderr=subprocess.DEVNULL))
        wait_port(ports["sshd"])
        opts = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                "-o", "BatchMode=yes", "-o", "Ciphers=aes128-gcm@openssh.com", "-i", f"{work}/user_key"]
        jump_config = f"{work}/ssh_config"
        with open(jump_config, "w") as f:
            f.write("Host *\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n  BatchMode yes\n"
                    f"  Ciphers aes128-gcm@openssh.com\n  IdentityFile {work}/user_key\n")
        clients = {
            "ssh direct": ["ssh"] + opts + ["-p", str(ports["sshd"]), "root@127.0.0.1"],
            "ssh -J": ["ssh", "-F", jump_config, "-J", f"root@localhost:{ports['sshd']}", "-p", str(ports["sshd"]), "root@127.0.0.1"],
            "tsh ssh": [f"{bindir}/tsh", "-i", identity, f"--proxy=127.0.0.1:{ports['web']}", "--insecure", "ssh", "root@benchnode"],
        }
        self.ports, self.config, self.identity, self.clients = ports, config, identity, clients
        self.opts, self.jump_config, self.tctl = opts, jump_config, tctl


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=".build-release/release")
    parser.add_argument("--mb", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--parallel", type=int, default=100)
    args = parser.parse_args()
    bindir = os.path.abspath(args.bin)
    work = tempfile.mkdtemp(prefix="bench-ssh-")
    procs = []
    try:
        bed = Bed(bindir, work, procs)
        clients = bed.clients
        for name, command in clients.items():
            check = subprocess.run(command + ["true"], capture_output=True, text=True, timeout=60)
            if check.returncode != 0:
                sys.exit(f"{name} does not work: {check.stderr.strip()}")

        results = {name: {"mbps": [], "lat": [], "cpu": [], "fail": 0} for name in clients}
        # Throughput, interleaved: one transfer per client per round.
        for _ in range(2):
            for name, command in clients.items():
                start = time.monotonic()
                dd = subprocess.Popen(["dd", "if=/dev/zero", "bs=1M", f"count={args.mb}"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                subprocess.run(command + ["cat >/dev/null"], stdin=dd.stdout, check=True, timeout=1800)
                dd.wait()
                results[name]["mbps"].append(args.mb / (time.monotonic() - start))
        # Latency, interleaved; with the daemons' CPU spent on each run: teleport's own process
        # (not the session's shell, its child); sshd's listener with its reaped per-connection
        # processes (both hops of -J), which include their shells.
        daemons = {"tsh ssh": (procs[0].pid, False), "ssh -J": (procs[1].pid, True), "ssh direct": (procs[1].pid, True)}
        for _ in range(args.runs):
            for name, command in clients.items():
                before = cpu_seconds(*daemons[name])
                start = time.monotonic()
                subprocess.run(command + ["true"], check=True, capture_output=True, timeout=60)
                results[name]["lat"].append((time.monotonic() - start) * 1000)
                time.sleep(0.05)  # the per-connection processes are reaped asynchronously
                results[name]["cpu"].append((cpu_seconds(*daemons[name]) - before) * 1000)
        # Parallel.
        for name, command in clients.items():
            running = [subprocess.Popen(command + ["true"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(args.parallel)]
            results[name]["fail"] = sum(1 for p in running if p.wait(timeout=300) != 0)

        def p95(values):
            ordered = sorted(values)
            return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]

        base = results["ssh -J"]
        print(f"binaries: {bindir}; {args.mb} MB x2 per client, {args.runs} latency runs, {args.parallel} parallel")
        print(f"{'client':<12} {'MB/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'parallel fails':>15} {'daemon CPU/session ms':>22}   ratio to ssh -J (MB/s, p50)")
        for name, r in results.items():
            mbps, p50 = max(r["mbps"]), statistics.median(r["lat"])
            ratio = f"{mbps / max(base['mbps']):.2f}x, {p50 / statistics.median(base['lat']):.2f}x"
            cpu = statistics.mean(r["cpu"])
            print(f"{name:<12} {mbps:8.1f} {p50:8.1f} {p95(r['lat']):8.1f} {r['fail']:>8}/{args.parallel:<6} {cpu:22.1f}   {ratio}")
    finally:
        stop_all(procs, work)


if __name__ == "__main__":
    main()
