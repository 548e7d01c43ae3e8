#!/bin/sh
# Installs from Debian packages everything the build, tests, demo and
# benchmarks need.  Idempotent; returns at once when all is present.
# --bench adds what only `make bench` uses (gnuplot, the Lua module to
# compare with).  Every package here is one a test uses: in CI
# (CANARY_NO_SKIP) a test that skips for want of one fails.
# python3-yaml and docker-compose: t/conf_examples.t parses the YAML
# examples with PyYAML and validates the compose file (docker-compose
# config needs no Docker engine).  redis-sentinel: the failover test
# (t/redis_sentinel_failover.t) runs three sentinels on loopback.
# dpkg-dev: make deb's dpkg-shlibdeps (t/package_deb.t); systemd: its
# systemd-analyze verify of the packaged unit (only the package, no
# systemd is started).
set -eu

PKGS="gcc make perl nginx-core nginx-dev libhiredis-dev libpcre2-dev
zlib1g-dev libssl-dev redis-server redis-tools redis-sentinel
libcurl4-openssl-dev libmicrohttpd-dev
libjansson-dev check pkg-config prometheus chromium wrk curl procps
clang libclang-rt-14-dev valgrind gdb python3-yaml docker-compose
dpkg-dev systemd"
# tmux: t/demo_tmux.t runs the demo in a real terminal (a detached pane)
PKGS="$PKGS tmux"
# openssl: t/shadow_review.t makes a self-signed certificate (TLS client)
PKGS="$PKGS openssl"
# npm installs the pinned Dockerfile linter (tools/); a machine that has
# Node.js and npm from elsewhere keeps them
if ! command -v npm >/dev/null 2>&1; then
    PKGS="$PKGS npm"
fi
if [ "${1:-}" = --bench ]; then
    PKGS="$PKGS gnuplot-nox libnginx-mod-http-lua libnginx-mod-http-ndk
util-linux"
fi

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null \
         | grep -q "install ok installed"
    then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    exit 0
fi

echo "install-deps: installing:$missing"

SUDO=""
if [ "$(id -u)" != 0 ]; then
    SUDO=sudo
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# policy-rc.d keeps the packaged services (nginx, redis, prometheus) from
# being started: the tests start their own on free loopback ports.
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends $missing
