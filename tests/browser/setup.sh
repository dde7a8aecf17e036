#!/usr/bin/env bash
# What the browser test needs: Debian's chromium and playwright-core (pinned in package-lock.json).
set -euo pipefail
cd "$(dirname "$0")"
if [ -z "${CHROMIUM:-}" ] && ! command -v chromium > /dev/null; then
  echo "==> installing Debian's chromium"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium > /dev/null
fi
if [ ! -d node_modules/playwright-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --silent --no-audit --no-fund
fi
