#!/usr/bin/env python3
"""Keystroke round trip through a pty (issue 23): one byte written to the client's standard input
reaches `cat` on a remote terminal (`stty raw -echo; cat`) and comes back, 500 times a client
(--count), for OpenSSH direct to sshd, OpenSSH through an OpenSSH bastion (`ssh -J`) and `tsh ssh
-t` through our proxy to our node, interleaved in rounds of 50. Prints p50/p99 in microseconds and
ours as a ratio to `ssh -J`. Run by hand (not part of the test suite):

    bench/keystroke.py [--bin .build/release] [--count 500]
"""
import argparse, os, shutil, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ssh import free_port, stop_all, wait_port  # noqa: E402


def open_session(command):
    """Starts `command` running `stty raw -echo; printf R; cat` and waits for the R."""
    process = subprocess.Popen(command + ["stty raw -echo; printf R; exec cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, bufsize=0)
    seen = b""
    deadline = time.monotonic() + 60
    while not seen.endswith(b"R"):
        if time.monotonic() > deadline:
            sys.exit(f"no terminal from {command[0]}")
        chunk = os.read(process.stdout.fileno(), 1024)
        if not chunk:
            sys.exit(f"{' '.join(command)} ended before its terminal was ready")
        seen += chunk
    return process


def round_trips(process, count):
    timings = []
    out, inp = process.stdout.fileno(), process.stdin.fileno()
    for _ in range(count):
        start = time.perf_counter()
        os.write(inp, b"x")
        got = os.read(out, 16)
        timings.append((time.perf_counter() - start) * 1e6)
        if got != b"x":
            sys.exit(f"unexpected echo {got!r}")
    return timings


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".build", "release"))
    parser.add_argument("--count", type=int, default=500)
    args = parser.parse_args()
    bindir = os.path.abspath(args.bin)
    work = tempfile.mkdtemp(prefix="bench-ssh-")
    procs = []
    try:
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
        clients = {name: command[:1] + (["-tt"] if command[0] == "ssh" else []) + command[1:] for name, command in clients.items()}
        clients["tsh ssh"] = clients["tsh ssh"][:-1] + ["-t"] + clients["tsh ssh"][-1:]

        sessions = {name: open_session(command) for name, command in clients.items()}
        timings = {name: [] for name in clients}
        for name, process in sessions.items():
            round_trips(process, 20)  # warm-up
        for _ in range(max(1, args.count // 50)):
            for name, process in sessions.items():
                timings[name] += round_trips(process, 50)
        for process in sessions.values():
            process.kill()
            process.wait()
        base = timings["ssh -J"]
        print(f"binaries: {bindir}; {len(base)} round trips of one byte per client, interleaved")
        print(f"{'client':<12} {'p50 us':>8} {'p99 us':>8}   ratio to ssh -J (p50, p99)")
        for name, values in timings.items():
            p50, p99 = statistics.median(values), percentile(values, 0.99)
            print(f"{name:<12} {p50:8.0f} {p99:8.0f}   {p50 / statistics.median(base):.2f}x, {p99 / percentile(base, 0.99):.2f}x")
    finally:
        stop_all(procs, work)


if __name__ == "__main__":
    main()
