#!/usr/bin/env bash
# System packages the test suite uses: Chromium + ChromeDriver (the report's browser test) and
# Debian's Fashion-MNIST files. Installs them with apt-get when run as root; otherwise says what
# to install. Never fails the build by itself: the tests that need a package say so.
set -u
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
dpkg -s dataset-fashion-mnist >/dev/null 2>&1 || need+=(dataset-fashion-mnist)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages: ${need[*]}"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}") >/tmp/gankit-apt.log 2>&1 \
    || { echo "apt-get install failed (see /tmp/gankit-apt.log)"; tail -5 /tmp/gankit-apt.log; }
else
  echo "optional system packages missing: ${need[*]} (install them with apt-get as root)"
fi
exit 0
