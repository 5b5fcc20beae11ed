#!/usr/bin/env python3
"""`tsh scp` of a large file (issue 23): the same file (random bytes, --mb MiB) copied to the node
by `scp` direct to sshd, `scp -J` through an OpenSSH bastion and `tsh scp` through our proxy to
our node (all three speak SFTP to the node's `sftp-server`: OpenSSH's scp does since 9.0, tsh
always), interleaved in --rounds rounds; every copy's SHA-256 is checked. Prints each client's
best MB/s and its ratio to scp direct (the issue's target: tsh ≥ 0.8× direct) and to `scp -J`.
The test bed is bench/ssh.py's. Run by hand (not part of the test suite):

    bench/scp.py [--bin .build/release] [--mb 1024] [--rounds 2]
"""
import argparse, hashlib, os, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ssh import Bed, stop_all  # noqa: E402


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=".build/release")
    parser.add_argument("--mb", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    bindir = os.path.abspath(args.bin)
    work = tempfile.mkdtemp(prefix="bench-scp-")
    procs = []
    try:
        bed = Bed(bindir, work, procs)
        source = os.path.join(work, "source.bin")
        subprocess.run(["dd", "if=/dev/urandom", f"of={source}", "bs=1M", f"count={args.mb}"], check=True, stderr=subprocess.DEVNULL)
        expected = sha256(source)
        target = os.path.join(work, "copy.bin")
        sshd = str(bed.ports["sshd"])
        clients = {
            "scp direct": ["scp", "-q"] + bed.opts + ["-P", sshd, source, f"root@127.0.0.1:{target}"],
            "scp -J": ["scp", "-q", "-F", bed.jump_config, "-J", f"root@localhost:{sshd}", "-P", sshd, source, f"root@127.0.0.1:{target}"],
            "tsh scp": [f"{bindir}/tsh", "-i", bed.identity, f"--proxy=127.0.0.1:{bed.ports['web']}", "--insecure", "scp", source,
                        f"root@benchnode:{target}"],
        }
        rates = {name: [] for name in clients}
        for _ in range(args.rounds):
            for name, command in clients.items():
                if os.path.exists(target):
                    os.remove(target)
                start = time.monotonic()
                done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
                elapsed = time.monotonic() - start
                if done.returncode != 0:
                    sys.exit(f"{name} failed: {done.stderr.strip()}")
                if sha256(target) != expected:
                    sys.exit(f"{name}: the copy's SHA-256 differs from the source's")
                rates[name].append(args.mb / elapsed)
        direct, jump = max(rates["scp direct"]), max(rates["scp -J"])
        print(f"binaries: {bindir}; {args.mb} MiB of random bytes, {args.rounds} interleaved rounds, SHA-256 checked")
        print(f"{'client':<12} {'MB/s':>8}   rounds              ratio to direct, to scp -J")
        for name, values in rates.items():
            best = max(values)
            print(f"{name:<12} {best:8.1f}   {', '.join(f'{v:.0f}' for v in values):<18}  {best / direct:.2f}x, {best / jump:.2f}x")
        print(f"tsh scp / scp direct: {max(rates['tsh scp']) / direct:.2f} (target 0.8)")
    finally:
        stop_all(procs, work)


if __name__ == "__main__":
    main()
