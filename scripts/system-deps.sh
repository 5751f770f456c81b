#!/usr/bin/env bash
# System packages the test suite uses: Chromium + ChromeDriver (the report's browser test),
# Debian's Fashion-MNIST files and the PostgreSQL server binaries (the tests of shared studies
# start a throwaway server of their own). Installs them with apt-get when run as root;
# otherwise says what to install. Never fails the build by itself: the tests that need a
# package say so.
set -u
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
dpkg -s dataset-fashion-mnist >/dev/null 2>&1 || need+=(dataset-fashion-mnist)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages: ${need[*]}"
  # Debian starts a package's service on install; the tests start their own PostgreSQL, so
  # a policy-rc.d (if there is none) keeps the system one from starting and running on.
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy"
  fi
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}") >/tmp/gankit-apt.log 2>&1 \
    || { echo "apt-get install failed (see /tmp/gankit-apt.log)"; tail -5 /tmp/gankit-apt.log; }
  [ -n "$policy" ] && rm -f "$policy"
else
  echo "optional system packages missing: ${need[*]} (install them with apt-get as root)"
fi
exit 0
