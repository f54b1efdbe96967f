#!/usr/bin/env bash
# Runs each race-shaped test N times (default 20) on a real Postgres server and prints "passes/runs" per test, so a
# race that only fails on some interleavings shows up before it reaches CI (docs/testing.md keeps the results).
#   DATABASE_URL=postgres://postgres@127.0.0.1:PORT/postgres scripts/race-loop.sh [runs] [name-filter]
# Without DATABASE_URL it starts a throwaway cluster for the loop, as .ci/run does (root: through runuser).
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
filter=${2:-}

# name|file|subtest patterns for tap --grep, one per level separated by ';' (empty: the whole file is the race)
races=(
  "ca-jobs disable vs issuance|test/ca/ca-jobs.test.ts|^disable racing"
  "ca-jobs deletion job twice at once|test/ca/ca-jobs.test.ts|^scheduled deletion"
  "ca-jobs expiry job twice at once|test/ca/ca-jobs.test.ts|^expiry"
  "ca-quota-race|test/ca/ca-quota-race.test.ts|"
  "tag-limit concurrency|test/tags/tag-limit-race.test.ts|"
  "concurrent replays|test/auth/replay.test.ts|^concurrent identical replays"
  "revocation: concurrent CRL signers|test/revocation/revocation.test.ts|^CRL numbers stay unique"
  "revocation: concurrent revokes|test/revocation/revocation.test.ts|^concurrent revokes"
  "concurrent settlement (two processes)|test/billing/processes.test.ts|"
  "prepaid renewal from two instances|test/billing/prepaid-renewal-race.test.ts|"
  "group commit burst past the quota|test/certificates/group-commit.test.ts|^a concurrent burst"
  "Idempotency-Key concurrency|test/certificates/issuance.test.ts|^Idempotency-Key"
  "Idempotency-Key batches from two instances|test/certificates/idempotency-race.test.ts|"
  "concurrent migration runs|test/db/migrate.test.ts|^Postgres 15;^two concurrent runs"
  "advisory lock and row lock (both backends)|test/db/database.test.ts|"
  "ACME expiry job twice at once|test/acme/acme-expiry.test.ts|"
  "settlement of 1,000 concurrent issuances, twice at once|test/billing/billing.test.ts|^scenario 5"
  "settlement gap with a concurrent run|test/billing/settlement-gap.test.ts|"
  "PKCS#11 concurrent signatures|test/keystore/pkcs11.test.ts|^PKCS#11 key store;^(EC256|RSA2048)|^50 concurrent|^signing while"
)

if [ -z "${DATABASE_URL:-}" ]; then
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  work=$(mktemp -d /tmp/pca-race-XXXXXX)
  chmod 755 "$work"
  as_pg=()
  if [ "$(id -u)" = 0 ]; then chown postgres "$work"; as_pg=(runuser -u postgres --); fi
  port=55500
  while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
  "${as_pg[@]}" "$pg_bin/initdb" -D "$work/pg" -U postgres --auth=trust >/dev/null
  "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg" -l "$work/postgres.log" -w \
    -o "-p $port -k $work -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" start >/dev/null
  trap '"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1; rm -rf "$work"' EXIT
  export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
fi

status=0
for race in "${races[@]}"; do
  name=${race%%|*}; rest=${race#*|}; file=${rest%%|*}; patterns=${rest#*|}
  [[ -z "$filter" || "$name" == *"$filter"* ]] || continue
  grep_args=()
  if [ -n "$patterns" ]; then IFS=';' read -ra levels <<<"$patterns"; for level in "${levels[@]}"; do grep_args+=(--grep="$level"); done; fi
  passes=0
  for ((i = 1; i <= runs; i++)); do
    log=$(mktemp)
    if npx tap --disable-coverage --reporter=terse "${grep_args[@]}" "$file" >"$log" 2>&1; then
      passes=$((passes + 1))
    else
      echo "FAILED run $i of $name:" >&2
      tail -40 "$log" >&2
    fi
    rm -f "$log"
  done
  [ "$passes" -eq "$runs" ] || status=1
  printf '%s/%s  %s (%s)\n' "$passes" "$runs" "$name" "$file"
done
exit $status
