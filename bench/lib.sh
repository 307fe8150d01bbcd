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


# FERRY: $FERRY_BIN when given, else a release build (CARGO_TARGET_DIR defaults to
# $HOME/.cache/ferry-target). Needs ROOT.
build_ferry() {
    if [ -n "${FERRY_BIN:-}" ]; then
        FERRY="$FERRY_BIN"
        [ -x "$FERRY" ] || die "FERRY_BIN=$FERRY is not an executable"
        log "using ferry at $FERRY (FERRY_BIN; not building)"
    else
        command -v cargo >/dev/null || die "cargo is required to build ferry"
        export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ferry-target}"
        log "building ferry (cargo build --release, target dir $CARGO_TARGET_DIR)"
        (cd "$ROOT" && cargo build --release --bin ferry >&2) || die "cargo build --release failed"
        FERRY="$CARGO_TARGET_DIR/release/ferry"
        [ -x "$FERRY" ] || die "no ferry binary at $FERRY after the build"
    fi
}

# OSLS: osls@$OSLS_VERSION installed (once) into $TOOLS.
ensure_osls() {
    OSLS="$TOOLS/node_modules/.bin/osls"
    local installed_osls
    installed_osls="$(node -p "require('$TOOLS/node_modules/osls/package.json').version" 2>/dev/null || true)"
    if [ ! -x "$OSLS" ] || [ "$installed_osls" != "$OSLS_VERSION" ]; then
        log "installing osls@$OSLS_VERSION into $TOOLS"
        mkdir -p "$TOOLS"
        npm install --prefix "$TOOLS" "osls@$OSLS_VERSION" --no-audit --no-fund >&2 \
            || die "npm install of osls@$OSLS_VERSION failed"
    fi
    [ -x "$OSLS" ] || die "osls binary missing at $OSLS after install"
}
