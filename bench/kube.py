#!/usr/bin/env python3
"""Kubernetes API requests through the proxy vs direct (issue 22, Kubernetes access). One cluster:
an auth+proxy daemon, a Kubernetes service in a second daemon (joined with a static `kube` token)
whose kubeconfig points at the STAND-IN API server (Tests/fixtures/kube_apiserver_standin.py: no real
API server can run here; Python's threaded http.server, so the direct figures are the stand-in's own
ceiling). Prints, as plain text (not a test):

1. Sequential `GET /api/v1/namespaces/default/pods` over one keep-alive connection (--requests of
   them), (A) through the proxy's web port (SNI kube-teleport-proxy-alpn.teleport.cluster.local, the
   route certificate from `POST /webapi/kube/login`) and (B) direct to the stand-in (its client
   certificate, Impersonate-User set by hand), interleaved in --rounds rounds: requests/s, p50 and
   p99, the median round of each. Every proxied request opens a new TLS connection from the service
   to the API server and writes a `kube.request` audit event.
2. The same GET over one HTTP/2 connection through the proxy (the h2 library), one stream at a time
   and 16 at a time (each stream is its own connection from the proxy to the Kubernetes service).
3. `kubectl exec web-0 -- head -c N /dev/zero` (--megabytes MB of stdout over the WebSocket
   v5.channel.k8s.io stream) through the proxy and direct: MB/s.

    bench/kube.py [--bin .build/debug] [--requests 500] [--rounds 3] [--megabytes 50]
"""
import argparse, http.client, json, os, re, socket, ssl, subprocess, sys, tempfile, time
from benchlib import free_port, listening, run, wait_for  # noqa: E402

SERVER_NAME = "kube-teleport-proxy-alpn.teleport.cluster.local"
STANDIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "fixtures", "kube_apiserver_standin.py")


def connection(proxied, ports, contexts):
    if proxied:
        raw = socket.create_connection(("127.0.0.1", ports["web"]))
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = http.client.HTTPSConnection(SERVER_NAME, ports["web"], context=contexts[True])
        conn.sock = contexts[True].wrap_socket(raw, server_hostname=SERVER_NAME)
        return conn
    return http.client.HTTPSConnection("127.0.0.1", ports["api"], context=contexts[False])


def sequential(proxied, ports, contexts, count):
    conn = connection(proxied, ports, contexts)
    headers = {"Accept": "application/json"} if proxied else {"Accept": "application/json", "Impersonate-User": "bench"}
    latencies = []
    start = time.perf_counter()
    for _ in range(count):
        began = time.perf_counter()
        conn.request("GET", "/api/v1/namespaces/default/pods", headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            sys.exit(f"GET pods answered {response.status}")
        latencies.append(time.perf_counter() - began)
    elapsed = time.perf_counter() - start
    conn.close()
    latencies.sort()
    return count / elapsed, latencies[len(latencies) // 2] * 1000, latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000


def h2_requests(ports, route, key, count, in_flight):
    """`count` GET pods over one HTTP/2 connection through the proxy, `in_flight` streams at a time
    (each stream is one connection from the proxy to the Kubernetes service): requests/s, p50, p99."""
    import h2.config, h2.connection, h2.events
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.load_cert_chain(route, key)
    context.set_alpn_protocols(["h2"])
    raw = socket.create_connection(("127.0.0.1", ports["web"]))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock = context.wrap_socket(raw, server_hostname=SERVER_NAME)
    if sock.selected_alpn_protocol() != "h2":
        sys.exit(f"the proxy chose {sock.selected_alpn_protocol()!r}, not h2")
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    headers = [(":method", "GET"), (":path", "/api/v1/namespaces/default/pods"), (":scheme", "https"), (":authority", SERVER_NAME),
               ("accept", "application/json")]
    started, latencies, sent, done = {}, [], 0, 0
    begin = time.perf_counter()
    while done < count:
        while sent < count and len(started) < in_flight:
            stream = conn.get_next_available_stream_id()
            conn.send_headers(stream, headers, end_stream=True)
            started[stream] = time.perf_counter()
            sent += 1
        sock.sendall(conn.data_to_send())
        data = sock.recv(65536)
        if not data:
            sys.exit("the proxy closed the HTTP/2 connection")
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.ResponseReceived) and dict(event.headers).get(":status") != "200":
                sys.exit(f"GET pods over HTTP/2 answered {dict(event.headers).get(':status')}")
            elif isinstance(event, h2.events.StreamEnded):
                latencies.append(time.perf_counter() - started.pop(event.stream_id))
                done += 1
            elif isinstance(event, h2.events.StreamReset):
                sys.exit(f"stream {event.stream_id} reset: {event.error_code}")
        pending = conn.data_to_send()
        if pending:
            sock.sendall(pending)
    elapsed = time.perf_counter() - begin
    sock.close()
    latencies.sort()
    return count / elapsed, latencies[len(latencies) // 2] * 1000, latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000


def exec_rate(kubeconfig, megabytes, extra):
    start = time.perf_counter()
    result = subprocess.run(["kubectl", "--kubeconfig", kubeconfig] + extra + ["exec", "web-0", "--", "head", "-c", str(megabytes << 20), "/dev/zero"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
    elapsed = time.perf_counter() - start
    if result.returncode != 0 or len(result.stdout) != megabytes << 20:
        sys.exit(f"kubectl exec: exit {result.returncode}, {len(result.stdout)} bytes: {result.stderr.decode()[-500:]}")
    return megabytes / elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=".build/debug")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--megabytes", type=int, default=50)
    args = parser.parse_args()
    teleport, tctl = (os.path.join(os.path.abspath(args.bin), name) for name in ("teleport", "tctl"))
    root = tempfile.mkdtemp(prefix="kubebench-")
    processes = []
    try:
        ports = {name: free_port() for name in ["auth", "web", "ssh", "tunnel", "kubeservice", "api"]}
        token = "kube" + os.urandom(14).hex()
        certs = os.path.join(root, "certs")
        os.makedirs(certs)
        run(["sh", "-c", f"""set -e; cd {certs}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=standin-ca
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr -subj /CN=kube-apiserver
printf 'subjectAltName=IP:127.0.0.1\\n' > ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout client.key -out client.csr -subj /CN=teleport-kube-service
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 2>/dev/null"""])
        apilog = open(os.path.join(root, "standin.log"), "w")
        processes.append(subprocess.Popen(
            [sys.executable, STANDIN, "--port", str(ports["api"]), "--cert", f"{certs}/server.pem", "--key", f"{certs}/server.key",
             "--client-ca", f"{certs}/ca.pem", "--log", os.path.join(root, "requests.jsonl")], stdout=apilog, stderr=apilog))
        direct_kubeconfig = os.path.join(root, "direct.kubeconfig")
        with open(direct_kubeconfig, "w") as f:
            f.write(f"""apiVersion: v1
kind: Config
clusters:
- name: standin
  cluster: {{server: "https://127.0.0.1:{ports['api']}", certificate-authority: {certs}/ca.pem}}
users:
- name: teleport
  user: {{client-certificate: {certs}/client.pem, client-key: {certs}/client.key}}
contexts:
- name: bench-cluster
  context: {{cluster: standin, user: teleport}}
current-context: bench-cluster
""")
        config = os.path.join(root, "teleport.yaml")
        with open(config, "w") as f:
            f.write(f"""teleport:
  nodename: bench
  data_dir: {root}/data
auth_service:
  cluster_name: kubebench.example
  listen_addr: 127.0.0.1:{ports['auth']}
  tokens: ["kube:{token}"]
proxy_service:
  public_addr: localhost
  listen_addr: 127.0.0.1:{ports['ssh']}
  web_listen_addr: 127.0.0.1:{ports['web']}
  tunnel_listen_addr: 127.0.0.1:{ports['tunnel']}
ssh_service:
  enabled: false
""")
        log = open(os.path.join(root, "teleport.log"), "w")
        processes.append(subprocess.Popen([teleport, "start", "-c", config], stdout=log, stderr=log))
        if not wait_for(lambda: listening(ports["web"]) and listening(ports["api"]), 60):
            sys.exit("the cluster or the stand-in did not start: see " + log.name)
        tctl_c = [tctl, "-c", config]
        wait_for(lambda: run(tctl_c + ["status"], check=False).returncode == 0, 30)
        kubeconfig_service = os.path.join(root, "service.yaml")
        with open(kubeconfig_service, "w") as f:
            f.write(f"""teleport:
  nodename: kubehost
  data_dir: {root}/kubedata
  auth_token: {token}
  auth_servers: [127.0.0.1:{ports['auth']}]
auth_service:
  enabled: false
proxy_service:
  enabled: false
ssh_service:
  enabled: false
kubernetes_service:
  enabled: true
  listen_addr: 127.0.0.1:{ports['kubeservice']}
  kubeconfig_file: {direct_kubeconfig}
""")
        servicelog = open(os.path.join(root, "kubeservice.log"), "w")
        processes.append(subprocess.Popen([teleport, "start", "-c", kubeconfig_service], stdout=servicelog, stderr=servicelog))
        role = os.path.join(root, "role.yaml")
        with open(role, "w") as f:
            f.write("kind: role\nversion: v5\nmetadata:\n  name: benchkube\nspec:\n  allow:\n    kubernetes_labels:\n      '*': '*'\n"
                    "    kubernetes_groups: [viewers]\n")
        run(tctl_c + ["create", role])
        run(tctl_c + ["users", "add", "bench", "--roles=benchkube"])
        identity = os.path.join(root, "bench.id")
        run(tctl_c + ["auth", "sign", "--user=bench", f"--out={identity}", "--ttl=8h"])
        blocks = re.findall(r"(-----BEGIN ([A-Z ]+)-----\n.*?-----END \2-----\n?)", open(identity).read(), re.S)
        key = os.path.join(root, "bench.key")
        cert = os.path.join(root, "bench.crt")
        open(key, "w").write(next(text for text, kind in blocks if kind == "PRIVATE KEY"))
        open(cert, "w").write(next(text for text, kind in blocks if kind == "CERTIFICATE"))
        if not wait_for(lambda: "bench-cluster" in run(tctl_c + ["get", "kube_server"], check=False).stdout, 60):
            sys.exit("the Kubernetes service did not register: see " + servicelog.name)
        reply = run(["curl", "-sS", "-k", "--cert", cert, "--key", key, "-H", "Content-Type: application/json",
                     "-d", json.dumps({"name": "bench-cluster"}), f"https://127.0.0.1:{ports['web']}/webapi/kube/login"])
        route = os.path.join(root, "route.pem")
        open(route, "w").write(json.loads(reply.stdout)["certificate"])
        proxied_context = ssl.create_default_context()
        proxied_context.check_hostname = False
        proxied_context.verify_mode = ssl.CERT_NONE
        proxied_context.load_cert_chain(route, key)
        direct_context = ssl.create_default_context(cafile=f"{certs}/ca.pem")
        direct_context.check_hostname = False
        direct_context.load_cert_chain(f"{certs}/client.pem", f"{certs}/client.key")
        contexts = {True: proxied_context, False: direct_context}

        results = {True: [], False: []}
        for round in range(args.rounds):
            for proxied in ([True, False] if round % 2 == 0 else [False, True]):
                try:
                    results[proxied].append(sequential(proxied, ports, contexts, args.requests))
                except (OSError, http.client.HTTPException) as error:
                    sys.exit(f"round {round + 1}, {'through the proxy' if proxied else 'direct'}: {error!r}; logs in {root}")
        for proxied, name in [(True, "through the proxy"), (False, "direct")]:
            rate, p50, p99 = sorted(results[proxied])[len(results[proxied]) // 2]
            print(f"{args.requests} sequential keep-alive GET pods {name}: {rate:.0f} requests/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms")

        for in_flight in (1, 16):
            rate, p50, p99 = h2_requests(ports, route, key, args.requests, in_flight)
            print(f"{args.requests} GET pods over one HTTP/2 connection through the proxy, {in_flight} at a time: "
                  f"{rate:.0f} requests/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms")

        proxied_kubeconfig = os.path.join(root, "proxied.kubeconfig")
        with open(proxied_kubeconfig, "w") as f:
            f.write(f"""apiVersion: v1
kind: Config
clusters:
- name: teleport
  cluster: {{server: "https://127.0.0.1:{ports['web']}", tls-server-name: {SERVER_NAME}, insecure-skip-tls-verify: true}}
users:
- name: bench
  user: {{client-certificate: {route}, client-key: {key}}}
contexts:
- name: bench
  context: {{cluster: teleport, user: bench}}
current-context: bench
""")
        through = exec_rate(proxied_kubeconfig, args.megabytes, [])
        direct = exec_rate(direct_kubeconfig, args.megabytes, ["--as=bench"])
        print(f"kubectl exec stdout of {args.megabytes} MB: {through:.1f} MB/s through the proxy, {direct:.1f} MB/s direct")
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()
