#!/usr/bin/env bash
# Runs the test suite on Node 22 and 24 (the default run is on the machine's Node 20). Node itself
# comes from the npm registry (the `node` package), so nothing is downloaded from elsewhere.
#   scripts/node-versions.sh [MAJOR...]      (default: 22 24)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
majors=("$@")
[[ ${#majors[@]} -gt 0 ]] || majors=(22 24)
for major in "${majors[@]}"; do
  bin=""
  # npx from a neutral folder (inside the project, `node` may resolve to the project's own);
  # the first call installs the package, so ask twice before giving up.
  for attempt in 1 2; do
    bin="$(cd "$(mktemp -d)" && npx --yes -p "node@$major" -c 'command -v node')"
    [[ "$("$bin" --version)" == "v$major."* ]] && break
    bin=""
  done
  if [[ -z "$bin" ]]; then echo "could not get Node $major from the npm registry" >&2; exit 1; fi
  echo "== tests on $("$bin" --version) =="
  (cd "$root" && PATH="$(dirname "$bin"):$PATH" "$bin" node_modules/vitest/vitest.mjs run)
done
