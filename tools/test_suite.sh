#!/usr/bin/env bash
# Run cen_mm's whole test suite in the pinned environment (built on first use)
# against this checkout's code. Skip reasons are printed (-rs).
#
# Tests run in a random order (pytest-randomly); the seed is printed first so
# a failing order can be replayed: `bash tools/test_suite.sh --randomly-seed=N`
# (or set CEN_MM_TEST_SEED=N). `-p no:randomly` restores file order.
# Extra arguments go to pytest, e.g. `bash tools/test_suite.sh tests/test_cnn`.
set -euo pipefail
cd "$(dirname "$0")/.."
env=$(bash tools/env.sh)
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} NO_ALBUMENTATIONS_UPDATE=1
order=()
case " $* " in
    *" --randomly-seed"* | *"no:randomly"*) ;;
    *)
        seed=${CEN_MM_TEST_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
        echo "[cen_mm tests] random order, seed $seed (replay: bash tools/test_suite.sh --randomly-seed=$seed)"
        order=(-p randomly "--randomly-seed=$seed") ;;
esac
[ $# -gt 0 ] || set -- tests
# Build the CPU row kernels now (about a minute, once per source and torch;
# cached), so no test pays for it; where they cannot be built this warns and
# the kernels' tests skip.
"$env/bin/python" -W default -c 'from cen_mm.cnn.row_kernel import row_kernel
ok = row_kernel() is not None
print("[cen_mm tests] CPU row kernels:", "built" if ok else "unavailable")' \
    2> >(grep -v 'No CUDA runtime is found' >&2)
exec "$env/bin/python" -m pytest -q -rs "${order[@]}" "$@"
