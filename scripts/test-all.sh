#!/usr/bin/env bash
# `npm test`: every stage runs, even after one fails, then one summary (status and seconds per stage);
# exits non-zero if any stage failed. A stage whose tests were all skipped (the container suite without a Docker
# engine) is reported `skipped` with the reason, not `ok`. Stages: typecheck, Node tests, container (integration) tests, trainer tests.
set -uo pipefail  # pipefail: a stage's status is its command's, not tee's
cd "$(dirname "$0")/.."
stages=("typecheck:npm run -s typecheck" "node:npm run -s test:node" "integration:npm run -s test:integration" "trainer:npm run -s test:trainer")
summary=()
failed=0
for s in "${stages[@]}"; do
  name="${s%%:*}"; cmd="${s#*:}"
  echo "=== [test-all] ${name}: ${cmd}"
  t0=$(date +%s)
  log=$(mktemp)
  if bash -c "$cmd" 2>&1 | tee "$log"; then status=ok; else status=FAILED; failed=1; fi
  # a stage whose tests were all skipped says so, with the reason its tests printed ("# … skipped: why")
  why=""
  # (node:test counts a skipped suite in neither `# skipped` nor `# tests`: "ok 1 - … # SKIP why")
  if [[ $status == ok ]] && grep -q '^# pass 0$' "$log" && { grep -q '^# skipped [1-9]' "$log" || grep -q '^ok [0-9]* - .* # SKIP' "$log"; }; then
    status=skipped
    why=$(grep -m1 -o '# SKIP .*' "$log" | sed 's/^# SKIP /(/; s/$/)/')
  fi
  rm -f "$log"
  summary+=("$(printf '%-12s %-7s %5ss %s' "$name" "$status" "$(( $(date +%s) - t0 ))" "$why")")
done
echo
echo "=== [test-all] summary"
printf '%s\n' "${summary[@]}"
exit $failed
