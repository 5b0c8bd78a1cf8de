#!/usr/bin/env bash
# Run cen_mm's whole test suite in the pinned environment (built on first use)
# against this checkout's code. Skip reasons are printed (-rs).
# Extra arguments go to pytest, e.g. `bash tools/test_suite.sh tests/test_cnn`.
set -euo pipefail
cd "$(dirname "$0")/.."
env=$(bash tools/env.sh)
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} NO_ALBUMENTATIONS_UPDATE=1
[ $# -gt 0 ] || set -- tests
exec "$env/bin/python" -m pytest -q -rs -p no:randomly "$@"
