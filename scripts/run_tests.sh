#!/usr/bin/env bash
# Run the test suite once per installed Keras backend, then execute the tutorials.
#
#   bash scripts/run_tests.sh            # fast mode (KERAS_INDI_FAST=1, as in CI)
#   KERAS_INDI_FAST=0 bash scripts/run_tests.sh   # also the slow checks (notebooks stay in smoke mode)
#   KERAS_INDI_NOTEBOOK_SMOKE=0 bash scripts/run_tests.sh   # notebooks in the learner's fast mode
#   KERAS_INDI_TEST_JOBS=1 bash scripts/run_tests.sh          # one pass at a time (default: 2 side by side)
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

if [ -z "${KERAS_INDI_AGNOSTIC_BACKEND:-}" ]; then
    if have torch; then KERAS_INDI_AGNOSTIC_BACKEND=torch; else KERAS_INDI_AGNOSTIC_BACKEND=tensorflow; fi
fi
export KERAS_INDI_AGNOSTIC_BACKEND
# One JAX persistent compilation cache for this run: a program compiled once (a U-Net train step,
# a sampler loop, a preset's network) is read back by the later tests and notebooks that build it.
jax_cache=$(mktemp -d)

# The passes are independent processes: with KERAS_INDI_TEST_JOBS > 1 (default: 2 where the
# machine has 2 cores or more) they run side by side in lanes. Much of a pass is single-threaded
# (tracing, XLA and TensorFlow compilation, Python), so two lanes keep both cores of a 2-core CI
# machine busy. The notebooks follow the JAX pass in its lane: they read back its compilation
# cache. Each pass writes its own log, printed whole when the pass ends.
cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
jobs=${KERAS_INDI_TEST_JOBS:-$(( cores >= 2 ? 2 : 1 ))}
logs=$(mktemp -d)
trap 'rm -rf "$jax_cache" "$logs"' EXIT

backend_pass() {  # backend_pass BACKEND: the test suite on one Keras backend
    if have "$1"; then
        # --doctest-modules: every docstring example is a test too, on every backend.
        env KERAS_BACKEND="$1" KERAS_INDI_TEST_COMPILATION_CACHE="$jax_cache" \
            "$python" -m pytest -q -p no:cacheprovider --durations=10 --doctest-modules tests keras_indi
    else
        echo "$1 is not installed: skipping its pass"
    fi
}

notebook_pass() {
    if have nbmake && have jax; then
        # Notebooks run in smoke mode here (KERAS_INDI_NOTEBOOK_SMOKE=1); KERAS_INDI_NOTEBOOK_SMOKE=0
        # runs the learner's fast CPU mode, and with KERAS_INDI_NOTEBOOK_FAST=0 too, full mode.
        # The run's JAX compilation cache: programs that several notebooks share (weight
        # initializers, the presets' networks, metrics) compile once.
        env KERAS_BACKEND=jax KERAS_INDI_FAST="${KERAS_INDI_NOTEBOOK_FAST:-1}" \
            KERAS_INDI_NOTEBOOK_SMOKE="${KERAS_INDI_NOTEBOOK_SMOKE:-1}" \
            JAX_COMPILATION_CACHE_DIR="$jax_cache" JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 \
            JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=0 \
            "$python" -m pytest -q -p no:cacheprovider --nbmake --nbmake-timeout=900 --durations=0 tutorials
    else
        echo "nbmake or jax is not installed: skipping the notebooks"
    fi
}

lane() {  # lane NAME...: run these passes one after the other, each into its own log
    local name start code
    for name in "$@"; do
        start=$SECONDS
        echo "=== $name: started"
        if [ "$name" = notebooks ]; then notebook_pass; else backend_pass "$name"; fi > "$logs/$name.log" 2>&1
        code=$?
        echo "$code" > "$logs/$name.code"
        # One lane prints at a time (flock), so that two logs never interleave.
        {
            flock 9 2>/dev/null || true
            echo "=== $name: finished in $(( SECONDS - start )) s, exit code $code; its log:"
            cat "$logs/$name.log"
        } 9>"$logs/print.lock"
    done
}

if [ "$jobs" -ge 3 ]; then
    lane tensorflow & lane jax notebooks & lane torch & wait
elif [ "$jobs" -eq 2 ]; then
    lane tensorflow torch & lane jax notebooks & wait
else
    lane tensorflow jax torch notebooks
fi
for name in tensorflow jax torch notebooks; do
    code=$(cat "$logs/$name.code" 2>/dev/null || echo 1)
    # pytest exits 5 when it collected nothing (e.g. no notebooks): not a failure.
    if [ "$code" -ne 0 ] && [ "$code" -ne 5 ]; then status=1; echo "=== the $name pass failed (exit code $code)"; fi
done
exit $status
