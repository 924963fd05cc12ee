#!/usr/bin/env bash
# Debian packages the test suite needs (real browser, load generator, ...).
# Installs only what is missing; needs root (or sudo) the first time.
set -euo pipefail
packages=(sqlite3)
# tests/unit/backups, tests/functional/scheduler: pg_dump and pg_restore for PostgreSQL backups.
packages+=(postgresql-client)
# tests/functional/admin: headless Chromium driven by Playwright (never its own download).
packages+=(chromium)
# tests/ansible: a Debian root for the playbook (debootstrap), its network namespace
# (iproute2), the SSH connection into it, and requests through its nginx (curl).
packages+=(debootstrap iproute2 openssh-client curl)
# tests/container: build and run the image (podman with runc: crun needs cgroup v2).
packages+=(podman runc)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing Debian packages: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
