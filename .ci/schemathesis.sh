#!/usr/bin/env bash
# The OpenAPI document against the server that serves it, on SQLite and on
# PostgreSQL:
#   1. openapi-spec-validator validates /api/openapi.json as served;
#   2. schemathesis generates requests from it (every check, a fixed number
#      of examples per operation, a fixed seed) and holds every answer to
#      the document, once with a tenant admin's token (X-Tenant) and once
#      with a platform superuser's.
# Each backend gets fresh data: a temporary SQLite directory, or a fresh
# PostgreSQL database (dropped afterwards). The Python tools are installed
# from PyPI, at pinned versions, into a virtualenv under the target dir.
#
#   bash .ci/schemathesis.sh [sqlite|postgres]...   (default: both)
#
# PostgreSQL: SAAS_SCHEMATHESIS_PG (default postgres://postgres@127.0.0.1:5432),
# reached with psql. Examples per operation: SCHEMATHESIS_EXAMPLES (default 30).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"

target="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
venv="$target/ci-venv"
examples="${SCHEMATHESIS_EXAMPLES:-30}"
seed=20260101
pg_base="${SAAS_SCHEMATHESIS_PG:-postgres://postgres@127.0.0.1:5432}"
backends=("$@")
[ ${#backends[@]} -gt 0 ] || backends=(sqlite postgres)

step() { printf '\n==> %s\n' "$*"; }

if [ ! -x "$venv/bin/schemathesis" ] || [ ! -x "$venv/bin/openapi-spec-validator" ]; then
  step "Installing openapi-spec-validator and schemathesis into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "openapi-spec-validator==0.9.0" "schemathesis==4.32.5"
fi

step "Building saas-server"
cargo build --quiet -p saas-server
server_bin="$target/debug/saas-server"

work="$(mktemp -d)"
server_pid=""
database=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [ -n "$database" ]; then psql -q "$pg_base/postgres" -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Starts saas-server on a free port over $1's fresh storage; sets $base.
start_server() {
  local backend="$1" dir="$work/$1"
  mkdir -p "$dir"
  local -a env=(
    SECRET_KEY="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    ENABLE_X_TENANT=true
    REGISTRATION_RATE_LIMIT=off
    RUST_LOG=warn
    EMAIL_BACKEND=django.core.mail.backends.filebased.EmailBackend
    EMAIL_FILE_PATH="$dir"
    DATA_DIR="$dir/data"
  )
  if [ "$backend" = postgres ]; then
    database="saas_schemathesis_$$"
    psql -q "$pg_base/postgres" -c "CREATE DATABASE $database"
    env+=(DATABASE_URL="$pg_base/$database")
  fi
  env -u DATABASE_URL -u DEBUG "${env[@]}" "$server_bin" migrate >"$dir/migrate.log" 2>&1
  env -u DATABASE_URL -u DEBUG "${env[@]}" SAAS_SUPERUSER_PASSWORD='schemathesis superuser' \
    "$server_bin" createsuperuser --username root --email root@example.com >/dev/null
  env -u DATABASE_URL -u DEBUG "${env[@]}" "$server_bin" serve --bind 127.0.0.1:0 \
    >"$dir/serve.out" 2>"$dir/serve.err" &
  server_pid=$!
  base=""
  for _ in $(seq 1 300); do
    base="$(sed -n 's#^saas-server listening on \(http://[0-9.:]*\)$#\1#p' "$dir/serve.out" | head -1)"
    [ -n "$base" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$dir/serve.err"; return 1; }
    sleep 0.1
  done
  [ -n "$base" ] || { echo "saas-server did not start"; cat "$dir/serve.err"; return 1; }
}

stop_server() {
  kill -TERM "$server_pid"
  wait "$server_pid" || true
  server_pid=""
  if [ -n "$database" ]; then
    psql -q "$pg_base/postgres" -c "DROP DATABASE IF EXISTS $database WITH (FORCE)"
    database=""
  fi
}

# POSTs JSON $2 to $1 (with more curl arguments after) and prints field $3 of the answer.
post_field() {
  local path="$1" body="$2" field="$3"
  shift 3
  curl -sf -X POST "$base$path" -H 'Content-Type: application/json' "$@" -d "$body" \
    | python3 -c "import json, sys; print(json.load(sys.stdin)['$field'])"
}

# One worker: with several, schemathesis's threads trip a CPython 3.11 race
# in the ast module ("AST constructor recursion depth mismatch").
fuzz() {
  local who="$1"
  shift
  step "schemathesis ($backend, $who): $examples examples per operation, seed $seed"
  # From the scratch directory: schemathesis keeps a cache in its working directory.
  (cd "$work" && "$venv/bin/schemathesis" --config-file "$repo/.ci/schemathesis.toml" \
    run "$base/api/openapi.json" \
    --checks all --max-examples "$examples" --seed "$seed" --generation-deterministic \
    --workers 1 --no-color \
    --report junit --report-dir "$target/schemathesis/$backend-$who" "$@")
}

for backend in "${backends[@]}"; do
  start_server "$backend"

  step "openapi-spec-validator ($backend)"
  curl -sf "$base/api/openapi.json" -o "$work/openapi.json"
  "$venv/bin/openapi-spec-validator" "$work/openapi.json"

  # A tenant on the unlimited plan (plan limits are not what is tested)
  # and its admin's token; the superuser's platform token.
  post_field /api/register/ '{"company_name": "Fuzz", "schema_name": "fuzz", "domain_url": "fuzz.test",
    "admin_username": "admin", "admin_email": "admin@fuzz.test",
    "admin_password": "schemathesis admin", "subscription_plan": "enterprise"}' id >/dev/null
  admin="$(post_field /api/token/ '{"username": "admin", "password": "schemathesis admin"}' access -H 'X-Tenant: fuzz')"
  root="$(post_field /api/platform/token/ '{"username": "root", "password": "schemathesis superuser"}' access)"

  fuzz tenant-admin -H "Authorization: Bearer $admin" -H 'X-Tenant: fuzz'
  fuzz superuser -H "Authorization: Bearer $root"
  stop_server
done
