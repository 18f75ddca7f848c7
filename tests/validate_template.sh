#!/usr/bin/env bash
# Validates template.yaml offline, with no AWS account:
#   1. cfn-lint on the SAM template itself;
#   2. aws-sam-translator turns it into plain CloudFormation (tests/sam_translate.py, no AWS call);
#   3. cfn-lint on that result, so the resources SAM generates (roles, permissions, API stage) are
#      checked too.
# Informational checks (-c I) are included, so every stateful resource must state its
# DeletionPolicy/UpdateReplacePolicy. Any finding, of any level, makes the script exit non-zero.
#
# The tools come from a Python virtualenv: KLOZEO_VENV names it (the venv directory or its bin
# directory), default .venv at the repository root. A missing venv is created with the pinned
# versions below.
#
# The Rust side (tables and functions agree with schema.rs and functions/*) is
# `cargo test -p klozeo-tests --test integration template::`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${KLOZEO_VENV:-$root/.venv}"
CFN_LINT_VERSION="1.58.0"
SAM_TRANSLATOR_VERSION="1.115.0"

if [[ -x "$venv/bin/cfn-lint" ]]; then
  bin="$venv/bin"
elif [[ -x "$venv/cfn-lint" ]]; then
  bin="$venv"
else
  echo "validate_template: no cfn-lint in $venv; creating the venv there" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "cfn-lint==$CFN_LINT_VERSION" "aws-sam-translator==$SAM_TRANSLATOR_VERSION"
  bin="$venv/bin"
fi

template="$root/template.yaml"
translated="$(mktemp --suffix=.json)"
trap 'rm -f "$translated"' EXIT

status=0

echo "== cfn-lint template.yaml ($("$bin/cfn-lint" --version))"
"$bin/cfn-lint" --include-checks I -- "$template" || status=1

echo "== aws-sam-translator: template.yaml -> CloudFormation"
if "$bin/python" "$root/tests/sam_translate.py" "$template" >"$translated"; then
  echo "== cfn-lint on the translated template"
  "$bin/cfn-lint" --include-checks I -- "$translated" || status=1
else
  status=1
fi

if [[ $status -eq 0 ]]; then
  echo "validate_template: no findings"
else
  echo "validate_template: FAILED (see findings above)" >&2
fi
exit $status
