#!/usr/bin/env python3
"""The issue's application access benchmark (issue 17): `wrk` (Debian) against nginx (Debian),
through the proxy's browser path vs direct. Prints, as plain text (not a test):

1. wrk, keep-alive, --connections connections (16), 2 threads, --seconds per run, a 600-byte
   file: (A) through the proxy at https://localhost:PORT/ with the app session cookie (the app's
   `public_addr` is `localhost`; the web UI is reached as https://127.0.0.1:PORT) and (B) nginx
   direct, interleaved in --rounds rounds (A B, B A, ...): requests/s and latency, the median round
   of each, and the ratio.
2. A --megabytes MB download (1 GB by default) through the proxy with the cookie and direct, with
   curl: MB/s.

The cookie comes as a browser gets it: a user signed up with password and TOTP (the signup page's
form), a web login, `GET /web/launch/bench`, then the one-time `/x-teleport-auth?token=` on the
app's origin. Every proxied request is audited (`app.session.request`) and carries a JWT; the
proxy keeps its connection to the application service and the service its connection to nginx.

    bench/apps_wrk.py [--bin .build/debug] [--seconds 10] [--rounds 3] [--connections 16] [--megabytes 1024]
"""
import argparse, http.cookiejar, os, re, shutil, ssl, subprocess, sys, tempfile, time, urllib.parse, urllib.request
from benchlib import free_port, listening, run, wait_for  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "Tests", "browser"))
from webtest import totp  # noqa: E402

PASSWORD = "bench password for the app path 7"


def insecure():
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def wrk(url, connections, seconds, headers=()):
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for header in headers:
        args += ["-H", header]
    out = run(args + [url]).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if errors or socket_errors:
        sys.exit(f"wrk saw errors on {url}:\n{out}")

    def latency(label):
        match = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", out)
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    return rate, latency("50"), latency("99")


def cpu_seconds(pid):
    """utime + stime of a process, in seconds (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def download(url, megabytes, headers=()):
    args = ["curl", "-sk", "-o", "/dev/null", "-w", "%{size_download} %{time_total}"]
    for header in headers:
        args += ["-H", header]
    size, seconds = run(args + [url]).stdout.split()
    if int(size) != megabytes << 20:
        sys.exit(f"downloaded {size} bytes from {url}, expected {megabytes << 20}")
    return megabytes / float(seconds)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=".build/debug")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--megabytes", type=int, default=1024)
    parser.add_argument("--perf", metavar="DIR",
                        help="also run `perf record -g` on the two teleport processes during an extra proxied wrk run; "
                             "the profiles go to DIR/{daemon,appservice}.data (linux-perf, not installed by the test script)")
    args = parser.parse_args()
    for tool in ["wrk", "/usr/sbin/nginx", "curl"]:
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: apt-get install wrk nginx-light curl (scripts/install-test-deps.sh)")
    teleport, tctl = (os.path.join(os.path.abspath(args.bin), name) for name in ("teleport", "tctl"))
    root = tempfile.mkdtemp(prefix="appwrk-")
    processes = []
    try:
        ports = {name: free_port() for name in ["auth", "web", "ssh", "tunnel", "appservice", "app"]}
        served = os.path.join(root, "www")
        os.makedirs(served)
        with open(os.path.join(served, "small.txt"), "w") as f:
            f.write("hello\n" * 100)
        with open(os.path.join(served, "big.bin"), "wb") as f:
            f.truncate(args.megabytes << 20)
        # nginx's worker (nobody when started as root) reads the files.
        for path in [root, served]:
            os.chmod(path, 0o755)
        for name in ["small.txt", "big.bin"]:
            os.chmod(os.path.join(served, name), 0o644)
        nginx_conf = os.path.join(root, "nginx.conf")
        with open(nginx_conf, "w") as f:
            f.write(f"""daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {root}/nginx-body;
  proxy_temp_path {root}/nginx-proxy;
  fastcgi_temp_path {root}/nginx-fastcgi;
  uwsgi_temp_path {root}/nginx-uwsgi;
  scgi_temp_path {root}/nginx-scgi;
  keepalive_requests 1000000;
  server {{ listen 127.0.0.1:{ports['app']}; root {served}; }}
}}
""")
        processes.append(subprocess.Popen(["/usr/sbin/nginx", "-c", nginx_conf, "-p", root],
                                          stdout=subprocess.DEVNULL, stderr=open(os.path.join(root, "nginx.out"), "w")))
        token = "app" + os.urandom(14).hex()
        config = os.path.join(root, "teleport.yaml")
        with open(config, "w") as f:
            f.write(f"""teleport:
  nodename: bench
  data_dir: {root}/data
  log:
    severity: ERROR
auth_service:
  cluster_name: appwrk.example
  listen_addr: 127.0.0.1:{ports['auth']}
  tokens: ["app:{token}"]
proxy_service:
  public_addr: 127.0.0.1
  listen_addr: 127.0.0.1:{ports['ssh']}
  web_listen_addr: 127.0.0.1:{ports['web']}
  tunnel_listen_addr: 127.0.0.1:{ports['tunnel']}
ssh_service:
  enabled: false
""")
        log = open(os.path.join(root, "teleport.log"), "w")
        processes.append(subprocess.Popen([teleport, "start", "-c", config], stdout=log, stderr=log))
        if not wait_for(lambda: listening(ports["web"]) and listening(ports["app"]), 60):
            sys.exit("the cluster or nginx did not start: see " + root)
        tctl_c = [tctl, "-c", config]
        wait_for(lambda: run(tctl_c + ["status"], check=False).returncode == 0, 30)
        appconfig = os.path.join(root, "app.yaml")
        with open(appconfig, "w") as f:
            f.write(f"""teleport:
  nodename: apphost
  data_dir: {root}/appdata
  log:
    severity: ERROR
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
    public_addr: localhost
""")
        servicelog = open(os.path.join(root, "appservice.log"), "w")
        processes.append(subprocess.Popen([teleport, "start", "-c", appconfig], stdout=servicelog, stderr=servicelog))
        role = os.path.join(root, "role.yaml")
        with open(role, "w") as f:
            f.write("kind: role\nversion: v5\nmetadata:\n  name: benchapps\nspec:\n  allow:\n    app_labels:\n      '*': '*'\n")
        run(tctl_c + ["create", role])
        if not wait_for(lambda: "bench" in run(tctl_c + ["get", "app_server"], check=False).stdout, 60):
            sys.exit("the application service did not register: see " + servicelog.name)

        # A browser's way to the cookie: signup (password + TOTP), login, launch, redemption.
        base = f"https://127.0.0.1:{ports['web']}"
        added = run(tctl_c + ["users", "add", "bench", "--roles=benchapps"]).stdout
        path = re.search(r"https://[^\s/]+(/web/newuser/[0-9A-Za-z]+)", added).group(1)
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=insecure()), urllib.request.HTTPCookieProcessor(jar))
        page = opener.open(base + path, timeout=30).read().decode()
        secret = re.search(r"secret=([A-Z2-7]+)", page).group(1)
        csrf = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page).group(1)
        step = int(time.time()) // 30
        form = urllib.parse.urlencode({"csrf_token": csrf, "password": PASSWORD, "password_confirm": PASSWORD,
                                       "otp_code": totp(secret, step)}).encode()
        opener.open(urllib.request.Request(base + path, data=form, headers={"Origin": base}), timeout=30).read()
        while int(time.time()) // 30 <= step:
            time.sleep(1)
        login = urllib.parse.urlencode({"user": "bench", "password": PASSWORD, "otp_code": totp(secret, int(time.time()) // 30)}).encode()
        opener.open(urllib.request.Request(base + "/webapi/sessions", data=login, headers={"Origin": base}), timeout=30).read()
        launcher = urllib.request.build_opener(urllib.request.HTTPSHandler(context=insecure()), urllib.request.HTTPCookieProcessor(jar), NoRedirect)
        try:
            launcher.open(base + "/web/launch/bench", timeout=30)
            sys.exit("the launch did not redirect")
        except urllib.error.HTTPError as redirect:
            target = redirect.headers["Location"]
        origin = f"https://localhost:{ports['web']}"
        redeemed = run(["curl", "-sk", "-D", "-", "-o", "/dev/null", target]).stdout
        found = re.search(r"(?im)^set-cookie: (__Host-teleport-app-session=[0-9a-f]+)", redeemed)
        if not found:
            sys.exit(f"the launch token was not redeemed ({target}):\n{redeemed}")
        cookie = found.group(1)
        headers = [f"Cookie: {cookie}"]
        check = run(["curl", "-sk", "-H", headers[0], origin + "/small.txt"]).stdout
        if not check.startswith("hello"):
            sys.exit(f"the proxied GET failed: {check[:300]}")

        if args.perf:
            os.makedirs(args.perf, exist_ok=True)
            recorders = [subprocess.Popen(["perf", "record", "-g", "-o", os.path.join(args.perf, name + ".data"), "-p", str(process.pid)],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                         for name, process in [("daemon", processes[1]), ("appservice", processes[2])]]
            time.sleep(1)
            profiled = wrk(origin + "/small.txt", args.connections, args.seconds, headers)
            for recorder in recorders:
                recorder.send_signal(2)
                recorder.wait(timeout=60)
            print(f"profiled run: {profiled[0]:.0f} requests/s; profiles in {args.perf}")
        results = {True: [], False: []}
        cpu = ([], [])
        for round in range(args.rounds):
            for proxied in ([True, False] if round % 2 == 0 else [False, True]):
                if proxied:
                    before = [cpu_seconds(p.pid) for p in processes[1:3]]
                    result = wrk(origin + "/small.txt", args.connections, args.seconds, headers)
                    used = [cpu_seconds(p.pid) - b for p, b in zip(processes[1:3], before)]
                    requests = result[0] * args.seconds
                    cpu[0].append(1e6 * used[0] / requests)
                    cpu[1].append(1e6 * used[1] / requests)
                    results[True].append(result)
                else:
                    results[False].append(wrk(f"http://127.0.0.1:{ports['app']}/small.txt", args.connections, args.seconds))
        medians = {}
        for proxied, name in [(True, "through the proxy"), (False, "nginx direct")]:
            rate, p50, p99 = sorted(results[proxied])[len(results[proxied]) // 2]
            medians[proxied] = rate
            print(f"wrk -c{args.connections} -t2 {args.seconds}s keep-alive GET 600 B {name}: {rate:.0f} requests/s, "
                  f"p50 {p50:.2f} ms, p99 {p99:.2f} ms (rounds: {', '.join(f'{r[0]:.0f}' for r in results[proxied])})")
        print(f"ratio through/direct: {medians[True] / medians[False]:.3f}")
        print(f"CPU per proxied request (median of rounds): auth+proxy process {sorted(cpu[0])[len(cpu[0]) // 2]:.0f} µs, "
              f"application service {sorted(cpu[1])[len(cpu[1]) // 2]:.0f} µs")
        through = download(origin + "/big.bin", args.megabytes, headers)
        direct = download(f"http://127.0.0.1:{ports['app']}/big.bin", args.megabytes)
        print(f"{args.megabytes} MB download: {through:.0f} MB/s through the proxy, {direct:.0f} MB/s direct")
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
