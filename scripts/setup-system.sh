#!/usr/bin/env bash
# Install the Debian packages listed in apt-packages.txt when some are missing,
# then check that every one of them is really there.
# Needs root (or sudo) when something is missing; without either it names the
# packages and exits 1, and so does a failed apt-get or a package still missing
# afterwards: the tests need all of them (and fail under CI=1 without them).
set -euo pipefail
cd "$(dirname "$0")/.."

# The program each package provides, where the tests look for a program rather than the package
# (Node.js and npm may come from elsewhere than Debian).
command_of() {
  case "$1" in
    nodejs) echo node ;;
    npm) echo npm ;;
    chromium) echo chromium ;;
    espeak-ng) echo espeak-ng ;;
    *) echo "" ;;
  esac
}

present() {
  local cmd
  cmd=$(command_of "$1")
  if [[ -n "$cmd" ]] && command -v "$cmd" >/dev/null 2>&1; then return 0; fi
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

packages=()
while IFS= read -r line || [[ -n "$line" ]]; do
  pkg="${line%%#*}"
  pkg="${pkg//[[:space:]]/}"
  if [[ -n "$pkg" ]]; then packages+=("$pkg"); fi
done < apt-packages.txt

missing=()
for pkg in "${packages[@]}"; do
  present "$pkg" || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -eq 0 ]]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "sightsound: missing Debian packages: ${missing[*]} (listed in apt-packages.txt)." >&2
  echo "sightsound: run this script as root or with sudo available, or: apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "sightsound: installing Debian packages: ${missing[*]}" >&2
# set -e: a failing apt-get ends the script with its exit status
${SUDO[@]+"${SUDO[@]}"} apt-get update -q
${SUDO[@]+"${SUDO[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"

still=()
for pkg in "${missing[@]}"; do
  present "$pkg" || still+=("$pkg")
done
if [[ ${#still[@]} -ne 0 ]]; then
  for pkg in "${still[@]}"; do
    cmd=$(command_of "$pkg")
    echo "sightsound: $pkg is still missing after apt-get install${cmd:+ (no \`$cmd\` on PATH)}" >&2
  done
  exit 1
fi
