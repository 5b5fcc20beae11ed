#!/usr/bin/env python3
"""HTTP apps through the proxy vs direct (issue 17, application access). One cluster: an
auth+proxy daemon (`public_addr: localhost`), an application service in a second daemon (joined
with a static `app` token) and Python's `http.server` serving a directory as the app. Prints, as
plain text (not a test):

1. Sequential GETs of a small file over one keep-alive connection (--requests of them), (A)
   through the proxy (TLS with the app certificate to `bench.localhost`) and (B) direct, interleaved
   in --rounds rounds: requests/s and p50/p99 latency, the median round of each.
2. A --megabytes MB download through the proxy and direct: MB/s.

The certificate is a user certificate from `tctl auth sign --user`, turned into an app
certificate by the proxy's `POST /webapi/apps/login` (as `tsh apps login` does). Every proxied
request is audited (`app.session.request`) and gets a JWT (cached per connection).

    bench/apps.py [--bin .build/debug] [--requests 500] [--rounds 3] [--megabytes 200]

Not wrk/nginx (the issue's benchmark, still to do): wrk has no client certificates; `tsh proxy
app` in front of it would measure one more hop.
"""
import argparse, http.client, json, os, re, socket, ssl, statistics, subprocess, sys, tempfile, time
from benchlib import free_port, listening, run, wait_for  # noqa: E402


def connection(proxied, ports, context):
    if proxied:
        raw = socket.create_connection(("127.0.0.1", ports["web"]))
        conn = http.client.HTTPSConnection("bench.localhost", ports["web"], context=context)
        conn.sock = context.wrap_socket(raw, server_hostname="bench.localhost")
        return conn, f"bench.localhost:{ports['web']}"
    return http.client.HTTPConnection("127.0.0.1", ports["app"]), f"127.0.0.1:{ports['app']}"


def sequential(proxied, ports, context, count):
    conn, host = connection(proxied, ports, context)
    latencies = []
    start = time.perf_counter()
    for _ in range(count):
        began = time.perf_counter()
        conn.request("GET", "/small.txt", headers={"Host": host})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            sys.exit(f"GET /small.txt answered {response.status}")
        latencies.append(time.perf_counter() - began)
    elapsed = time.perf_counter() - start
    conn.close()
    latencies.sort()
    return count / elapsed, latencies[len(latencies) // 2] * 1000, latencies[int(len(latencies) * 0.99) - 1] * 1000


def download(proxied, ports, context, megabytes):
    conn, host = connection(proxied, ports, context)
    start = time.perf_counter()
    conn.request("GET", "/big.bin", headers={"Host": host})
    response = conn.getresponse()
    total = 0
    while chunk := response.read(1 << 20):
        total += len(chunk)
    elapsed = time.perf_counter() - start
    conn.close()
    if total != megabytes << 20:
        sys.exit(f"downloaded {total} bytes, expected {megabytes << 20}")
    return megabytes / elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=".build/debug")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--megabytes", type=int, default=200)
    args = parser.parse_args()
    teleport, tctl = (os.path.join(os.path.abspath(args.bin), name) for name in ("teleport", "tctl"))
    root = tempfile.mkdtemp(prefix="appbench-")
    processes = []
    try:
        ports = {name: free_port() for name in ["auth", "web", "ssh", "tunnel", "appservice", "app"]}
        token = "app" + os.urandom(14).hex()
        config = os.path.join(root, "teleport.yaml")
        with open(config, "w") as f:
            f.write(f"""teleport:
  nodename: bench
  data_dir: {root}/data
auth_service:
  cluster_name: appbench.example
  listen_addr: 127.0.0.1:{ports['auth']}
  tokens: ["app:{token}"]
proxy_service:
  public_addr: localhost
  listen_addr: 127.0.0.1:{ports['ssh']}
  web_listen_addr: 127.0.0.1:{ports['web']}
  tunnel_listen_addr: 127.0.0.1:{ports['tunnel']}
ssh_service:
  enabled: false
""")
        served = os.path.join(root, "www")
        os.makedirs(served)
        with open(os.path.join(served, "small.txt"), "w") as f:
            f.write("hello\n" * 100)
        with open(os.path.join(served, "big.bin"), "wb") as f:
            f.truncate(args.megabytes << 20)
        applog = open(os.path.join(root, "app.log"), "w")
        processes.append(subprocess.Popen(
            [sys.executable, "-c", "import http.server, functools, sys; http.server.SimpleHTTPRequestHandler.protocol_version = 'HTTP/1.1'; http.server.SimpleHTTPRequestHandler.disable_nagle_algorithm = True; "
             "http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), functools.partial(http.server.SimpleHTTPRequestHandler, "
             "directory=sys.argv[2])).serve_forever()", str(ports["app"]), served], stdout=applog, stderr=applog))
        log = open(os.path.join(root, "teleport.log"), "w")
        processes.append(subprocess.Popen([teleport, "start", "-c", config], stdout=log, stderr=log))
        if not wait_for(lambda: listening(ports["web"]) and listening(ports["app"]), 60):
            sys.exit("the cluster or the app did not start: see " + log.name)
        tctl_c = [tctl, "-c", config]
        wait_for(lambda: run(tctl_c + ["status"], check=False).returncode == 0, 30)
        appconfig = os.path.join(root, "app.yaml")
        with open(appconfig, "w") as f:
            f.write(f"""teleport:
  nodename: apphost
  data_dir: {root}/appdata
  log:
    severity: DEBUG
  auth_token: {token}
  auth_servers: [127.0.0.1:{ports['auth']}]
auth_service:
  enabled: false
proxy_service:
  enabled: false
ssh_service:
  enabled: false
app_service:
  enabled: true
  listen_addr: 127.0.0.1:{ports['appservice']}
  apps:
  - name: bench
    uri: http://127.0.0.1:{ports['app']}
""")
        servicelog = open(os.path.join(root, "appservice.log"), "w")
        processes.append(subprocess.Popen([teleport, "start", "-c", appconfig], stdout=servicelog, stderr=servicelog))
        role = os.path.join(root, "role.yaml")
        with open(role, "w") as f:
            f.write("kind: role\nversion: v5\nmetadata:\n  name: benchapps\nspec:\n  allow:\n    app_labels:\n      '*': '*'\n")
        run(tctl_c + ["create", role])
        run(tctl_c + ["users", "add", "bench", "--roles=benchapps"])
        identity = os.path.join(root, "bench.id")
        run(tctl_c + ["auth", "sign", "--user=bench", f"--out={identity}", "--ttl=8h"])
        blocks = re.findall(r"(-----BEGIN ([A-Z ]+)-----\n.*?-----END \2-----\n?)", open(identity).read(), re.S)
        key = os.path.join(root, "bench.key")
        cert = os.path.join(root, "bench.crt")
        open(key, "w").write(next(text for text, kind in blocks if kind == "PRIVATE KEY"))
        open(cert, "w").write(next(text for text, kind in blocks if kind == "CERTIFICATE"))
        if not wait_for(lambda: "bench" in run(tctl_c + ["get", "app_server"], check=False).stdout, 60):
            sys.exit("the application service did not register: see " + servicelog.name)
        reply = run(["curl", "-sS", "-k", "--cert", cert, "--key", key, "-H", "Content-Type: application/json",
                     "-d", json.dumps({"name": "bench"}), f"https://127.0.0.1:{ports['web']}/webapi/apps/login"])
        route = os.path.join(root, "route.pem")
        open(route, "w").write(json.loads(reply.stdout)["certificate"])
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.load_cert_chain(route, key)

        results = {True: [], False: []}
        for round in range(args.rounds):
            for proxied in ([True, False] if round % 2 == 0 else [False, True]):
                try:
                    results[proxied].append(sequential(proxied, ports, context, args.requests))
                except (OSError, http.client.HTTPException) as error:
                    sys.exit(f"round {round + 1}, {'through the proxy' if proxied else 'direct'}: {error!r}; logs in {root}")
        for proxied, name in [(True, "through the proxy"), (False, "direct")]:
            rate, p50, p99 = sorted(results[proxied])[len(results[proxied]) // 2]
            print(f"{args.requests} sequential keep-alive GETs {name}: {rate:.0f} requests/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms")
        through = download(True, ports, context, args.megabytes)
        direct = download(False, ports, context, args.megabytes)
        print(f"{args.megabytes} MB download: {through:.0f} MB/s through the proxy, {direct:.0f} MB/s direct")
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()
