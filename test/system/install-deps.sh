#!/usr/bin/env bash
# Installs the system packages the test suite needs on Debian 12 (bookworm), as root:
#   - a software Vulkan driver (Mesa lavapipe 25.x from bookworm-backports), so Dawn has a real
#     WebGPU adapter on machines without a GPU;
#   - Chromium, for the end-to-end tests of the demo page (driven by playwright-core).
# Debian 12's own Mesa 22.3 lavapipe is refused by Dawn, hence backports. The backports mirror
# is derived from the machine's existing apt sources, so no address is written here.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then exec sudo -E bash "$0" "$@"; fi

src=/etc/apt/sources.list.d/debian.sources
bp=/etc/apt/sources.list.d/webtune-backports.sources
if [ ! -f "$bp" ] && ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  if [ -f "$src" ]; then
    # Copy the stanza whose Suites list bookworm, with Suites set to bookworm-backports.
    awk 'BEGIN{RS=""; ORS="\n\n"} /Suites:[^\n]*bookworm([ \n]|$)/ {sub(/Suites:[^\n]*/, "Suites: bookworm-backports"); print; exit}' "$src" > "$bp"
  elif [ -f /etc/apt/sources.list ]; then
    grep -E '^deb .* bookworm( |$)' /etc/apt/sources.list | head -1 | sed -E 's/ bookworm( |$)/ bookworm-backports\1/' > /etc/apt/sources.list.d/webtune-backports.list
  fi
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers >/dev/null
apt-get install -y -qq chromium libvulkan1 >/dev/null
ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null
echo "installed: $(dpkg-query -W -f='${Package} ${Version}\n' mesa-vulkan-drivers chromium | tr '\n' ';')"
