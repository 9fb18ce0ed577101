#!/usr/bin/env bash
# The full chaos run: 4 delegation-worker processes on one database, 10,000 delegations enqueued while
# a random worker is SIGKILLed every ~200 ms (50 kills) and restarted; then every promise is checked.
# Extra arguments go to delegation-chaos (e.g. --concurrency 1 for the strict "duplicates ≤ kills" bound).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product delegation-worker
swift build -c release --product delegation-admin
swift build -c release --product delegation-chaos
exec .build/release/delegation-chaos --delegations 10000 --kills 50 --workers 4 "$@"
