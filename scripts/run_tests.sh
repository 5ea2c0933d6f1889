#!/usr/bin/env bash
# Run the test suite once per installed Keras backend, then execute the tutorials.
#
#   bash scripts/run_tests.sh            # fast mode (KERAS_INDI_FAST=1, as in CI)
#   KERAS_INDI_FAST=0 bash scripts/run_tests.sh   # also the slow checks (notebooks stay in fast mode)
#
# Backend-agnostic tests (NumPy-only code) run in the TensorFlow pass only.
set -uo pipefail
cd "$(dirname "$0")/.."
export KERAS_INDI_FAST="${KERAS_INDI_FAST:-1}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
export MPLBACKEND=Agg
python=${PYTHON:-python}
status=0

have() { "$python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$1') is None)"; }

run() {
    echo "=== $*"
    "$@"
    local code=$?
    # pytest exits 5 when it collected nothing (e.g. no notebooks): not a failure.
    if [ "$code" -ne 0 ] && [ "$code" -ne 5 ]; then status=1; fi
}

for backend in tensorflow jax torch; do
    if have "$backend"; then
        # --doctest-modules: every docstring example is a test too, on every backend.
        run env KERAS_BACKEND="$backend" "$python" -m pytest -q -p no:cacheprovider --durations=10 \
            --doctest-modules tests keras_indi
    else
        echo "=== $backend is not installed: skipping its pass"
    fi
done
if have nbmake && have jax; then
    # Notebooks always run in their fast CPU mode here (full mode is sized for a GPU);
    # KERAS_INDI_NOTEBOOK_FAST=0 runs them in full mode.
    run env KERAS_BACKEND=jax KERAS_INDI_FAST="${KERAS_INDI_NOTEBOOK_FAST:-1}" "$python" -m pytest -q -p no:cacheprovider \
        --nbmake --nbmake-timeout=900 --durations=0 tutorials
fi
exit $status
