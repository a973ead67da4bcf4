# Shared by the scripts: paths, package installation, the development environment.
# shellcheck shell=bash
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DATA_DIR="${COMPASS_DATA_DIR:-$ROOT/.data}"
export SWIFT_BACKTRACE="${SWIFT_BACKTRACE:-enable=no}"

# Installs the Debian packages given that are not installed yet (idempotent, quiet).
ensure_packages() {
    local missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing: ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Development-only secrets, generated once and kept in the data folder. Values already in
# the environment win.
load_dev_env() {
    mkdir -p "$DATA_DIR" && chmod 700 "$DATA_DIR"
    local file="$DATA_DIR/dev.env"
    if [ ! -f "$file" ]; then
        local tool="$1"
        umask 077
        {
            echo "COMPASS_JWT_SECRET=$("$tool" secret)"
            echo "CREDENTIALS_KEY=$("$tool" key)"
            echo "CRON_SECRET=$("$tool" secret)"
        } > "$file"
    fi
    local line name
    while IFS= read -r line; do
        name="${line%%=*}"
        [ -n "$name" ] && [ -z "${!name:-}" ] && export "$name=${line#*=}"
    done < "$file"
    export OAUTH_REDIRECT_BASE_URL="${OAUTH_REDIRECT_BASE_URL:-http://127.0.0.1:${PORT:-3000}}"
    export STORE_URL="${STORE_URL:-file://$DATA_DIR/store}"
}

# cfn-lint (PyPI) in a virtual environment under .build, installed once; prints its path.
ensure_cfn_lint() {
    local venv="$ROOT/.build/python/cfn-lint"
    if [ ! -x "$venv/bin/cfn-lint" ]; then
        ensure_packages python3-venv >&2
        python3 -m venv "$venv" >&2 && "$venv/bin/pip" install -q cfn-lint >&2
    fi
    echo "$venv/bin/cfn-lint"
}

# openapi-spec-validator and schemathesis (PyPI) in a virtual environment under .build, installed
# once (scripts/lib/check-openapi); prints the folder.
OPENAPI_TOOLS="schemathesis==4.32.5 openapi-spec-validator==0.9.0 pyyaml==6.0.4"
ensure_openapi_tools() {
    local venv="$ROOT/.build/python/openapi-tools"
    if [ ! -f "$venv/.installed" ] || [ "$(cat "$venv/.installed")" != "$OPENAPI_TOOLS" ]; then
        ensure_packages python3-venv >&2
        rm -rf "$venv"
        # shellcheck disable=SC2086
        python3 -m venv "$venv" >&2 && "$venv/bin/pip" install -q $OPENAPI_TOOLS >&2 && echo "$OPENAPI_TOOLS" > "$venv/.installed"
    fi
    echo "$venv"
}

# A Python virtual environment FOLDER with the PyPI PACKAGES, made once (its marker .installed)
# and by one maker at a time: an exclusive flock on FOLDER.lock, the lock the tests take too
# (Tests/CompassIntegrationTests/Support/PythonVenv.swift). Prints FOLDER.
ensure_venv() {
    local venv="$1"
    shift
    if [ ! -f "$venv/.installed" ]; then
        ensure_packages python3-venv >&2
        mkdir -p "$(dirname "$venv")"
        (
            flock 9
            [ -f "$venv/.installed" ] || {
                python3 -m venv --clear "$venv" >&2 && "$venv/bin/pip" install -q "$@" >&2 && touch "$venv/.installed"
            }
        ) 9> "$venv.lock"
    fi
    echo "$venv"
}

# moto's server (PyPI moto[server], a DynamoDB-compatible emulator, with boto3) in the virtual
# environment the tests use (Tests/.../MotoServer.swift); prints the folder.
MOTO_VERSION=5.2.1
ensure_moto() { ensure_venv "$ROOT/.build/python/moto-$MOTO_VERSION" "moto[server]==$MOTO_VERSION"; }

# Meta's Python Business SDK in the virtual environment the parity test and the benchmark use
# (Tests/.../SDKParityTests.swift); prints the folder.
FACEBOOK_BUSINESS_VERSION=26.0.3
ensure_facebook_business() {
    ensure_venv "$ROOT/.build/python/facebook-business-$FACEBOOK_BUSINESS_VERSION" "facebook-business==$FACEBOOK_BUSINESS_VERSION"
}

# A throwaway PostgreSQL cluster in the empty folder DIR (Debian's postgresql; the server
# refuses root, so under root it runs as the postgres user): trust authentication, no TCP, its
# Unix socket in DIR. Prints the STORE_URL that reaches it; stop it with stop_throwaway_postgres.
as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
postgres_bin() { ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1; }
start_throwaway_postgres() {
    local dir="$1" bin; bin="$(postgres_bin)"
    [ "$(id -u)" -ne 0 ] || chown postgres "$dir"
    as_postgres "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync -E UTF8 >/dev/null
    as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/data.log" -o "-k $dir -c listen_addresses= -c fsync=off" -w start >/dev/null
    echo "postgresql://postgres@/postgres?host=$dir"
}
stop_throwaway_postgres() { as_postgres "$(postgres_bin)/pg_ctl" -D "$1/data" -m immediate -w stop >/dev/null 2>&1 || true; }
