#!/usr/bin/env python3
"""Trusted clusters scale check (issue 20). One root cluster (auth + proxy, no node service) and
--leaves leaf clusters, each a real `teleport` process (auth + proxy, no node service) that
establishes trust with the seed's commands (`tctl tokens add --type=trusted_cluster` on the root,
`tctl create` of a trusted_cluster on the leaf) and keeps its reverse tunnel to the root's proxy.
Prints, as plain text (not a test):

1. the root daemon's VmRSS before any leaf and once every leaf is online, idle for --idle seconds:
   (after - before) / leaves is the memory per leaf at the root (its tunnel, its remote_cluster
   record and CAs, the heartbeats: auth and proxy are one process here);
2. `tsh clusters` latency (p50/p95 over --runs, a root user's identity file) with every leaf listed.

    bench/trusted_clusters.py [--bin .build/debug] [--leaves 50] [--runs 20] [--idle 10]

Each leaf process takes about 50-100 MB of its own; on a small shared machine run fewer leaves
(--leaves 10) and say so with the figures. Every process is stopped by PID, the work directory
removed. The figures of a loaded, shared machine are noisy.
"""
import argparse, os, re, shutil, signal, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import free_port, percentile, run, wait_for  # noqa: E402


def vmrss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def write_config(path, name, work, ports):
    with open(path, "w") as f:
        f.write(f"""teleport:
  nodename: {name}
  data_dir: {work}/data
auth_service:
  cluster_name: {name}
  listen_addr: 127.0.0.1:{ports['auth']}
proxy_service:
  listen_addr: 127.0.0.1:{ports['proxy']}
  web_listen_addr: 127.0.0.1:{ports['web']}
  tunnel_listen_addr: 127.0.0.1:{ports['tunnel']}
ssh_service:
  enabled: no
""")


def start(bindir, name, root_work):
    work = os.path.join(root_work, name)
    os.makedirs(work)
    ports = {key: free_port() for key in ["auth", "web", "proxy", "tunnel"]}
    config = os.path.join(work, "teleport.yaml")
    write_config(config, name, work, ports)
    log = open(os.path.join(work, "teleport.log"), "w")
    process = subprocess.Popen([f"{bindir}/teleport", "start", "-c", config], stdout=log, stderr=log)
    tctl = [f"{bindir}/tctl", "-c", config]
    if not wait_for(lambda: subprocess.run(tctl + ["status"], capture_output=True).returncode == 0, 120):
        process.kill()
        sys.exit(f"{name} did not start; see {work}/teleport.log")
    return process, tctl, ports


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=".build/debug")
    parser.add_argument("--leaves", type=int, default=50)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--idle", type=int, default=10)
    args = parser.parse_args()
    bindir = os.path.abspath(args.bin)
    work = tempfile.mkdtemp(prefix="bench-trust-")
    processes = []
    try:
        root, root_tctl, root_ports = start(bindir, "root.bench", work)
        processes.append(root)
        time.sleep(args.idle)
        before = vmrss_kib(root.pid)
        web = f"127.0.0.1:{root_ports['web']}"
        started = time.time()
        for index in range(args.leaves):
            name = f"leaf{index:03d}.bench"
            leaf, leaf_tctl, _ = start(bindir, name, work)
            processes.append(leaf)
            added = run(root_tctl + ["tokens", "add", "--type=trusted_cluster", "--ttl=15m"]).stdout
            token = re.search(r"The cluster invite token: (\S+)", added).group(1)
            resource = os.path.join(work, name, "tc.yaml")
            with open(resource, "w") as f:
                f.write(f"""kind: trusted_cluster
version: v2
metadata:
  name: root.bench
spec:
  enabled: true
  token: {token}
  web_proxy_addr: {web}
  role_map:
    - remote: access
      local: [access]
""")
            run(leaf_tctl + ["create", resource])
        online = lambda: run(root_tctl + ["get", "rc"], check=False).stdout.count("connection: online") >= args.leaves
        if not wait_for(online, 300, step=1):
            sys.exit("not every leaf came online; see the logs under " + work)
        attach = time.time() - started
        time.sleep(args.idle)
        after = vmrss_kib(root.pid)
        leaf_rss = [vmrss_kib(p.pid) for p in processes[1:]]

        run(root_tctl + ["users", "add", "joe", "root", "--roles=access"])
        identity = os.path.join(work, "joe.id")
        run(root_tctl + ["auth", "sign", "--user=joe", f"--out={identity}"])
        tsh = [f"{bindir}/tsh", "-i", identity, f"--proxy={web}", "--insecure", "clusters"]
        listed = run(tsh).stdout
        assert listed.count(".bench") >= args.leaves + 1, listed
        times = []
        for _ in range(args.runs):
            t0 = time.time()
            run(tsh)
            times.append((time.time() - t0) * 1000)

        print(f"leaves: {args.leaves} (each its own teleport process: auth + proxy), attached and online in {attach:.1f} s")
        print(f"root daemon VmRSS: {before / 1024:.1f} MiB before, {after / 1024:.1f} MiB with every leaf online and idle {args.idle} s")
        print(f"per leaf at the root: {(after - before) / args.leaves:.0f} KiB")
        print(f"a leaf daemon's VmRSS: median {statistics.median(leaf_rss) / 1024:.1f} MiB")
        print(f"tsh clusters ({args.leaves + 1} rows) over {args.runs} runs: p50 {percentile(times, 0.5):.0f} ms, p95 {percentile(times, 0.95):.0f} ms")
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
        for process in reversed(processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
