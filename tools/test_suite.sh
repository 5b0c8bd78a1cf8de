#!/usr/bin/env bash
# Run cen_mm's whole test suite in the pinned environment (built on first use).
# Extra arguments go to pytest, e.g. `bash tools/test_suite.sh tests/test_cnn`.
set -euo pipefail
cd "$(dirname "$0")/.."
env=$(bash tools/env.sh)
[ $# -gt 0 ] || set -- tests
exec "$env/bin/python" -m pytest -q "$@"
