#!/usr/bin/env bash
# The full chaos run: 4 delegation-worker processes on one database, 10,000 delegations enqueued while
# faults are injected every ~200 ms: 50 SIGKILLs of a random worker (restarted), 3 platform outages of
# 10 s, 5 write locks held 2.5 s by another process (past the workers' 0.5 s busy timeout), and a peer
# that hangs past the request timeout on 5 % of first sends; then every promise is checked.
# Extra arguments go to delegation-chaos (e.g. --concurrency 1 for the strict "duplicates ≤ kills" bound).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product delegation-worker
swift build -c release --product delegation-admin
swift build -c release --product delegation-chaos
swift build -c release --product store-probe
exec .build/release/delegation-chaos --delegations 10000 --kills 50 --outages 3 --locks 5 --workers 4 "$@"
