#!/usr/bin/env bash
# Installs every build and test dependency of flasher from Debian's packages.
# Safe to run twice: apt is skipped when every package is already installed.
set -euo pipefail
PKGS=(
  build-essential cmake pkg-config git python3
  libserialport-dev libusb-1.0-0-dev zlib1g-dev libcjson-dev libcriterion-dev libsodium-dev
  umockdev libumockdev-dev libglib2.0-dev
  clang libclang-rt-14-dev
  gcc-arm-none-eabi libnewlib-arm-none-eabi binutils-arm-none-eabi
  qemu-system-arm
  socat
  help2man
  libudev-dev
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages already installed"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
