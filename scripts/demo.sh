#!/usr/bin/env bash
# Runs the cachedeck demo on this machine:
#   - installs what is missing (Debian/Ubuntu, apt-get; sudo when not root):
#     redis-server, a C compiler and pkg-config for the build, and the shared
#     libraries the window loads at run time (X11, Xcursor, Xrandr, Xi,
#     xkbcommon, GL/EGL (Mesa), Wayland);
#   - then `cargo run --release -- demo`: the window on its own
#     redis-server (free loopback port, nothing persisted, stopped on exit)
#     and SQLite demo data in the OS data dir.
# Extra arguments go to cachedeck. Set CACHEDECK_DEMO_ROWS for more data.
set -euo pipefail

say() { printf 'demo.sh: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

cd "$(dirname "$0")/.."

command -v cargo >/dev/null 2>&1 ||
    die "cargo not found: install Rust from https://rustup.rs, then run this again"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "not root and no sudo: install the packages below by hand"
    SUDO="sudo"
fi

is_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
if command -v dpkg-query >/dev/null 2>&1; then
    for p in libx11-6 libx11-xcb1 libxcursor1 libxrandr2 libxi6 libxkbcommon0 libxkbcommon-x11-0 \
        libgl1 libegl1 libgl1-mesa-dri libwayland-client0 libwayland-egl1; do
        is_installed "$p" || missing+=("$p")
    done
fi

if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install these by hand: ${missing[*]}"
    say "installing: ${missing[*]}"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

exec cargo run --release -- demo "$@"
