#!/usr/bin/env bash
# Installs the Debian packages hrsync needs to build, run its demo and run its tests.
# Only what is missing is installed; nothing is installed when everything is there.
# Needs root or sudo when something is missing.
set -euo pipefail

pkgs=(
  build-essential pkg-config ca-certificates
  libcurl4-openssl-dev libyajl-dev libpq-dev libyaml-dev
  libcmocka-dev
  postgresql-15 postgresql-client-15
  python3 python3-pytest python3-pytest-xdist python3-psycopg2
  systemd man-db tzdata
  libssl-dev libxxhash-dev
  debhelper dpkg-dev fakeroot lintian bash-completion
)
missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has no package lists yet; refresh them once if an install fails for that reason.
if ! $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/hrsync-deps.log 2>&1; then
  $sudo apt-get update -q >>/tmp/hrsync-deps.log 2>&1
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >>/tmp/hrsync-deps.log 2>&1 || {
    echo "deps: apt-get failed, see /tmp/hrsync-deps.log" >&2; tail -20 /tmp/hrsync-deps.log >&2; exit 1; }
fi
# Debian's postgresql package creates a default cluster and may start it; we never use it.
echo "deps: done" >&2
