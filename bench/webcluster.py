"""What the web UI's benchmarks share: a one-process cluster (`teleport start`, auth + proxy, the SSH
service optional) in a temporary directory, users signed up over HTTPS (password + TOTP, as the
signup page does), percentiles. Stops the daemon by PID and removes the directory on `close()`.

    cluster = BenchCluster(bin_dir, ssh=True)
    try:
        user = cluster.add_web_user("bench", roles="access", logins="root")
        ... cluster.base, user.codes.next(), cluster.keys ...
    finally:
        cluster.close()
"""
import http.cookiejar
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "Tests", "browser"))
from webtest import CHROMIUM, Codes, totp  # noqa: E402,F401

PASSWORD = "bench password for the web ui 7"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def insecure_context():
    """TLS without verification: the benchmarks talk to their own proxy's self-signed certificate."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class WebUser:
    def __init__(self, name, password, secret, enrolled):
        self.name, self.password, self.secret = name, password, secret
        self.codes = Codes(secret, enrolled)


class BenchCluster:
    def __init__(self, bin_dir, ssh=False, name="bench", prefix="bench-web-"):
        self.bin = bin_dir
        self.work = tempfile.mkdtemp(prefix=prefix)
        self.auth_port, self.web_port = free_port(), free_port()
        self.ssh_port = free_port()
        self.config = os.path.join(self.work, "teleport.yaml")
        ssh_section = (f"ssh_service:\n  enabled: yes\n  listen_addr: 127.0.0.1:{self.ssh_port}\n"
                       f"  labels:\n    env: bench\n" if ssh else "ssh_service:\n  enabled: no\n")
        with open(self.config, "w") as f:
            f.write(f"teleport:\n  nodename: {name}-node\n  data_dir: {self.work}/data\n  log:\n    severity: ERROR\n"
                    f"auth_service:\n  cluster_name: {name}\n  listen_addr: 127.0.0.1:{self.auth_port}\n"
                    f"proxy_service:\n  web_listen_addr: 127.0.0.1:{self.web_port}\n"
                    f"  listen_addr: 127.0.0.1:{free_port()}\n"
                    f"  tunnel_listen_addr: 127.0.0.1:{free_port()}\n" + ssh_section)
        self.log = open(os.path.join(self.work, "teleport.log"), "w")
        self.daemon = subprocess.Popen([os.path.join(bin_dir, "teleport"), "start", "-c", self.config],
                                       stdout=self.log, stderr=self.log)
        self.keys = os.path.join(self.work, "data", "keys")
        self.base = f"https://127.0.0.1:{self.web_port}"
        deadline = time.monotonic() + 60
        while not os.path.exists(os.path.join(self.keys, "admin.crt")):
            if time.monotonic() > deadline or self.daemon.poll() is not None:
                self.close()
                sys.exit(f"teleport did not start; see {self.log.name}")
            time.sleep(0.05)
        self._wait_for_port(self.web_port)

    def _wait_for_port(self, port, seconds=60):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.close()
        sys.exit(f"port {port} never opened; see {self.log.name}")

    def tctl(self, *arguments):
        return subprocess.run([os.path.join(self.bin, "tctl"), "-c", self.config, *arguments],
                              capture_output=True, text=True, check=True, timeout=60)

    def add_web_user(self, name, roles="access", logins="root", password=PASSWORD):
        """`tctl users add`, then the signup page's form over HTTPS with a TOTP code."""
        added = self.tctl("users", "add", name, f"--roles={roles}", f"--logins={logins}")
        path = re.search(r"https://[^\s/]+(/web/newuser/[0-9A-Za-z]+)", added.stdout).group(1)
        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=insecure_context()),
                                             urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        page = opener.open(self.base + path, timeout=30).read().decode()
        secret = re.search(r"secret=([A-Z2-7]+)", page).group(1)
        csrf = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page).group(1)
        enrolled = time.time()
        form = urllib.parse.urlencode({"csrf_token": csrf, "password": password, "password_confirm": password,
                                       "otp_code": totp(secret, int(enrolled) // 30)}).encode()
        opener.open(urllib.request.Request(self.base + path, data=form, headers={"Origin": self.base}), timeout=30).read()
        return WebUser(name, password, secret, enrolled)

    def rss_kib(self):
        with open(f"/proc/{self.daemon.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def close(self):
        if self.daemon.poll() is None:
            self.daemon.terminate()
            try:
                self.daemon.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
        self.log.close()
        subprocess.run(["rm", "-rf", self.work])
