#!/usr/bin/env bash
# `npm test`: every stage runs, even after one fails, then one summary (status and seconds per stage);
# exits non-zero if any stage failed. Stages: typecheck, Node tests, container (integration) tests, trainer tests.
set -uo pipefail
cd "$(dirname "$0")/.."
stages=("typecheck:npm run -s typecheck" "node:npm run -s test:node" "integration:npm run -s test:integration" "trainer:npm run -s test:trainer")
summary=()
failed=0
for s in "${stages[@]}"; do
  name="${s%%:*}"; cmd="${s#*:}"
  echo "=== [test-all] ${name}: ${cmd}"
  t0=$(date +%s)
  if bash -c "$cmd"; then status=ok; else status=FAILED; failed=1; fi
  summary+=("$(printf '%-12s %-7s %5ss' "$name" "$status" "$(( $(date +%s) - t0 ))")")
done
echo
echo "=== [test-all] summary"
printf '%s\n' "${summary[@]}"
exit $failed
