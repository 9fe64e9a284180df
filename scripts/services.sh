#!/usr/bin/env bash
# Install and start the services the test suite needs (as root on Debian/Ubuntu):
#   - Debian's PostgreSQL 15 with TimescaleDB (Apache edition) built from the timescaledb source
#     package of the next Debian release (bookworm has no binary package);
#   - Debian's chromium (for the browser test), docker-compose and nginx with its stream module
#     (to validate docker/compose.yaml and docker/nginx/nginx.conf; nginx is not started: the
#     package's own start is held back), mosquitto and victoria-metrics (the tests start their
#     own servers on loopback ports);
#   - python3-venv (the image's install is reproduced in a virtualenv of Debian's python3, which
#     the image's non-root user can run: pyenv's lies under a private /root);
#   - npm's axe-core (the accessibility checks run in the browser tests), in .cache/axe;
#   - a CJK font for Chromium: a fontconfig file in .cache/fontconfig adding the Noto Sans CJK
#     font that EcoSense installs already (the `noto-cjk-sans-otc` package in .venv, the PDF
#     reports' font): nothing more to download, so it works wherever `make install` did.
# The apt and npm registries are the machine's own: read from its apt sources, never written here.
# Usage: scripts/services.sh start | stop     (start prints the env lines to export)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
CACHE="$ROOT/.cache"
PG_BIN=/usr/lib/postgresql/15/bin
TS_PORT=${ECOSENSE_TEST_PG_PORT:-55432}
TS_DATA=${ECOSENSE_TEST_PG_DATA:-/tmp/ecosense-test-timescaledb}
log() { echo "services: $*" >&2; }

need_root() { [ "$(id -u)" = 0 ] || { log "not root: cannot install $*"; return 1; }; }

apt_updated=0
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  need_root "${missing[*]}" || return 1
  if [ $apt_updated = 0 ]; then apt-get update -q >&2; apt_updated=1; fi
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

# The mirror of the machine's own apt configuration (deb822 or one-line format).
apt_mirror() {
  local uri=""
  if ls /etc/apt/sources.list.d/*.sources >/dev/null 2>&1; then
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || { log "no apt mirror configured"; return 1; }
  echo "$uri"
}

build_timescaledb() {
  [ -f /usr/lib/postgresql/15/lib/timescaledb.so ] && return 0
  need_root timescaledb || return 1
  apt_install postgresql-15 postgresql-server-dev-15 cmake gcc make libssl-dev dpkg-dev xz-utils
  local work="$CACHE/timescaledb-src" mirror
  mirror=$(apt_mirror)
  mkdir -p "$work/lists/partial"
  cat > "$work/next-release.sources" <<SRC
Types: deb-src
URIs: $mirror
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  local opts=(-o "Dir::Etc::SourceList=$work/next-release.sources" -o Dir::Etc::SourceParts=/nonexistent
              -o "Dir::State::Lists=$work/lists" -o APT::Sandbox::User=root)
  log "fetching the timescaledb source package (Debian trixie)"
  apt-get "${opts[@]}" update -q >&2
  (cd "$work" && apt-get "${opts[@]}" source --download-only -q timescaledb >&2)
  local tarball
  tarball=$(ls "$work"/timescaledb_*.orig.tar.* | head -n 1)
  rm -rf "$work/src" && mkdir -p "$work/src"
  tar -xf "$tarball" -C "$work/src" --strip-components=1
  log "building timescaledb (Apache-2.0 edition) for PostgreSQL 15"
  cmake -S "$work/src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DPG_CONFIG=$PG_BIN/pg_config \
    -DAPACHE_ONLY=1 -DSEND_TELEMETRY_DEFAULT=OFF -DUSE_TELEMETRY=OFF -DREGRESS_CHECKS=OFF \
    -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF -DLINTER=OFF >&2
  make -C "$work/build" -j"$(nproc)" >&2
  make -C "$work/build" install >&2
}

AXE_VERSION=4.14.1
# npm's axe-core in .cache/axe (ignored by git); prints the path of axe.min.js.
install_axe() {
  local dir="$CACHE/axe" axe="$CACHE/axe/node_modules/axe-core/axe.min.js"
  if [ ! -f "$axe" ] || ! grep -q "\"version\": \"$AXE_VERSION\"" "$dir/node_modules/axe-core/package.json"; then
    command -v npm >/dev/null || apt_install npm || return 1
    mkdir -p "$dir"
    log "installing axe-core $AXE_VERSION (npm)"
    npm install --prefix "$dir" --no-save --no-audit --no-fund --no-package-lock --loglevel=error \
      "axe-core@$AXE_VERSION" >&2 || return 1
  fi
  echo "$axe"
}

# A fontconfig file for Chromium: the system's configuration plus the folder of the Noto Sans
# CJK font installed with EcoSense (so pages and screenshots show real Chinese); prints its path.
cjk_fontconfig() {
  local python="$ROOT/.venv/bin/python" font conf="$CACHE/fontconfig/fonts.conf"
  [ -x "$python" ] || python=${ECOSENSE_PYTHON:-python3}
  font=$("$python" -c 'import noto_cjk_sans_otc; print(noto_cjk_sans_otc.FONT_PATH)' 2>/dev/null) \
    || { log "no noto-cjk-sans-otc in $python (make install)"; return 1; }
  mkdir -p "$CACHE/fontconfig/cache"
  cat > "$conf.tmp" <<CONF
<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">
<!-- written by scripts/services.sh: the system's fonts and EcoSense's Noto Sans CJK -->
<fontconfig>
  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>
  <dir>$(dirname "$font")</dir>
  <cachedir>$CACHE/fontconfig/cache</cachedir>
</fontconfig>
CONF
  mv "$conf.tmp" "$conf"
  echo "$conf"
}

# Debian's nginx and its stream module, without the package starting a server on port 80
# (a policy-rc.d refusing service starts while they are installed; one already there is kept).
install_nginx() {
  local pkgs=(nginx libnginx-mod-stream) p missing=0
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing=1
  done
  [ $missing = 0 ] && return 0
  need_root nginx || return 1
  local policy=/usr/sbin/policy-rc.d ours=0 rc=0
  if [ ! -e $policy ]; then
    printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy && ours=1
  fi
  apt_install "${pkgs[@]}" || rc=1
  [ $ours = 1 ] && rm -f $policy
  return $rc
}

start() {
  apt_install chromium docker-compose postgresql-15 mosquitto victoria-metrics python3-venv \
    || log "some packages could not be installed"
  install_nginx || log "nginx could not be installed"
  build_timescaledb || log "TimescaleDB unavailable"
  if [ -x $PG_BIN/postgres ] && [ -f /usr/lib/postgresql/15/lib/timescaledb.so ]; then
    if [ ! -f "$TS_DATA/PG_VERSION" ]; then
      rm -rf "$TS_DATA"; mkdir -p "$TS_DATA"; chown postgres:postgres "$TS_DATA"
      su postgres -s /bin/sh -c "$PG_BIN/initdb -D '$TS_DATA' -U postgres --auth=trust -E UTF8" >/dev/null
      cat >> "$TS_DATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $TS_PORT
unix_socket_directories = '$TS_DATA'
shared_preload_libraries = 'timescaledb'
timescaledb.telemetry_level = off
fsync = off
max_connections = 200
CONF
    fi
    if ! su postgres -s /bin/sh -c "$PG_BIN/pg_ctl -D '$TS_DATA' status" >/dev/null 2>&1; then
      su postgres -s /bin/sh -c "$PG_BIN/pg_ctl -D '$TS_DATA' -l '$TS_DATA/log' -w start" >&2
    fi
    echo "ECOSENSE_TEST_TIMESCALE_URL=postgresql://postgres@127.0.0.1:$TS_PORT/postgres"
  fi
  [ -x /usr/bin/chromium ] && echo "ECOSENSE_TEST_CHROMIUM=/usr/bin/chromium"
  local axe fonts
  axe=$(install_axe) && echo "ECOSENSE_TEST_AXE=$axe" || log "axe-core unavailable"
  fonts=$(cjk_fontconfig) && echo "ECOSENSE_TEST_FONTCONFIG=$fonts" || log "no CJK font for Chromium"
  [ -x /usr/sbin/mosquitto ] && echo "ECOSENSE_TEST_MOSQUITTO=/usr/sbin/mosquitto"
  [ -x /usr/bin/victoria-metrics ] && echo "ECOSENSE_TEST_VICTORIA_METRICS=/usr/bin/victoria-metrics"
  [ -x /usr/bin/docker-compose ] && echo "ECOSENSE_TEST_DOCKER_COMPOSE=/usr/bin/docker-compose"
  [ -x /usr/sbin/nginx ] && echo "ECOSENSE_TEST_NGINX=/usr/sbin/nginx"
  return 0
}

stop() {
  if [ -f "$TS_DATA/postmaster.pid" ]; then
    su postgres -s /bin/sh -c "$PG_BIN/pg_ctl -D '$TS_DATA' -m fast -w stop" >&2 || true
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
