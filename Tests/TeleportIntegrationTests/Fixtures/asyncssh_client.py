#!/usr/bin/env python3
"""asyncssh against a teleport-swift cluster: ThirdPartyClientTests runs it.

Connects to the proxy's SSH port with strict host-key checking (a known_hosts file made by
`tsh known-hosts`), reaches the node with `tunnel=` through a `direct-tcpip` channel (as `ssh -J`
does) or through the `proxy:HOST:PORT@CLUSTER` subsystem, and there runs a command (exit status),
a command on a pty and an SFTP round trip. Prints one `key=value` line per result; exits 0 only
when every step ran.
"""
import argparse
import asyncio
import hashlib
import os
import sys

import asyncssh


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class IPOriginator:
    """A `tunnel=` wrapper that sends an IP originator: asyncssh's own tunnel sends "", which
    swift-nio-ssh alone cannot parse (our servers rewrite it; other servers built on that library
    may drop the connection)."""

    def __init__(self, connection, originator):
        self.connection = connection
        self.originator = originator

    async def create_connection(self, session_factory, host, port):
        return await self.connection.create_connection(session_factory, host, port, orig_host=self.originator, orig_port=0)


class ProxySubsystem:
    """A `tunnel=` that reaches HOST:PORT through the proxy's `proxy:HOST:PORT@CLUSTER` subsystem
    (OpenSSH's `ProxyCommand ssh -p 3023 PROXY -s proxy:%h:%p@CLUSTER`)."""

    def __init__(self, connection, cluster):
        self.connection = connection
        self.cluster = cluster

    async def create_connection(self, session_factory, host, port):
        return await self.connection.create_session(
            session_factory, subsystem=f"proxy:{host}:{port}@{self.cluster}", encoding=None)


async def run(args):
    proxy_host, proxy_port = args.proxy.rsplit(":", 1)
    node_host, node_port = args.node.rsplit(":", 1)
    key = asyncssh.read_private_key(args.key)
    if args.cert_only:
        keys = [(key, asyncssh.read_certificate(args.cert))]
    else:
        # The plain key: our servers check the certificate registered for it.
        keys = [key]
    options = dict(username=args.login, client_keys=keys, known_hosts=args.known_hosts, agent_path=None)
    try:
        proxy = await asyncssh.connect(proxy_host, int(proxy_port), **options)
    except asyncssh.PermissionDenied as error:
        print(f"proxy-auth-failed={error}")
        return 4
    print("proxy=ok")
    if args.via == "subsystem":
        tunnel = ProxySubsystem(proxy, args.cluster)
    elif args.originator == "asyncssh-default":
        tunnel = proxy
    else:
        tunnel = IPOriginator(proxy, args.originator)
    try:
        node = await asyncssh.connect(node_host, int(node_port), tunnel=tunnel, **options)
    except (OSError, asyncssh.Error) as error:
        print(f"tunnel-failed={type(error).__name__}: {error}")
        return 3
    print("node=ok")
    async with node:
        result = await node.run("echo hello-from-asyncssh; echo to-stderr >&2; exit 7")
        print(f"exec-status={result.exit_status}")
        print(f"exec-stdout={result.stdout.strip()}")
        print(f"exec-stderr={result.stderr.strip()}")
        result = await node.run("test -t 0 && echo stdin-is-a-tty; stty size", term_type="xterm", term_size=(100, 30))
        print(f"pty-status={result.exit_status}")
        print("pty-output=" + result.stdout.replace("\r", "").strip().replace("\n", "|"))
        if args.sftp_file:
            remote = os.path.join(args.remote_dir, "asyncssh-" + os.path.basename(args.sftp_file))
            back = args.sftp_file + ".asyncssh-back"
            async with node.start_sftp_client() as sftp:
                await sftp.put(args.sftp_file, remote)
                await sftp.get(remote, back)
            print(f"sftp-sha256={sha256(back)}")
            os.remove(back)
    proxy.close()
    await proxy.wait_closed()
    print("done=ok")
    return 0


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
    parser.add_argument("--originator", default="127.0.0.1",
                        help="originator host of the direct-tcpip channel; asyncssh-default sends asyncssh's own (\"\")")
    parser.add_argument("--cert-only", action="store_true")
    parser.add_argument("--sftp-file", help="local file to copy up and back")
    parser.add_argument("--remote-dir", help="node directory for the SFTP copy")
    return asyncio.run(asyncio.wait_for(run(parser.parse_args()), 120))


if __name__ == "__main__":
    sys.exit(main())
