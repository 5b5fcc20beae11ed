#!/usr/bin/env bash
# Installs what the tests drive for real: OpenSSH client, server and sftp-server, openssl, curl, python3, PuTTY's plink (Debian),
# tinyproxy (an HTTP CONNECT proxy for the outbound-proxy tests, started per test as this user), vi (vim-tiny: tctl edit's default editor),
# haproxy (the round-robin load balancer in front of two proxies in MultiProxyTunnelTests, started per test), Debian's chromium
# and Playwright (PyPI) for the web UI's browser tests (Playwright drives /usr/bin/chromium; it downloads no browser), xterm.js
# (libjs-xterm: the web terminal serves it from /usr/share/javascript/xterm; its xterm.js is a CommonJS stub, so node-xterm provides the modules the proxy bundles),
# etcd-server (the etcd backend's compliance and watch tests start etcd per test as nobody, with TLS certificates made by openssl),
# PostgreSQL 15 (postgresql-15: initdb/postgres/psql, run per test as the postgres user with setpriv) and MariaDB
# (mariadb-server, mariadb-client: mariadbd and the mariadb client, run per test as the mysql user) for the database tests,
# the third-party SSH clients paramiko, asyncssh and ansible-core (PyPI, with pip), and websockets (PyPI: the web terminal's
# security tests and bench/web_terminal.py), psycopg (PyPI: a Python driver through tsh proxy db), mysql-connector-python
# (PyPI: MySQL prepared statements, binary protocol), PyJWT with cryptography
# (PyPI: application access verifies the teleport-jwt-assertion against the JWKS), Authlib and Flask (PyPI: the
# single sign-on tests' OpenID Connect provider, Tests/fixtures/oidc_provider.py, and the GitHub stand-in) and
# requests (PyPI: the fixtures' own checks, Tests/fixtures/sso_fixture_check.py); websockets also serves the app
# tests' WebSocket echo app and client; h2 (PyPI: HTTP/2 floods at the proxy's Kubernetes port, Tests/fixtures/kube_h2_flood.py); moto[server] (PyPI: a local S3-compatible server, not AWS, for the s3:// session recording tests, RecordingS3Tests; it brings boto3); wrk and nginx-light for bench/apps_wrk.py (application access through the proxy vs direct); kubectl (below).
# Needs root (or sudo). Safe to run again.
set -euo pipefail
packages=(openssh-client openssh-server openssh-sftp-server openssl curl ca-certificates procps python3 zlib1g-dev putty-tools iproute2 iptables tinyproxy vim-tiny haproxy chromium libjs-xterm node-xterm postgresql-15 postgresql-client-15 mariadb-server mariadb-client util-linux etcd-server wrk nginx-light)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# kubectl for the Kubernetes access tests (KubeAccessTests, bench/kube.py). A kubectl already on PATH
# is kept (this machine's is 1.32, from Google's kubectl package, whose apt source is not reachable
# here); otherwise Debian's kubernetes-client, which is kubectl 1.20: its get/watch/logs work, but it
# speaks only SPDY for exec, which the Kubernetes service refuses (it relays WebSocket, kubectl 1.30+).
if ! command -v kubectl >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends kubernetes-client
fi
# sshd refuses to start without its privilege separation directory.
[ -d /run/sshd ] || { [ "$(id -u)" -eq 0 ] && mkdir -p /run/sshd && chmod 0755 /run/sshd; } || true
# Third-party SSH clients the interop tests drive (ThirdPartyClientTests): paramiko, asyncssh and
# ansible-core from PyPI, for the python3 first on PATH; nothing is fetched when they import already.
python_modules=(paramiko asyncssh ansible playwright websockets psycopg jwt cryptography mysql.connector authlib flask requests h2 moto.server)
python_packages=(paramiko asyncssh ansible-core playwright websockets "psycopg[binary]" PyJWT cryptography mysql-connector-python Authlib Flask requests h2 "moto[server]")
python_missing=()
for index in "${!python_modules[@]}"; do
    python3 -c "import ${python_modules[$index]}" 2>/dev/null || python_missing+=("${python_packages[$index]}")
done
if [ ${#python_missing[@]} -gt 0 ]; then
    python3 -m pip --version >/dev/null 2>&1 || {
        SUDO=""
        [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-pip
    }
    # Debian's own python3 refuses system-wide pip installs (PEP 668) unless told otherwise.
    python3 -m pip install --quiet --disable-pip-version-check "${python_missing[@]}" 2>/dev/null \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "${python_missing[@]}"
fi
