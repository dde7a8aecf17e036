#!/usr/bin/env bash
# The custom cfn-lint rules must fire on what they forbid and stay quiet on what they allow.
set -uo pipefail
cd "$(dirname "$0")"
out=$(cfn-lint --append-rules . --include-checks E9002 -- fixtures/wildcards.yaml 2>&1)
count=$(grep -c "E9002" <<<"$out")
if [ "$count" -ne 5 ]; then
  echo "infra/lint selftest: expected 5 E9002 findings in fixtures/wildcards.yaml, got $count:"; echo "$out"; exit 1
fi
if out=$(cfn-lint --append-rules . -- fixtures/scoped.yaml 2>&1) && ! grep -q "E900" <<<"$out"; then
  echo "infra/lint selftest: ok"
else
  echo "infra/lint selftest: fixtures/scoped.yaml should pass:"; echo "$out"; exit 1
fi
