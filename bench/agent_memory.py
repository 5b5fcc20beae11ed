#!/usr/bin/env python3
"""An idle node agent's memory and the binaries' size (issue 23). bench/ssh.py's bed (an
auth+proxy+node daemon and OpenSSH's sshd), then a node-only agent (`teleport start` with only
`ssh_service`, joined with a node token and the CA pin, heartbeating to the auth service) left
idle for --idle seconds. Prints the agent's VmRSS and its anonymous part (RssAnon: what it
allocated; the rest is the binary's pages it touched), next to sshd's listener idle (OpenSSH's
baseline) and the target (30 MiB), and the agent's largest resident mappings by file; then each
binary's size as built and stripped (`strip -o`, in a temporary file) with the size of its
sections (`size -A`: code, read-only data, Swift metadata, debug information). Run by hand (not part of the test suite):

    bench/agent_memory.py [--bin .build/release] [--idle 30]
"""
import argparse, os, re, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ssh import Bed, stop_all  # noqa: E402


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def resident_by_file(pid, top=6):
    """The largest resident mappings of `pid`, summed per file (anonymous ones as "[anon]")."""
    totals, current = {}, None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            fields = line.split()
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                current = fields[5] if len(fields) > 5 else "[anon]"
            elif fields and fields[0] == "Rss:" and current is not None:
                totals[current] = totals.get(current, 0) + int(fields[1])
    return sorted(totals.items(), key=lambda item: -item[1])[:top]


def sections(path):
    """(code, read-only data, Swift metadata and reflection, debug information) in bytes."""
    out = subprocess.run(["size", "-A", path], capture_output=True, text=True).stdout
    code = rodata = swift = debug = 0
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2 or not parts[1].isdigit():
            continue
        name, size = parts[0], int(parts[1])
        if name.startswith(".debug"):
            debug += size
        elif name.startswith("swift5_"):
            swift += size
        elif name == ".text":
            code += size
        elif name in (".rodata", ".eh_frame", ".eh_frame_hdr", ".data.rel.ro"):
            rodata += size
    return code, rodata, swift, debug


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=".build/release")
    parser.add_argument("--idle", type=float, default=30)
    args = parser.parse_args()
    bindir = os.path.abspath(args.bin)
    work = tempfile.mkdtemp(prefix="bench-agent-")
    procs = []
    try:
        bed = Bed(bindir, work, procs)
        status = subprocess.run(bed.tctl + ["status"], capture_output=True, text=True).stdout
        pin = re.search(r"sha256:[0-9a-f]{64}", status).group(0)
        added = subprocess.run(bed.tctl + ["tokens", "add", "--type=node"], capture_output=True, text=True, check=True).stdout
        token = re.search(r"--token=(\S+)", added) or re.search(r"token: (\S+)", added)
        if not token:
            sys.exit(f"no token in: {added}")
        config = os.path.join(work, "agent.yaml")
        with open(config, "w") as f:
            f.write(f"""version: v3
teleport:
  nodename: idleagent
  data_dir: {work}/agent
  auth_token: {token.group(1)}
  ca_pin: {pin}
  auth_servers: [127.0.0.1:{bed.ports['auth']}]
auth_service:
  enabled: no
proxy_service:
  enabled: no
ssh_service:
  enabled: yes
  listen_addr: 127.0.0.1:0
""")
        log = open(os.path.join(work, "agent.log"), "w")
        agent = subprocess.Popen([f"{bindir}/teleport", "start", "-c", config], stdout=log, stderr=log)
        procs.append(agent)
        deadline = time.monotonic() + 90
        while "idleagent" not in subprocess.run(bed.tctl + ["nodes", "ls"], capture_output=True, text=True).stdout:
            if time.monotonic() > deadline or agent.poll() is not None:
                sys.exit(f"the agent did not join; see {work}/agent.log")
            time.sleep(0.5)
        time.sleep(args.idle)
        rss, anon = status_kib(agent.pid, "VmRSS"), status_kib(agent.pid, "RssAnon")
        sshd = procs[1].pid
        sshd_rss, sshd_anon = status_kib(sshd, "VmRSS"), status_kib(sshd, "RssAnon")
        print(f"binaries: {bindir}; the agent idle for {args.idle:.0f} s after joining")
        print(f"{'process':<34} {'VmRSS MiB':>10} {'RssAnon MiB':>12}")
        print(f"{'teleport, node agent only':<34} {rss / 1024:10.1f} {anon / 1024:12.1f}   target < 30 MiB: ratio {rss / 1024 / 30:.2f}")
        print(f"{'OpenSSH sshd listener, idle':<34} {sshd_rss / 1024:10.1f} {sshd_anon / 1024:12.1f}   ours / sshd: {rss / max(sshd_rss, 1):.1f}x")
        print("the agent's largest resident mappings:")
        for name, kib in resident_by_file(agent.pid):
            print(f"   {kib / 1024:6.1f} MiB  {name}")
        print(f"{'binary':<10} {'size MiB':>9} {'stripped':>9} {'code':>7} {'rodata':>7} {'swift md':>9} {'debug':>7}")
        for name in ["teleport", "tsh", "tctl"]:
            path = os.path.join(bindir, name)
            stripped = os.path.join(work, name + ".stripped")
            subprocess.run(["strip", "-o", stripped, path], check=True)
            code, rodata, swift, debug = sections(path)
            mib = lambda n: f"{n / 1048576:.1f}"  # noqa: E731
            print(f"{name:<10} {mib(os.path.getsize(path)):>9} {mib(os.path.getsize(stripped)):>9} {mib(code):>7} {mib(rodata):>7} {mib(swift):>9} {mib(debug):>7}")
    finally:
        stop_all(procs, work)


if __name__ == "__main__":
    main()
