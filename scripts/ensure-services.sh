#!/usr/bin/env bash
# Makes sure what cachedeck's build and tests need is on this machine, and
# says what it did. Idempotent and quiet when everything is already there.
#
#   - redis-server and redis-cli (the tests start their own servers and a
#     3-master cluster on free loopback ports; nothing is started here)
#   - PostgreSQL answering on 127.0.0.1:5432, where user postgres may log in
#     over TCP without a password (the tests make a fresh database each);
#     skipped when CACHEDECK_TEST_DATABASE_URL names another server
#   - a C compiler and pkg-config (bundled SQLite, ring)
#   - Node.js (18.19 or later) and npm, for the TypeScript reader's tests
#     (clients/typescript)
#   - gnome-keyring and dbus (the keyring tests run a real Secret Service
#     in a private D-Bus session)
#   - the shared libraries the GUI loads at run time (eframe/winit/glutin
#     dlopen them; nothing links against -dev packages at build time):
#     X11, Xcursor, Xrandr, Xi, X11-xcb, xkbcommon(-x11), GL/EGL (Mesa), Wayland
#
# Debian/Ubuntu (apt). Uses sudo only when not root.
set -euo pipefail

say() { printf 'ensure-services: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        SUDO="__no_sudo__"
    fi
fi
as_root() {
    if [ "$SUDO" = "__no_sudo__" ]; then
        die "need root to run: $* (run this script as root or install sudo)"
    fi
    $SUDO "$@"
}

APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 ||
        die "apt-get not found: install these by hand: $*"
    local log
    log="$(mktemp)"
    if [ "$APT_UPDATED" -eq 0 ]; then
        say "apt-get update"
        if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >"$log" 2>&1; then
            cat "$log" >&2
            rm -f "$log"
            die "apt-get update failed"
        fi
        APT_UPDATED=1
    fi
    say "installing: $*"
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" \
        </dev/null >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        die "apt-get install $* failed"
    fi
    rm -f "$log"
}

is_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }

# ------------------------------------------------------------ build tools
missing=()
command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v git >/dev/null 2>&1 || missing+=(git)
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"

# ------------------------------------------------------------ GUI run-time libraries
# What eframe 0.37 (winit x11+wayland, glutin glow) dlopens; checked by package.
gui_pkgs=(libx11-6 libx11-xcb1 libxcursor1 libxrandr2 libxi6 libxkbcommon0 libxkbcommon-x11-0
    libgl1 libegl1 libgl1-mesa-dri libwayland-client0 libwayland-egl1)
if command -v dpkg-query >/dev/null 2>&1; then
    missing=()
    for p in "${gui_pkgs[@]}"; do
        is_installed "$p" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
fi

# ------------------------------------------------------------ Secret Service
# The keyring tests start gnome-keyring inside a private D-Bus session
# (dbus-run-session); nothing is started here.
missing=()
command -v gnome-keyring-daemon >/dev/null 2>&1 || missing+=(gnome-keyring)
command -v dbus-run-session >/dev/null 2>&1 || missing+=(dbus)
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"

# ------------------------------------------------------------ Redis
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    apt_install redis-server redis-tools
    command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 ||
        die "redis-server / redis-cli still not on PATH after installing"
    say "installed redis-server $(redis-server --version | awk '{print $3}')"
fi

# ------------------------------------------------------------ Node.js (clients/typescript)
node_ok() {
    node -e 'const [a, b] = process.versions.node.split(".").map(Number);
        process.exit(a > 18 || (a === 18 && b >= 19) ? 0 : 1)' >/dev/null 2>&1
}
missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
    apt_install "${missing[@]}"
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 ||
        die "node / npm still not on PATH after installing ${missing[*]}"
    say "installed Node.js $(node --version), npm $(npm --version)"
fi
node_ok || die "Node.js $(node --version) is too old for clients/typescript: it needs 18.19 or later"

# ------------------------------------------------------------ PostgreSQL
DEFAULT_PG_URL="postgres://postgres@127.0.0.1:5432/postgres"
PG_URL="${CACHEDECK_TEST_DATABASE_URL:-$DEFAULT_PG_URL}"

pg_answers() { (exec 3<>/dev/tcp/127.0.0.1/5432) >/dev/null 2>&1; }
pg_login() { psql "$PG_URL" -X -q -t -c 'select 1' </dev/null >/dev/null 2>&1; }

# "VERSION NAME STATUS" of each installed cluster on port 5432.
pg_clusters() {
    command -v pg_lsclusters >/dev/null 2>&1 || return 0
    pg_lsclusters -h 2>/dev/null | awk '$3 == "5432" { print $1, $2, $4 }'
}

# Starts every cluster on port 5432 that is down (no systemd needed).
pg_start() {
    local ver name status
    while read -r ver name status; do
        [ -n "$ver" ] || continue
        if [ "$status" != "online" ]; then
            say "starting PostgreSQL $ver/$name"
            as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start || true
        fi
    done < <(pg_clusters)
}

# Waits up to 30 s for the server to accept TCP connections.
pg_wait() {
    local i
    for i in $(seq 1 60); do
        pg_answers && return 0
        sleep 0.5
    done
    return 1
}

if [ -n "${CACHEDECK_TEST_DATABASE_URL:-}" ] && [ "$PG_URL" != "$DEFAULT_PG_URL" ]; then
    # Someone else's server: only check it, never change it.
    if command -v psql >/dev/null 2>&1 && ! pg_login; then
        say "WARNING: cannot log in with CACHEDECK_TEST_DATABASE_URL; the Postgres tests will fail"
    fi
else
    if ! pg_answers; then
        if [ -z "$(pg_clusters)" ]; then
            is_installed postgresql || apt_install postgresql
            if [ -z "$(pg_clusters)" ]; then
                ver="$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n1)"
                [ -n "$ver" ] || die "PostgreSQL installed but no server version found in /usr/lib/postgresql"
                say "creating PostgreSQL cluster $ver/main on port 5432"
                as_root pg_createcluster "$ver" main --port 5432 >/dev/null
            fi
        fi
        pg_start
        pg_wait || die "PostgreSQL does not answer on 127.0.0.1:5432 (see pg_lsclusters and /var/log/postgresql)"
        say "PostgreSQL answers on 127.0.0.1:5432"
    fi
    command -v psql >/dev/null 2>&1 || apt_install postgresql-client
    if ! pg_login; then
        # Trust local TCP logins (first matching pg_hba line wins, so put ours first).
        changed=0
        while read -r ver name _; do
            [ -n "$ver" ] || continue
            conf="/etc/postgresql/$ver/$name/pg_hba.conf"
            [ -f "$conf" ] || continue
            as_root grep -q 'cachedeck ensure-services' "$conf" && continue
            say "allowing passwordless TCP logins from 127.0.0.1 and ::1 in $conf"
            tmp="$(mktemp)"
            {
                echo "# added by cachedeck ensure-services: tests log in as postgres over TCP without a password"
                echo "host all all 127.0.0.1/32 trust"
                echo "host all all ::1/128 trust"
                as_root cat "$conf"
            } >"$tmp"
            as_root cp "$tmp" "$conf"
            rm -f "$tmp"
            as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" reload >/dev/null 2>&1 || true
            changed=1
        done < <(pg_clusters)
        [ "$changed" -eq 0 ] || sleep 1
        pg_login || die "cannot log in as postgres at $PG_URL even after trusting 127.0.0.1 in pg_hba.conf; \
set CACHEDECK_TEST_DATABASE_URL to an admin URL that works"
        say "postgres logs in over TCP at 127.0.0.1 without a password"
    fi
fi
