#!/usr/bin/env bash
# Installs the Debian packages the tests drive for real: OpenSSH client, server and sftp-server, openssl, curl, python3.
# Needs root (or sudo). Safe to run again.
set -euo pipefail
packages=(openssh-client openssh-server openssh-sftp-server openssl curl ca-certificates procps python3 zlib1g-dev)
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
# sshd refuses to start without its privilege separation directory.
[ -d /run/sshd ] || { [ "$(id -u)" -eq 0 ] && mkdir -p /run/sshd && chmod 0755 /run/sshd; } || true
