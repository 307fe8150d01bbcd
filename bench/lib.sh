# Helpers shared by the benchmark scripts (sourced, not run).
# shellcheck shell=bash

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

# apt-get install, running `apt-get update` only if the first attempt fails.
apt_install() {
    local pkg="$1"
    log "installing $pkg with apt-get"
    if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "$pkg" >/dev/null; then
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get update >/dev/null \
            || die "apt-get update failed"
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "$pkg" >/dev/null \
            || die "could not install $pkg"
    fi
}

