#!/bin/sh
# jorm-master installer: fetches the release binary for this machine, verifies its SHA256, installs
# it, then hands every argument to `jorm-master install`.
#
#   curl -fsSL https://github.com/jorm-master/jorm-master/releases/latest/download/install.sh \
#     | sudo sh -s -- --runners 3 --jormungandr /usr/local/bin/jormungandr_546497fc
#
# Environment:
#   JORM_MASTER_VERSION   release to install, e.g. 0.1.0 (default: latest)
#   JORM_MASTER_BASE_URL  where releases are downloaded from; assets are fetched as
#                         $JORM_MASTER_BASE_URL/v<version>/<asset> (default: the project's GitHub releases)
#   JORM_MASTER_BIN_DIR   where jorm-master goes (default: /usr/local/bin)
set -eu

DEFAULT_BASE_URL="https://github.com/jorm-master/jorm-master/releases/download"

info() {
    echo "[jorm-master] $*" >&2
}

fatal() {
    echo "[jorm-master] error: $*" >&2
    exit 1
}

setup_env() {
    VERSION="${JORM_MASTER_VERSION:-latest}"
    VERSION="${VERSION#v}"
    BASE_URL="${JORM_MASTER_BASE_URL:-$DEFAULT_BASE_URL}"
    BASE_URL="${BASE_URL%/}"
    BIN_DIR="${JORM_MASTER_BIN_DIR:-/usr/local/bin}"
    BIN="$BIN_DIR/jorm-master"
}

# The release has x86_64 builds only: one for CPUs with AVX2 and a baseline one for those without.
detect_asset() {
    arch="$(uname -m)"
    case "$arch" in
        x86_64 | amd64) ;;
        *) fatal "unsupported architecture $arch: only x86_64 (amd64) builds are published" ;;
    esac
    ASSET="jorm-master-linux-x64"
    if ! grep -qw avx2 /proc/cpuinfo 2>/dev/null; then
        ASSET="jorm-master-linux-x64-baseline"
        info "CPU without AVX2: using the baseline build"
    fi
}

asset_url() {
    if [ "$VERSION" = latest ]; then
        case "$BASE_URL" in
            */releases/download) echo "${BASE_URL%/download}/latest/download/$1" ;;
            *) echo "$BASE_URL/latest/$1" ;;
        esac
    else
        echo "$BASE_URL/v$VERSION/$1"
    fi
}

# Re-running with the version that is installed downloads nothing.
already_installed() {
    [ "$VERSION" != latest ] || return 1
    [ -x "$BIN" ] || return 1
    installed="$("$BIN" --version 2>/dev/null || true)"
    case "$installed" in
        "$VERSION" | "$VERSION"+* | "$VERSION"-*)
            info "jorm-master $installed is already installed in $BIN_DIR"
            return 0
            ;;
    esac
    return 1
}

setup_tmp() {
    TMP_DIR="$(mktemp -d 2>/dev/null || mktemp -d -t jorm-master)"
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

cleanup() {
    rm -rf "$TMP_DIR"
}

download() {
    url="$1"
    out="$2"
    if command -v curl >/dev/null 2>&1; then
        curl -fsSL --retry 3 -o "$out" "$url" || fatal "download failed: $url"
    elif command -v wget >/dev/null 2>&1; then
        wget -q -O "$out" "$url" || fatal "download failed: $url"
    else
        fatal "neither curl nor wget is installed"
    fi
}

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 "$1" | cut -d' ' -f1
    else
        fatal "neither sha256sum nor shasum is installed: cannot verify the download"
    fi
}

download_sums() {
    info "downloading $(asset_url SHA256SUMS)"
    download "$(asset_url SHA256SUMS)" "$TMP_DIR/SHA256SUMS"
    # sha256sum format: "<hash>  <name>" (or "<hash> *<name>" in binary mode)
    EXPECTED="$(awk -v a="$ASSET" '$2 == a || $2 == "*" a { print $1; exit }' "$TMP_DIR/SHA256SUMS")"
    [ -n "$EXPECTED" ] || fatal "SHA256SUMS has no entry for $ASSET"
}

# A binary identical to the release one (same hash) needs no download either.
same_as_installed() {
    [ -f "$BIN" ] || return 1
    [ "$(sha256_of "$BIN")" = "$EXPECTED" ] || return 1
    info "$BIN is already this release's $ASSET"
    return 0
}

download_binary() {
    info "downloading $(asset_url "$ASSET")"
    download "$(asset_url "$ASSET")" "$TMP_DIR/$ASSET"
}

verify_binary() {
    actual="$(sha256_of "$TMP_DIR/$ASSET")"
    if [ "$actual" != "$EXPECTED" ]; then
        echo "[jorm-master] error: checksum mismatch for $ASSET, refusing to install it" >&2
        echo "[jorm-master]   expected: $EXPECTED" >&2
        echo "[jorm-master]   actual:   $actual" >&2
        exit 1
    fi
    info "checksum verified: $actual"
}

install_binary() {
    mkdir -p "$BIN_DIR"
    chmod 0755 "$TMP_DIR/$ASSET"
    # Beside the target first, then rename: a running jorm-master is never half overwritten.
    cp "$TMP_DIR/$ASSET" "$BIN.new"
    mv -f "$BIN.new" "$BIN"
    info "installed $BIN ($("$BIN" --version))"
}

run_install() {
    info "running: $BIN install $*"
    exec "$BIN" install "$@"
}

# The plan: each step is one small verb above.
{
    setup_env
    detect_asset
    if ! already_installed; then
        setup_tmp
        download_sums
        if ! same_as_installed; then
            download_binary
            verify_binary
            install_binary
        fi
        cleanup
        trap - EXIT
    fi
    run_install "$@"
}
