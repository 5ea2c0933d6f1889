#!/usr/bin/env bash
# Run the test suite once per installed Keras backend, then execute the tutorials.
#
#   bash scripts/run_tests.sh            # fast mode (KERAS_INDI_FAST=1, as in CI)
#   KERAS_INDI_FAST=0 bash scripts/run_tests.sh   # also the slow checks (notebooks stay in smoke mode)
#   KERAS_INDI_NOTEBOOK_SMOKE=0 bash scripts/run_tests.sh   # notebooks in the learner's fast mode
#
# Notebooks have three modes: full (a GPU budget), fast (KERAS_INDI_FAST=1: the CPU budget a
# learner runs, which produced the committed outputs) and smoke (KERAS_INDI_NOTEBOOK_SMOKE=1, the
# default here and in CI: every cell runs at a tiny budget to catch breakage; results are meaningless).
#
# Backend-agnostic tests (NumPy-only code, the command line, data pipelines) run in one pass
# only: torch's when torch is installed (its eager steps make the many tiny trainings of the
# command-line tests ~10x faster than TensorFlow's traced ones), else TensorFlow's.
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

if [ -z "${KERAS_INDI_AGNOSTIC_BACKEND:-}" ]; then
    if have torch; then KERAS_INDI_AGNOSTIC_BACKEND=torch; else KERAS_INDI_AGNOSTIC_BACKEND=tensorflow; fi
fi
export KERAS_INDI_AGNOSTIC_BACKEND
# One JAX persistent compilation cache for this run: a program compiled once (a U-Net train step,
# a sampler loop, a preset's network) is read back by the later tests and notebooks that build it.
jax_cache=$(mktemp -d)
trap 'rm -rf "$jax_cache"' EXIT

for backend in tensorflow jax torch; do
    if have "$backend"; then
        # --doctest-modules: every docstring example is a test too, on every backend.
        run env KERAS_BACKEND="$backend" KERAS_INDI_TEST_COMPILATION_CACHE="$jax_cache" \
            "$python" -m pytest -q -p no:cacheprovider --durations=10 --doctest-modules tests keras_indi
    else
        echo "=== $backend is not installed: skipping its pass"
    fi
done
if have nbmake && have jax; then
    # Notebooks run in smoke mode here (KERAS_INDI_NOTEBOOK_SMOKE=1); KERAS_INDI_NOTEBOOK_SMOKE=0
    # runs the learner's fast CPU mode, and with KERAS_INDI_NOTEBOOK_FAST=0 too, full mode.
    # The run's JAX compilation cache: programs that several notebooks share (weight
    # initializers, the presets' networks, metrics) compile once.
    run env KERAS_BACKEND=jax KERAS_INDI_FAST="${KERAS_INDI_NOTEBOOK_FAST:-1}" \
        KERAS_INDI_NOTEBOOK_SMOKE="${KERAS_INDI_NOTEBOOK_SMOKE:-1}" \
        JAX_COMPILATION_CACHE_DIR="$jax_cache" JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 \
        JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=0 \
        "$python" -m pytest -q -p no:cacheprovider --nbmake --nbmake-timeout=900 --durations=0 tutorials
fi
exit $status
