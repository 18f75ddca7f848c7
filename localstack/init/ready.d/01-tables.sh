#!/bin/bash
# LocalStack READY hook: creates the klozeo DynamoDB tables.
#
# The tables are not described here. They are created by `klozeo dynamodb create-tables`, which
# builds every CreateTable/UpdateTimeToLive call from klozeo_core::schema::TABLES, the same
# definition template.yaml is tested against (tests/tests/template.rs). So LocalStack, moto, SAM
# and the code can never disagree about a table, an index or a TTL.
#
# The binary comes from the host, mounted at /opt/klozeo/bin (KLOZEO_BIN_DIR in
# docker-compose.yml). Without it the hook only says how to create the tables from the host,
# which runs exactly the same code. The command is idempotent: existing tables are left alone.
set -euo pipefail

prefix="${KLOZEO_TABLE_PREFIX:-klozeo-local-}"
endpoint="${KLOZEO_INIT_ENDPOINT:-http://localhost:4566}"

bin=""
for candidate in "${KLOZEO_BIN:-}" /opt/klozeo/bin/klozeo /opt/klozeo/bin/bootstrap; do
  if [[ -n "$candidate" && -f "$candidate" && -x "$candidate" ]]; then
    bin="$candidate"
    break
  fi
done

if [[ -z "$bin" ]]; then
  cat <<MSG
klozeo: no klozeo binary in /opt/klozeo/bin, so the tables were NOT created.
klozeo: create them from the host (same code, idempotent):
klozeo:   AWS_ENDPOINT_URL=$endpoint AWS_REGION=${AWS_DEFAULT_REGION:-us-east-1} \\
klozeo:   AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \\
klozeo:   cargo run -p klozeo -- dynamodb create-tables --table-prefix $prefix
klozeo: or mount a Linux build of klozeo (see localstack/README.md) and restart LocalStack.
MSG
  exit 0
fi

echo "klozeo: creating tables ${prefix}* with $bin"
if ! AWS_ENDPOINT_URL="$endpoint" \
  AWS_REGION="${AWS_DEFAULT_REGION:-us-east-1}" \
  AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" \
  AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}" \
  "$bin" dynamodb create-tables --table-prefix "$prefix"; then
  echo "klozeo: $bin failed. Is it a Linux build for this container's CPU ($(uname -m)) and" \
    "a glibc no newer than $(ldd --version 2>/dev/null | head -1 | awk '{print $NF}')?" \
    "See localstack/README.md." >&2
  exit 1
fi

echo "klozeo: creating the jobs queues ${prefix}jobs and ${prefix}jobs-dlq"
AWS_ENDPOINT_URL="$endpoint" \
  AWS_REGION="${AWS_DEFAULT_REGION:-us-east-1}" \
  AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" \
  AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}" \
  "$bin" sqs create-queues --prefix "$prefix"
