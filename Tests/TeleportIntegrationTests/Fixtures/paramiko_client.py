#!/usr/bin/env python3
"""paramiko against a teleport-swift cluster: ThirdPartyClientTests runs it.

Connects to the proxy's SSH port with strict host-key checking (a known_hosts file made by
`tsh known-hosts`), reaches the node through a `direct-tcpip` channel (as `ssh -J` does) or the
`proxy:HOST:PORT@CLUSTER` subsystem, and there runs a command (exit status), a command on a pty
and an SFTP round trip. Prints one `key=value` line per result; exits 0 only when every step ran.
"""
import argparse
import hashlib
import os
import sys

import paramiko


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def client(known_hosts):
    ssh = paramiko.SSHClient()
    # paramiko cannot parse `@cert-authority` lines (and does not check host certificates):
    # it takes the plain host-key lines of `tsh known-hosts`, which name every node and the proxy.
    plain = known_hosts + ".plain"
    with open(known_hosts) as source, open(plain, "w") as target:
        target.writelines(line for line in source if not line.startswith("@"))
    ssh.load_host_keys(plain)
    ssh.set_missing_host_key_policy(paramiko.RejectPolicy())  # StrictHostKeyChecking=yes
    return ssh


def key(args):
    pkey = paramiko.Ed25519Key.from_private_key_file(args.key)
    if args.cert_only:
        # Offers only the certificate: our servers cannot check certificate offers.
        pkey.load_certificate(args.cert)
    return pkey


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--proxy", required=True, help="HOST:PORT of the proxy's SSH service")
    parser.add_argument("--node", required=True, help="NAME:PORT of the node")
    parser.add_argument("--cluster", required=True)
    parser.add_argument("--login", default="root")
    parser.add_argument("--key", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--known-hosts", required=True)
    parser.add_argument("--via", choices=["jump", "subsystem"], default="jump")
    parser.add_argument("--originator", default="127.0.0.1", help="originator host of the direct-tcpip channel")
    parser.add_argument("--cert-only", action="store_true")
    parser.add_argument("--sftp-file", help="local file to copy up and back")
    parser.add_argument("--remote-dir", help="node directory for the SFTP copy")
    args = parser.parse_args()

    proxy_host, proxy_port = args.proxy.rsplit(":", 1)
    node_host, node_port = args.node.rsplit(":", 1)
    proxy = client(args.known_hosts)
    try:
        proxy.connect(proxy_host, int(proxy_port), username=args.login, pkey=key(args),
                      allow_agent=False, look_for_keys=False, timeout=20)
    except paramiko.AuthenticationException as error:
        print(f"proxy-auth-failed={error}")
        return 4
    print("proxy=ok")
    transport = proxy.get_transport()
    try:
        if args.via == "jump":
            channel = transport.open_channel("direct-tcpip", (node_host, int(node_port)), (args.originator, 0), timeout=20)
        else:
            channel = transport.open_session(timeout=20)
            channel.invoke_subsystem(f"proxy:{node_host}:{node_port}@{args.cluster}")
    except Exception as error:  # the proxy drops the whole connection for a non-IP originator
        print(f"tunnel-failed={type(error).__name__}: {error}")
        return 3
    node = client(args.known_hosts)
    node.connect(node_host, int(node_port), username=args.login, pkey=key(args), sock=channel,
                 allow_agent=False, look_for_keys=False, timeout=20)
    print("node=ok")

    _, stdout, stderr = node.exec_command("echo hello-from-paramiko; echo to-stderr >&2; exit 7")
    out = stdout.read().decode()
    err = stderr.read().decode()
    print(f"exec-status={stdout.channel.recv_exit_status()}")
    print(f"exec-stdout={out.strip()}")
    print(f"exec-stderr={err.strip()}")

    session = node.get_transport().open_session()
    session.get_pty(term="xterm", width=100, height=30)
    session.exec_command("test -t 0 && echo stdin-is-a-tty; stty size")
    text = b""
    while True:
        chunk = session.recv(65536)
        if not chunk:
            break
        text += chunk
    print(f"pty-status={session.recv_exit_status()}")
    print("pty-output=" + text.decode().replace("\r", "").strip().replace("\n", "|"))

    if args.sftp_file:
        sftp = node.open_sftp()
        remote = os.path.join(args.remote_dir, "paramiko-" + os.path.basename(args.sftp_file))
        back = args.sftp_file + ".paramiko-back"
        sftp.put(args.sftp_file, remote)
        sftp.get(remote, back)
        sftp.close()
        print(f"sftp-sha256={sha256(back)}")
        os.remove(back)
    node.close()
    proxy.close()
    print("done=ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
