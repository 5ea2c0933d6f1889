"""The ``keras-indi`` command line: ``quickstart``, ``train``, ``restore`` and ``evaluate``.

Run ``keras-indi --help`` or ``keras-indi COMMAND --help``. ``python -m keras_indi`` is the
same program; without a command it runs ``quickstart``.

User errors (bad options, missing files, a folder that would be overwritten) print one
``keras-indi COMMAND: error: ...`` line saying what to fix and exit with status 2, without a
traceback (set ``KERAS_INDI_DEBUG=1`` to see the traceback). The heavy modules (datasets,
models, evaluation) are imported only when a command runs.
"""

import argparse
import errno
import json
import math
import os
import pathlib
import sys
import time

COMMANDS = ("quickstart", "train", "restore", "evaluate")
NAMED_SOURCES = ("builtin", "dead_leaves", "gopro", "dpdd", "div2k")
NATIVE_TASKS = {"gopro": "motion_deblurring", "dpdd": "defocus_deblurring", "div2k": "super_resolution"}
# Keep in sync with keras_indi.degradations.TASKS (not imported here: --help must stay instant).
TASKS = ("motion_deblurring", "defocus_deblurring", "super_resolution", "jpeg", "denoising", "generation")
TIME_DISTRIBUTIONS = ("uniform", "mass_at_one", "power", "regression")
# --precision values: "auto" and the mixed/float32 policies of keras_indi.utils.precision.PRECISIONS
# (not imported here: it imports Keras).
PRECISION_CHOICES = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
PRECISION_HELP = (
    "dtype policy of the network: auto is mixed_bfloat16 on GPUs with bfloat16 tensor cores "
    "(NVIDIA compute capability >= 8.0) and TPUs, float32 elsewhere, or KERAS_INDI_PRECISION when "
    "set; t, the noise and x_t stay float32 (default: %(default)s)"
)
# The value range of the models `keras-indi train` builds (the InDIModel default): clean images
# must lie in it; degraded inputs (noisy images, pure noise) may exceed it, [0, 255] data may not.
MODEL_VALUE_RANGE = (-1.0, 1.0)
# Files `keras-indi train` owns in its output folder (what --overwrite removes).
TRAIN_FILES = ("config.json", "model.keras", "history.json", "history.csv")
TRAIN_FOLDERS = ("checkpoints", "backup")
# The lock file of a running `keras-indi train` (keras_indi.utils.folder_lock.LOCK_NAME; not
# imported here: importing keras_indi loads Keras) and the temporary files of its atomic writes
# (keras_indi.utils.files.temporary_sibling) that a kill can leave in OUTPUT.
TRAIN_LOCK_NAME = ".keras-indi.lock"
TRAIN_LEFTOVER = r"^\.(?:config|history|model)\.tmp-[0-9a-f]{8}\.(?:json|csv|keras)$"

EPILOG = """\
commands, with an example each:
  quickstart  keras-indi quickstart --task denoising --output indi-quickstart
  train       keras-indi train --task jpeg --source builtin --epochs 20 --output runs/jpeg
  restore     keras-indi restore runs/jpeg/model.keras photos/ --output-dir restored --steps 10
  evaluate    keras-indi evaluate runs/jpeg/model.keras --task jpeg --steps 1,2,5,10,20 --output eval/jpeg

Run `keras-indi COMMAND --help` for the options of a command. The Keras backend comes from
the KERAS_BACKEND environment variable (jax, tensorflow or torch), e.g.
`KERAS_BACKEND=jax keras-indi quickstart`.
"""


class UsageError(ValueError):
    """A mistake in the command line or its files: printed as one line, exit status 2."""


class Terminated(KeyboardInterrupt):
    """Raised by the SIGTERM handler of `keras-indi train` (a `kill`, a batch system's time
    limit), so that a terminated run stops like one interrupted with Ctrl-C: the write in
    progress is abandoned without leaving a half-written file, and a resume hint is printed."""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog):
        super().__init__(prog, max_help_position=32, width=100)


# -- argument types ---------------------------------------------------------------------------
def _number(kind, description, accept):
    """An argparse type: `kind` (int or float) parsed from text, kept when `accept(value)`."""

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {description}, got {text!r}")
        return value

    return parse


_positive_int = _number(int, "a positive integer", lambda value: value >= 1)
_non_negative_int = _number(int, "an integer >= 0", lambda value: value >= 0)
_positive_float = _number(float, "a positive number", lambda value: value > 0)
_non_negative_float = _number(float, "a number >= 0", lambda value: value >= 0)
_t_start = _number(float, "a number in (0, 1]", lambda value: 0.0 < value <= 1.0)


def _int_list(minimum):
    def parse(text):
        try:
            values = tuple(int(part) for part in text.replace(" ", "").split(",") if part != "")
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated integers such as 1,2,5, got {text!r}"
            ) from None
        if any(value < minimum for value in values):
            raise argparse.ArgumentTypeError(f"every value must be >= {minimum}, got {text!r}")
        return values

    return parse


def _value_or_range(kind, description, accept):
    """An argparse type: one value ``V`` or a range ``LOW,HIGH`` (drawn per image); the
    value is returned as such, the range as a ``[low, high]`` list."""

    def parse(text):
        parts = [part for part in text.replace(" ", "").split(",") if part != ""]
        try:
            values = [kind(part) for part in parts]
        except ValueError:
            values = []
        if len(values) not in (1, 2) or not all(math.isfinite(v) and accept(v) for v in values):
            raise argparse.ArgumentTypeError(f"expected {description} or a range LOW,HIGH of them, got {text!r}")
        if len(values) == 2 and values[0] > values[1]:
            raise argparse.ArgumentTypeError(f"a range LOW,HIGH needs LOW <= HIGH, got {text!r}")
        return values[0] if len(values) == 1 else values

    return parse


# The degradation flags of `keras-indi train`: flag -> (task(s), default per task). Each
# becomes a constructor argument of the task's degradation (`_degradation_overrides`).
DEGRADATION_FLAGS = {
    "noise_level": {"denoising": [0.04, 0.4]},
    "jpeg_quality": {"jpeg": [10, 30]},
    "scale": {"super_resolution": 4},
    "blur_size": {"defocus_deblurring": [2.0, 6.0], "motion_deblurring": 31},
}


def _task(text):
    key = text.strip().lower().replace("-", "_").replace(" ", "_")
    if key not in TASKS:
        raise argparse.ArgumentTypeError(f"unknown task {text!r}; choose from {', '.join(TASKS)}")
    return key


# -- the parser -------------------------------------------------------------------------------
def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-indi",
        description=(
            "InDI (Inversion by Direct Iteration, Delbracio & Milanfar 2023) image restoration "
            "with Keras 3: train a restoration model, restore images with it in a few small "
            "steps, and measure how the number of steps trades fidelity (PSNR) for realism."
        ),
        epilog=EPILOG,
        formatter_class=_Formatter,
    )
    from keras_indi.version import __version__

    parser.add_argument("--version", action="version", version=f"keras-indi {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_quickstart(commands)
    _add_train(commands)
    _add_restore(commands)
    _add_evaluate(commands)
    return parser


def _add_quickstart(commands):
    command = commands.add_parser(
        "quickstart",
        help="trained presets on held-out photos, then regression vs InDI trained on built-in images: a report",
        formatter_class=_Formatter,
        description="""\
First, where the task has trained presets (denoising, super_resolution), restore whole
held-out photographs with the InDI preset at several step counts and with its regression twin
(the same network and budget trained as a one-step regressor): presets.md/.csv/.json,
presets_grid.png and presets_zoom.png (a photograph whole and zoomed). Then train the same
small U-Net twice on the built-in training photographs (nothing is downloaded): once as a
one-step regressor, the classic "regression to the mean" baseline, and once with InDI; restore
held-out crops at several step counts and write tradeoff.md/.csv/.json, tradeoff_plot.png,
tradeoff_grid.png and both models (indi.keras, regression.keras). report.md says what the run
shows. The default (--preset cpu) takes under 3 minutes on a 2-core CPU; --preset gpu trains a
bigger model on bigger crops; --tiny runs in seconds (a smoke test). --task toy runs the
paper's 2D toy (four modes plus noise) instead.

example:
  keras-indi quickstart --task denoising --output indi-quickstart
  keras-indi quickstart --task jpeg --preset gpu --output jpeg-report
""",
    )
    command.add_argument(
        "--task",
        default="denoising",
        type=lambda text: "toy" if text.strip().lower() == "toy" else _task(text),
        help=f"restoration task: {', '.join(TASKS)} or toy (default: %(default)s)",
    )
    command.add_argument("--output", default="indi-quickstart", help="report folder (default: %(default)s)")
    command.add_argument(
        "--preset", choices=("cpu", "gpu"), default="cpu", help="size of the run (default: %(default)s)"
    )
    command.add_argument("--tiny", action="store_true", help="seconds-long settings for smoke tests")
    command.add_argument("--epochs", type=_positive_int, help="training epochs (default: from the preset)")
    command.add_argument("--steps-per-epoch", type=_positive_int, help="training batches per epoch (default: from the preset)")
    command.add_argument("--image-size", type=_positive_int, help="training crop size in pixels (default: from the preset)")
    command.add_argument("--batch-size", type=_positive_int, help="batch size (default: from the preset)")
    command.add_argument("--steps", type=_int_list(1), metavar="N,N,...", help="InDI step counts to evaluate (default: from the preset)")
    command.add_argument("--samples", type=_positive_int, help="--task toy only: training pairs (default: 4096)")
    command.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default: %(default)s)")
    command.add_argument("--precision", choices=PRECISION_CHOICES, default="auto", help=PRECISION_HELP)
    command.add_argument("--overwrite", action="store_true", help="write into a non-empty output folder")
    command.add_argument("--quiet", action="store_true", help="no progress bars")
    command.set_defaults(handler=_run_quickstart, command_parser=command)


def _add_data_options(command, default_image_size):
    command.add_argument(
        "--task",
        type=_task,
        help=(
            f"restoration task: {', '.join(TASKS)}. Default: the dataset's own task for "
            "gopro (motion_deblurring), dpdd (defocus_deblurring) and div2k (super_resolution), "
            "else denoising"
        ),
    )
    command.add_argument(
        "--source",
        default="builtin",
        help=(
            "training images: builtin (scikit-image photos + dead leaves, offline), dead_leaves, "
            "a folder of clean images (searched recursively), tfds:NAME, or the paired datasets "
            "gopro, dpdd, div2k with --data-dir (default: %(default)s)"
        ),
    )
    command.add_argument("--data-dir", help="folder of the gopro / dpdd / div2k dataset (or TFDS data_dir)")
    command.add_argument(
        "--image-size", type=_positive_int, default=default_image_size, help="crop size in pixels (default: %(default)s)"
    )
    command.add_argument("--batch-size", type=_positive_int, default=16, help="batch size (default: %(default)s)")
    command.add_argument("--channels", type=int, choices=(1, 3), default=3, help="1 (gray) or 3 (RGB) (default: %(default)s)")
    command.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default: %(default)s)")


def _add_train(commands):
    command = commands.add_parser(
        "train",
        help="train an InDI model (checkpoints every epoch, resumable)",
        formatter_class=_Formatter,
        description="""\
Train an InDI restoration model on (degraded, clean) image pairs and save it to
OUTPUT/model.keras. Pairs come from --source: clean images degraded on the fly by the
--task's degradation (builtin, dead_leaves, a folder, tfds:NAME; its strength is set by the
degradation options below), or real pairs (gopro, dpdd, div2k with --data-dir). The data are
checked before the model is built. Every epoch writes OUTPUT/checkpoints/last.keras, the
best one by validation loss to OUTPUT/checkpoints/best.keras, the losses to history.csv and
a backup of the full training state to OUTPUT/backup; .keras and .json files are written to
a temporary file and renamed into place, so a kill never leaves a truncated one. If training
stops (Ctrl-C, crash, a time limit), run the same command with --resume: it continues from
the last completed epoch. (Tip: put --resume in the command from the start; on an empty
folder it simply starts.) --resume also extends a finished run: raise --epochs. A non-empty
OUTPUT is never reused without --resume or --overwrite (which starts over, deleting the
previous run's files), except a run that stopped before its first epoch was saved: the same
command starts it again. At the end OUTPUT/model.keras and OUTPUT/history.json are written;
the settings, the degradation's included, are in OUTPUT/config.json.

example:
  keras-indi train --task denoising --epochs 20 --output runs/denoising --resume
  keras-indi train --source gopro --data-dir ~/data/GOPRO_Large --image-size 128 \\
      --widths 64,128,256 --attention-levels 2 --epochs 200 --output runs/gopro --resume
""",
    )
    _add_data_options(command, default_image_size=64)
    command.add_argument("--epochs", type=_positive_int, default=10, help="total number of epochs (default: %(default)s)")
    command.add_argument(
        "--steps-per-epoch",
        type=_positive_int,
        help="batches per epoch (default: one pass over a folder/dataset, 50 for builtin and dead_leaves)",
    )
    command.add_argument(
        "--validation-samples",
        type=_non_negative_int,
        help="validation crops (default: 4 batches or one per held-out image); 0: no validation, every "
        "image trains (e.g. a folder of one image; then no best.keras and no validation PSNR)",
    )
    network = command.add_argument_group("network (time-conditional U-Net)")
    network.add_argument("--widths", type=_int_list(1), default=(32, 64, 128), metavar="W,W,...",
                         help="channels per resolution level (default: 32,64,128)")
    network.add_argument("--blocks-per-level", type=_positive_int, default=2, help="residual blocks per level (default: %(default)s)")
    network.add_argument("--attention-levels", type=_int_list(0), default=(), metavar="L,L,...",
                         help="levels (0 = full resolution) with self-attention, e.g. 2 (default: none)")
    network.add_argument("--dropout", type=_non_negative_float, default=0.0, help="dropout rate (default: %(default)s)")
    indi = command.add_argument_group("InDI")
    indi.add_argument(
        "--time-distribution",
        choices=TIME_DISTRIBUTIONS,
        default="mass_at_one",
        help=(
            "training times p(t): uniform, mass_at_one (extra mass at t=1), power (density ~ t^k) "
            "or regression (t=1 only: the one-step regression baseline) (default: %(default)s)"
        ),
    )
    indi.add_argument(
        "--time-parameter",
        type=_non_negative_float,
        help="weight a of mass_at_one (P(t=1) = a/(1+a), default 1) or exponent k of power (default 1)",
    )
    indi.add_argument(
        "--noise-epsilon", type=_non_negative_float, default=0.01,
        help="epsilon of the small noise added to x_t, for images in [-1, 1]; 0 disables it (default: %(default)s)",
    )
    indi.add_argument(
        "--noise-schedule", choices=("constant", "brownian"), default="constant",
        help="eps_t = epsilon (constant) or epsilon / sqrt(t) (brownian) (default: %(default)s)",
    )
    indi.add_argument("--loss", choices=("l1", "l2"), default="l1", help="training loss (default: %(default)s)")
    degradation = command.add_argument_group(
        "degradation of the clean images (builtin, dead_leaves, a folder, tfds:NAME; recorded in config.json)"
    )
    degradation.add_argument(
        "--noise-level", type=_value_or_range(float, "a noise std >= 0", lambda value: value >= 0), metavar="SIGMA",
        help="denoising: std of the Gaussian noise on [-1, 1] images (0.1 = 12.75/255), one value or a range "
        "LOW,HIGH drawn per image (default: 0.04,0.4)",
    )
    degradation.add_argument(
        "--jpeg-quality", type=_value_or_range(int, "a JPEG quality in 1..100", lambda value: 1 <= value <= 100),
        metavar="Q", help="jpeg: JPEG quality, one value or a range LOW,HIGH drawn per image (default: 10,30)",
    )
    degradation.add_argument(
        "--scale", type=_number(int, "an integer >= 2", lambda value: value >= 2), metavar="N",
        help="super_resolution: downsampling factor; --image-size must be a multiple of it (default: 4)",
    )
    degradation.add_argument(
        "--blur-size", type=_value_or_range(float, "a positive number", lambda value: value > 0), metavar="SIZE",
        help="defocus_deblurring: radius of the blur disk in pixels, one value or a range LOW,HIGH drawn per "
        "image (default: 2,6); motion_deblurring: size of the blur kernel in pixels, an odd integer (default: 31)",
    )
    command.add_argument("--learning-rate", type=_positive_float, default=3e-4, help="Adam learning rate (default: %(default)s)")
    command.add_argument("--precision", choices=PRECISION_CHOICES, default="auto", help=PRECISION_HELP)
    command.add_argument(
        "--steps-per-execution",
        type=_positive_int,
        default=1,
        help="training steps per compiled call (JAX, TensorFlow): hides the per-step host dispatch "
        "when steps are short, e.g. small networks on a GPU; the same training (default: %(default)s)",
    )
    command.add_argument(
        "--jit-compile",
        action="store_true",
        help="torch backend: compile the training step with torch.compile (Keras' jit_compile=True): "
        "about a minute of compilation, then faster steps on a CPU (BENCHMARKS.md); JAX and "
        "TensorFlow compile the step anyway",
    )
    command.add_argument(
        "--degrade-on",
        choices=("pipeline", "model"),
        default="pipeline",
        help="where clean crops are degraded: in the data pipeline (NumPy, every task) or inside the "
        "compiled training step on the device (faster on a GPU; denoising, super_resolution, "
        "defocus_deblurring and generation) (default: %(default)s)",
    )
    command.add_argument("--output", required=True, help="run folder (model, checkpoints, history, backup)")
    restart = command.add_mutually_exclusive_group()
    restart.add_argument("--resume", action="store_true", help="continue the run in OUTPUT from its last completed epoch")
    restart.add_argument("--overwrite", action="store_true", help="start over: delete the previous run's files in OUTPUT")
    command.add_argument("--quiet", action="store_true", help="one line per epoch instead of progress bars")
    command.set_defaults(handler=_run_train, command_parser=command)


def _add_restore(commands):
    command = commands.add_parser(
        "restore",
        help="restore image files with a trained model",
        formatter_class=_Formatter,
        description="""\
Restore image files with a trained InDI model (a .keras file written by `keras-indi train` or
`keras-indi quickstart`). INPUT is one or more image files and/or folders (every image file
directly inside a folder). Each restored image is saved as an 8-bit PNG with the input's name
in --output-dir (photo.jpg -> OUT/photo.png). More --steps give sharper, more detailed images
and fewer steps smoother, safer ones (1 step = plain regression). Large images can be
restored in overlapping tiles (--tile-size, --overlap) to bound memory; tiles are blended
smoothly, without seams. Input files are never overwritten: writing into a folder that holds
inputs is refused unless --allow-input-folder, and then outputs get a suffix
(default "_restored"). Existing outputs are kept unless --overwrite. On JAX a repeated restore
of the same model file and image size starts faster: the first one saves its compiled program
next to the compilation cache (KERAS_INDI_RESTORE_PROGRAMS=0 turns this off).

example:
  keras-indi restore runs/denoising/model.keras noisy/ --output-dir restored --steps 10
  keras-indi restore model.keras big.png --output-dir out --tile-size 256 --overlap 32
""",
    )
    command.add_argument("model", metavar="MODEL.keras", help="trained model file")
    command.add_argument("inputs", metavar="INPUT", nargs="+", help="image files or folders of images")
    command.add_argument("--output-dir", required=True, help="folder for the restored PNG files")
    command.add_argument("--steps", type=_positive_int, default=10, help="InDI steps (default: %(default)s)")
    command.add_argument("--seed", type=_non_negative_int, default=0, help="seed of the sampling noise; the same for every image (default: %(default)s)")
    command.add_argument(
        "--t-start", type=_t_start, default=1.0,
        help="start time in (0, 1]: below 1 restores only part of the way, for mildly degraded inputs (default: %(default)s)",
    )
    command.add_argument("--tile-size", type=_positive_int, help="restore in tiles of this size (pixels) when an image is larger (default: whole images, or "
                         "automatic tiles when a whole image would not fit in half the available memory or in "
                         "KERAS_INDI_MEMORY_LIMIT, e.g. 8G)")
    command.add_argument("--overlap", type=_non_negative_int, default=32, help="overlap of neighbouring tiles in pixels (default: %(default)s)")
    command.add_argument("--tile-batch-size", type=_positive_int, default=4, help="tiles per network call (default: %(default)s)")
    command.add_argument("--suffix", help='added to output names, e.g. "_restored" (default: none, or "_restored" with --allow-input-folder)')
    command.add_argument("--allow-input-folder", action="store_true", help="allow --output-dir to be a folder that holds inputs (outputs get --suffix)")
    command.add_argument("--overwrite", action="store_true", help="replace existing output files (never input files)")
    command.set_defaults(handler=_run_restore, command_parser=command)


def _add_evaluate(commands):
    command = commands.add_parser(
        "evaluate",
        help="measure the distortion-perception trade-off of a model against the number of steps",
        formatter_class=_Formatter,
        description="""\
Restore held-out validation crops of a task with a trained model at several step counts and
measure distortion (PSNR, SSIM: higher is better) and perceptual distances (sliced Wasserstein
and power-spectrum distance: lower is better). One step is plain regression (best PSNR,
blurry); more steps give sharper, more realistic images at a lower PSNR. Writes the table
(tradeoff.md/.csv/.json), the trade-off plot (tradeoff_plot.png) and example images
(tradeoff_grid.png) to --output. Use the --task, --source and --seed of training to evaluate
on the validation images held out by `keras-indi train`. Compare with other models with
--baseline LABEL=MODEL.keras (evaluated at 1 step).

example:
  keras-indi evaluate runs/denoising/model.keras --task denoising --steps 1,2,5,10,20 --output eval
  keras-indi evaluate indi-quickstart/indi.keras --task denoising --baseline regression=indi-quickstart/regression.keras --output eval
""",
    )
    command.add_argument("model", metavar="MODEL.keras", help="trained model file")
    _add_data_options(command, default_image_size=64)
    command.add_argument("--steps", type=_int_list(1), default=(1, 2, 5, 10, 20), metavar="N,N,...",
                         help="step counts to evaluate (default: 1,2,5,10,20)")
    command.add_argument("--num-images", type=_positive_int, default=64, help="validation crops to evaluate (default: %(default)s)")
    command.add_argument("--baseline", action="append", default=[], metavar="LABEL=MODEL.keras",
                         help="another model to compare, evaluated at 1 step (repeatable)")
    command.add_argument("--output", required=True, help="folder for the table and figures")
    command.add_argument("--overwrite", action="store_true", help="write into a non-empty output folder")
    command.add_argument("--quiet", action="store_true", help="no progress bar")
    command.set_defaults(handler=_run_evaluate, command_parser=command)


# -- entry point ------------------------------------------------------------------------------
def main(argv=None):
    """Run the command line; returns 0 on success. User errors exit with status 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        # `python -m keras_indi [options]` runs the quickstart.
        print("keras-indi: no command given, running `keras-indi quickstart` (see `keras-indi --help`).", flush=True)
        argv = ["quickstart"] + argv
    parser = build_parser()
    arguments = parser.parse_args(argv)
    command_parser = arguments.command_parser
    try:
        arguments.handler(arguments, command_parser)
    except KeyboardInterrupt as interruption:
        terminated = isinstance(interruption, Terminated)
        message = "terminated (SIGTERM)" if terminated else "interrupted"
        if arguments.command == "train":
            message += f". {_resume_hint(arguments)}"
        command_parser.exit(143 if terminated else 130, f"{command_parser.prog}: {message}\n")
    except (ValueError, OSError) as error:
        if os.environ.get("KERAS_INDI_DEBUG") == "1":
            raise
        hint = "" if isinstance(error, UsageError) else " (set KERAS_INDI_DEBUG=1 to see the traceback)"
        if isinstance(error, OSError) and error.errno in _DISK_FULL_ERRORS:
            hint = (
                " The disk is full (or a quota or file-size limit was reached): free some space or choose "
                "another folder, then run the same command again"
                + (f". {_resume_hint(arguments)}" if arguments.command == "train" else ".")
            )
        command_parser.exit(2, f"{command_parser.prog}: error: {_message(error)}{hint}\n")
    return 0


#: Commands whose successful run ends with `exit_quickly` in the console script.
_QUICK_EXIT_COMMANDS = ("restore",)


def run(argv=None):
    """The ``keras-indi`` console script and ``python -m keras_indi``: `main`, then, after a
    successful ``keras-indi restore``, `exit_quickly`.

    A restore is a short command that people run again and again, and the interpreter's teardown
    after it (freeing JAX's and Keras' modules and the runtime's threads) took 0.2-0.6 s of a
    5.5-8 s warm restore on a 2-core CPU (BENCHMARKS.md). Everything it writes is closed and
    renamed into place before `main` returns. ``KERAS_INDI_QUICK_EXIT=0`` exits the usual way.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    code = main(argv)
    if code == 0 and argv and argv[0] in _QUICK_EXIT_COMMANDS and os.environ.get("KERAS_INDI_QUICK_EXIT") != "0":
        exit_quickly(code)
    return code


def exit_quickly(code=0):
    """End the process now with `code`: run the `atexit` functions (as a normal exit does; they
    include `logging`'s flush), flush the standard streams, then skip the rest of the
    interpreter's teardown (``os._exit``). Only for the end of a command whose files are all
    closed."""
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more to write there
            pass
    os._exit(code)


# errno values of a write refused for lack of space: ENOSPC, EDQUOT (quota), EFBIG (file size).
_DISK_FULL_ERRORS = {getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EFBIG") if hasattr(errno, name)}


def _resume_hint(arguments):
    """What a stopped `keras-indi train` run has saved and how to continue it."""
    output = getattr(arguments, "train_output", None)
    if output is None:  # stopped before its output folder was prepared
        return "Nothing was written: run the same command again."
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a damaged checkpoint was reported during the run
            done = _backup_epoch(output)
    except Exception:  # never hide the interruption behind another error
        done = 0
    if not done:
        return "No epoch was saved yet: run the same command with --resume to start again."
    return (
        f"Epoch {done} is saved (the training state in {output / 'backup'}): run the same command with "
        "--resume to continue from there."
    )


def _message(error):
    if isinstance(error, OSError) and error.filename and str(error.filename) not in str(error):
        return f"{error} ({error.filename})"
    return str(error) or type(error).__name__


def _say(*parts, quiet=False):
    if not quiet:
        print(*parts, flush=True)


# -- quickstart -------------------------------------------------------------------------------
def _run_quickstart(arguments, parser):
    from keras_indi.apps.quickstart import run_quickstart

    if arguments.task != "toy" and arguments.samples is not None:
        parser.error("--samples only applies to --task toy (image tasks use --steps-per-epoch and --batch-size)")
    overrides = {
        "epochs": arguments.epochs,
        "steps_per_epoch": arguments.steps_per_epoch,
        "image_size": arguments.image_size,
        "batch_size": arguments.batch_size,
        "step_counts": arguments.steps,
        "num_samples": arguments.samples,
    }
    if arguments.steps is not None and not arguments.steps:
        parser.error("--steps needs at least one step count, e.g. --steps 1,5,20")
    run_quickstart(
        arguments.output,
        task=arguments.task,
        preset=arguments.preset,
        tiny=arguments.tiny,
        seed=arguments.seed,
        overwrite=arguments.overwrite,
        verbose=0 if arguments.quiet else 1,
        precision=arguments.precision,
        **overrides,
    )


# -- shared helpers ---------------------------------------------------------------------------
def _resolve_task(arguments):
    if arguments.task is not None:
        return arguments.task
    return NATIVE_TASKS.get(arguments.source, "denoising")


def _check_source(arguments):
    source = arguments.source
    if source in NAMED_SOURCES or source.startswith("tfds:"):
        if source in ("gopro", "dpdd", "div2k") and arguments.data_dir is None:
            raise UsageError(
                f"--source {source} needs --data-dir: the folder of the extracted dataset"
                + (" (or a TFDS data_dir where it was prepared)" if source != "dpdd" else "")
                + "."
            )
        if arguments.data_dir is not None and not os.path.isdir(os.path.expanduser(arguments.data_dir)):
            raise UsageError(f"--data-dir {arguments.data_dir!r} is not a folder. Check the path.")
        return source
    path = pathlib.Path(source).expanduser()
    if not path.exists():
        raise UsageError(
            f"--source {source!r} is neither one of {', '.join(NAMED_SOURCES)} nor an existing folder "
            "(use tfds:NAME for a TensorFlow Datasets name). Check the path."
        )
    if not path.is_dir():
        raise UsageError(f"--source {source!r} is a file; pass a folder of clean images.")
    return str(path)


def _build_datasets(
    arguments, task, steps_per_epoch=None, validation_samples=None, validation_fraction=0.1, degrade_on="pipeline",
    degradation=None,
):
    from keras_indi.datasets import build_task_datasets

    return build_task_datasets(
        task,
        source=_check_source(arguments),
        image_size=arguments.image_size,
        batch_size=arguments.batch_size,
        seed=arguments.seed,
        validation_fraction=validation_fraction,
        data_dir=None if arguments.data_dir is None else os.path.expanduser(arguments.data_dir),
        output="numpy",
        steps_per_epoch=steps_per_epoch,
        validation_samples=validation_samples,
        channels=arguments.channels,
        degrade_on=degrade_on,
        degradation=degradation,
    )


def check_model_file(path, option="MODEL"):
    """Clear errors for a missing, misnamed or damaged `.keras` file (without importing Keras)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise UsageError(f"{option} file not found: {path!r}.")
    if os.path.isdir(path):
        raise UsageError(f"{option} {path!r} is a folder; pass the .keras file (e.g. {os.path.join(path, 'model.keras')}).")
    if not path.endswith(".keras"):
        raise UsageError(f"{option} {path!r} is not a .keras file (written by `keras-indi train` or `model.save`).")
    problem = keras_file_problem(path)
    if problem is not None:
        raise UsageError(
            f"{option} {path!r} is damaged: {problem}. If it belongs to a `keras-indi train` run, use "
            "another file of the run (checkpoints/last.keras or checkpoints/best.keras), or run the "
            "training command again with --resume to rewrite it."
        )
    return path


def load_indi_model(path, option="MODEL"):
    """Load a `.keras` file written by keras-indi; clear errors for anything else."""
    path = check_model_file(path, option)
    import keras

    import keras_indi  # noqa: F401  (registers the classes the file refers to)
    from keras_indi.backend.compilation_cache import enable_compilation_cache, loading_weights
    from keras_indi.models.indi_model import InDIModel

    enable_compilation_cache()  # JAX: reuse earlier runs' compiled programs (KERAS_INDI_COMPILATION_CACHE=0: off)
    try:
        with loading_weights():  # JAX: the initial weights the file replaces compile ~3x faster
            model = keras.saving.load_model(path)
    except Exception as error:  # corrupt zip, unknown classes, ...
        raise UsageError(f"could not load the model {path!r}: {type(error).__name__}: {error}") from error
    if not isinstance(model, InDIModel):
        raise UsageError(
            f"{path!r} holds a {type(model).__name__}, not an InDIModel. Pass a model written by "
            "`keras-indi train` or `keras-indi quickstart`."
        )
    return model


def _model_channels(model, path):
    from keras_indi.networks.mlp import TimeConditionalMLP

    if isinstance(model.network, TimeConditionalMLP):
        raise UsageError(
            f"{path!r} restores vectors (e.g. the 2D toy of `keras-indi quickstart --task toy`), not "
            "images. Pass an image model, e.g. one written by `keras-indi train`."
        )
    channels = getattr(model.network, "in_channels", None)
    return channels if channels in (1, 3) else 3


def _is_regression(model):
    from keras_indi.schedules import FixedTime

    distribution = model.time_distribution
    return isinstance(distribution, FixedTime) and distribution.value == 1.0


# -- train ------------------------------------------------------------------------------------
def train_config(arguments):
    """The settings of a training run (what config.json holds); ``precision`` is the dtype
    policy that ``--precision`` resolved to on this machine."""
    from keras_indi.utils.precision import resolve_precision

    return {
        "task": _resolve_task(arguments),
        "source": arguments.source,
        "data_dir": arguments.data_dir,
        "image_size": arguments.image_size,
        "batch_size": arguments.batch_size,
        "channels": arguments.channels,
        "epochs": arguments.epochs,
        "steps_per_epoch": arguments.steps_per_epoch,
        "validation_samples": arguments.validation_samples,
        "widths": list(arguments.widths),
        "blocks_per_level": arguments.blocks_per_level,
        "attention_levels": list(arguments.attention_levels),
        "dropout": arguments.dropout,
        "time_distribution": arguments.time_distribution,
        "time_parameter": arguments.time_parameter,
        "noise_epsilon": arguments.noise_epsilon,
        "noise_schedule": arguments.noise_schedule,
        "loss": arguments.loss,
        **degradation_settings(arguments),
        "learning_rate": arguments.learning_rate,
        "precision": resolve_precision(arguments.precision),
        "degrade_on": arguments.degrade_on,
        "steps_per_execution": arguments.steps_per_execution,
        "jit_compile": arguments.jit_compile,
        "seed": arguments.seed,
    }


def _real_pairs(task, source):
    """Whether `source` gives real (degraded, clean) pairs for `task` (no synthetic degradation)."""
    return NATIVE_TASKS.get(source) == task


def degradation_settings(arguments):
    """The degradation flags of `train` as config.json records them: the value in use for the
    task (the flag or its default), None for flags that do not apply. Raises `UsageError` for
    a flag given to a task (or a source of real pairs) it does not apply to."""
    task = _resolve_task(arguments)
    settings = {}
    for key, defaults in DEGRADATION_FLAGS.items():
        value = getattr(arguments, key, None)
        flag = f"--{key.replace('_', '-')}"
        if value is not None and task not in defaults:
            raise UsageError(
                f"{flag} applies to --task {' or '.join(defaults)}, not {task}. Remove it or change --task."
            )
        if value is not None and _real_pairs(task, arguments.source):
            raise UsageError(
                f"--source {arguments.source} gives real {task} pairs, which {flag} does not change. Remove "
                f"it, or train on clean images (e.g. --source builtin) degraded with {flag}."
            )
        if key == "blur_size" and task == "motion_deblurring" and value is not None:
            if isinstance(value, list) or value != int(value) or value < 3 or int(value) % 2 == 0:
                raise UsageError(
                    f"--blur-size for motion_deblurring is the size of the blur kernel: one odd integer >= 3, "
                    f"e.g. 31. Received {_show(value)}."
                )
            value = int(value)
        if key == "scale" and task in defaults and value is not None and arguments.image_size % value:
            raise UsageError(
                f"--image-size {arguments.image_size} is not a multiple of --scale {value}: pass e.g. "
                f"--image-size {max(value, arguments.image_size - arguments.image_size % value)}."
            )
        if task not in defaults or _real_pairs(task, arguments.source):
            settings[key] = None
        else:
            settings[key] = defaults[task] if value is None else value
    return settings


def _degradation_overrides(task, settings):
    """Constructor arguments of the task's degradation for the settings of
    `degradation_settings` (only those that differ from the defaults: an unchanged command
    trains exactly as before these flags existed)."""
    names = {
        ("noise_level", "denoising"): "sigma",
        ("jpeg_quality", "jpeg"): "quality",
        ("scale", "super_resolution"): "factor",
        ("blur_size", "defocus_deblurring"): "radius",
        ("blur_size", "motion_deblurring"): "kernel_size",
    }
    overrides = {}
    for key, defaults in DEGRADATION_FLAGS.items():
        value = settings.get(key)
        if value is None or task not in defaults or value == defaults[task]:
            continue
        name = names[key, task]
        if isinstance(value, list):
            overrides[f"{name}_range"] = tuple(value)
        else:
            overrides[name] = value
    return overrides


#: Extra Keras callbacks appended to those of `keras-indi train` (for embedding and tests).
TRAIN_CALLBACKS = []

# Settings a resumed run may change.
_RESUMABLE_CHANGES = ("epochs", "steps_per_execution", "jit_compile")
# Settings added after runs were first written, with the value those older runs used.
_EARLIER_DEFAULTS = {"precision": "float32", "degrade_on": "pipeline", "jit_compile": False}


def _backup_epoch(output):
    """Epochs completed according to the run's last valid training checkpoint (0 if none)."""
    from keras_indi.callbacks import TrainingCheckpoint, read_checkpoint_state

    try:
        latest = TrainingCheckpoint.latest(str(output / "backup"))
        return 0 if latest is None else int(read_checkpoint_state(latest)["epoch"])
    except (OSError, ValueError, TypeError, KeyError):
        return 0


def _run_files(output):
    """The entries of the run folder `output`, without the lock of the running process and after
    removing the temporary files that atomic writes killed midway left behind (only ever
    called with the lock held: they cannot be another run's writes in progress)."""
    import re

    if not output.is_dir():
        return []
    existing = []
    for name in sorted(os.listdir(output)):
        if name == TRAIN_LOCK_NAME:
            continue
        if re.match(TRAIN_LEFTOVER, name) and (output / name).is_file():
            (output / name).unlink()
            continue
        existing.append(name)
    return existing


def _prepare_train_output(arguments, config, output):
    """Check what `output` (locked by this process) holds against --resume / --overwrite, and
    clear what a start over or a failed start leaves behind."""
    existing = _run_files(output)
    if existing and _unstarted_run(output, existing):
        # A run that stopped before its first epoch was saved (bad data, a crash in the model
        # setup): nothing to resume or lose, so the same command simply starts it again.
        _say(f"note: {output} holds a run that stopped before its first epoch was saved; starting it again.")
        for name in ("config.json", "history.csv"):
            if (output / name).is_file():
                (output / name).unlink()
        existing = []
    if existing and arguments.overwrite:
        import shutil

        for name in TRAIN_FILES:
            if (output / name).is_file():
                (output / name).unlink()
        for name in TRAIN_FOLDERS:
            if (output / name).is_dir():
                shutil.rmtree(output / name)
    elif existing and arguments.resume:
        saved_path = output / "config.json"
        if not saved_path.is_file():
            if not _backup_epoch(output):
                raise UsageError(
                    f"--output {str(output)!r} is not empty but holds no keras-indi training run "
                    "(config.json is missing), so there is nothing to resume. Choose an empty folder."
                )
            # A run whose config.json was deleted (e.g. after it was damaged, see below).
            _say(
                f"note: {saved_path} is missing: resuming with the settings of this command, which "
                "must be those of the original run. A new config.json is written."
            )
            return output
        try:
            with open(saved_path) as file:
                saved = json.load(file)
            if not isinstance(saved, dict):
                raise ValueError(f"expected a JSON object, found a {type(saved).__name__}")
        except (OSError, ValueError) as error:
            raise UsageError(
                f"{str(saved_path)!r} is damaged ({error}), so the settings of the run in "
                f"{str(output)!r} cannot be checked. Delete that file and run the same command with "
                "--resume to continue the run with this command's settings (they must be the "
                "original ones; a new config.json is written), or pass --overwrite to start over."
            ) from error
        saved = {**_EARLIER_DEFAULTS, **saved}
        for key, defaults in DEGRADATION_FLAGS.items():  # runs written before these flags
            if key not in saved and saved.get("task") == config["task"]:
                saved[key] = None if _real_pairs(config["task"], saved.get("source")) else defaults.get(config["task"])
        changed = [
            f"--{key.replace('_', '-')} {_show(saved.get(key))} -> {_show(config[key])}"
            for key in config
            if key not in _RESUMABLE_CHANGES and saved.get(key) != config[key]
        ]
        if changed:
            hint = ""
            if saved.get("precision") != config["precision"] and arguments.precision == "auto":
                # --precision auto depends on the machine: a run started on a GPU resumed on a CPU.
                hint = (
                    f" --precision auto means {config['precision']} on this machine; pass "
                    f"--precision {saved.get('precision')} to resume with the run's precision."
                )
            raise UsageError(
                f"cannot resume {str(output)!r} with different settings ({'; '.join(changed)}). "
                "Repeat the options of the original command (see its config.json; only --epochs may "
                f"change), or pass --overwrite to start over.{hint}"
            )
    elif existing:
        done = _backup_epoch(output)
        hint = f" (it holds a run trained for {done} epoch(s))" if done else ""
        raise UsageError(
            f"--output {str(output)!r} is not empty{hint}. Pass --resume to continue that run, "
            "--overwrite to start over, or choose another folder."
        )
    return output


def _unstarted_run(output, existing):
    """True when `output` holds only what a run that failed before saving its first epoch
    leaves behind: config.json, a history.csv without rows, and checkpoints/ and backup/
    folders holding nothing but hidden temporary files of unfinished writes."""
    if not set(existing) <= {"config.json", "history.csv", "checkpoints", "backup"}:
        return False
    if "history.csv" in existing and _read_history(output / "history.csv"):
        return False
    for name in ("checkpoints", "backup"):
        folder = output / name
        if folder.exists() and (not folder.is_dir() or any(not entry.startswith(".") for entry in os.listdir(folder))):
            return False
    return all((output / name).is_file() for name in ("config.json", "history.csv") if name in existing)


def _show(value):
    """A setting as it is typed on the command line."""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) or "(none)"
    return "(default)" if value is None else str(value)


def _time_distribution(name, parameter):
    from keras_indi.schedules import MassAtOneTime, PowerTime

    if name == "mass_at_one":
        return MassAtOneTime(1.0 if parameter is None else parameter)
    if name == "power":
        return PowerTime(1.0 if parameter is None else parameter)
    if parameter is not None:
        raise UsageError("--time-parameter only applies to --time-distribution mass_at_one or power.")
    return name


def _read_history_rows(path):
    """The rows of history.csv: ``[{"epoch": int, name: float or None}]`` sorted by epoch; a
    repeated epoch (a re-run one, in files of older versions) keeps its last row."""
    import csv

    if not path.is_file():
        return []
    rows = {}
    with open(path, newline="") as file:
        for row in csv.DictReader(file):
            try:
                epoch = int(row["epoch"])
            except (KeyError, TypeError, ValueError):
                continue
            values = {}
            for key, value in row.items():
                if key is None or key == "epoch":
                    continue
                try:
                    values[key] = float(value)
                except (TypeError, ValueError):
                    values[key] = None
            rows[epoch] = {"epoch": epoch, **values}
    return [rows[epoch] for epoch in sorted(rows)]


def _read_history(path):
    """history.csv as {column: [values]}, one entry per epoch."""
    rows = _read_history_rows(path)
    columns = ["epoch"] + sorted({key for row in rows for key in row} - {"epoch"})
    return {column: [row.get(column) for row in rows] for column in columns} if rows else {}


def keras_file_problem(path):
    """Why the `.keras` file `path` cannot be loaded (truncated or corrupted), else None.

    Checks the zip container and the CRC of every member, which catches the 0-byte, truncated
    and bit-flipped files a kill or a full disk can leave; it does not load the model."""
    import zipfile

    try:
        if os.path.getsize(path) == 0:
            return "it is empty (0 bytes)"
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
        if bad is not None:
            return f"its member {bad!r} is corrupted"
    except zipfile.BadZipFile as error:
        return f"it is not a complete .keras zip file: truncated or corrupted ({error})"
    except (OSError, EOFError, RuntimeError, ValueError) as error:
        return f"it cannot be read ({type(error).__name__}: {error})"
    return None


def _warn_damaged_model_files(output):
    """On a resumed run, warn about each damaged .keras file of OUTPUT (left by a kill or a
    full disk while an older version wrote it in place, or damaged since); returns their names."""
    replaced_when = {
        "checkpoints/last.keras": "when this run ends (from the training state in backup/)",
        "checkpoints/best.keras": "when the validation loss next beats the best of the run; until then use "
        "checkpoints/last.keras",
        "model.keras": "when this run ends",
    }
    damaged = []
    for name, when in replaced_when.items():
        path = output / name
        if path.is_file():
            problem = keras_file_problem(path)
            if problem is not None:
                damaged.append(name)
                print(
                    f"keras-indi train: warning: {path} is damaged: {problem}. It cannot be loaded; "
                    f"training resumes from {output / 'backup'} and the file is rewritten {when}.",
                    file=sys.stderr,
                    flush=True,
                )
    return damaged


# -- channels of image files ------------------------------------------------------------------
def _image_channels(image):
    """``(color, alpha)`` of an opened PIL image, without decoding it: color is "gray" or "rgb"."""
    mode = image.mode
    if mode in ("P", "PA"):
        return "rgb", mode == "PA" or "transparency" in image.info
    if mode in ("1", "L", "LA", "La", "I", "F") or mode.startswith("I;"):
        return "gray", mode in ("LA", "La")
    return "rgb", mode in ("RGBA", "RGBa")


def _channel_notices(kinds, channels, what):
    """Notes on how images of the given ``{path: (color, alpha)}`` are converted to `channels`
    channels: one line per kind of conversion, naming one file (`what`: where they come from)."""
    notices = []
    gray = [path for path, (color, _) in kinds.items() if color == "gray"]
    rgb = [path for path, (color, _) in kinds.items() if color == "rgb"]
    alpha = [path for path, (_, has_alpha) in kinds.items() if has_alpha]

    def count(paths):
        total = len(kinds)
        number = "the" if len(paths) == total == 1 else ("all" if len(paths) == total else f"{len(paths)} of {total}")
        example = f" (e.g. {paths[0]})" if len(paths) > 1 else f" ({paths[0]})"
        return f"{number} image{'s' if total > 1 else ''} of {what}{example}"

    if channels == 3 and gray:
        notices.append(
            f"note: {count(gray)} {'is' if len(gray) == 1 else 'are'} grayscale: converted to RGB (the gray "
            "value in all 3 channels) for a 3-channel model. For grayscale images, a model trained with "
            "--channels 1 fits better."
        )
    if channels == 1 and rgb:
        notices.append(
            f"note: {count(rgb)} {'is' if len(rgb) == 1 else 'are'} in color: converted to grayscale (luma) "
            "for a 1-channel model; the colors are lost. Use a model trained with --channels 3 to keep them."
        )
    if alpha:
        notices.append(
            f"note: {count(alpha)} {'has' if len(alpha) == 1 else 'have'} an alpha channel (transparency): it "
            "is dropped, only the color channels are used."
        )
    return notices


def _check_image_files(folder, channels):
    """Open every image file of a --source folder and check its data (PNG chunk CRCs and
    the like) without decoding it: a corrupt file is named in seconds. Prints a note for each
    conversion to `channels` channels (grayscale to RGB, RGB to grayscale, alpha dropped).
    Returns the number of image files."""
    from PIL import Image

    from keras_indi.datasets.image_io import list_image_files

    kinds = {}
    for path in list_image_files(folder, argument="--source", recursive=True):
        try:
            with Image.open(path) as image:
                kinds[path] = _image_channels(image)
                image.verify()
        except Exception as error:  # PIL raises many types for damaged files
            raise UsageError(
                f"the image file {str(path)!r} in --source is corrupt or not an image "
                f"({type(error).__name__}: {error}). Remove or replace it, then run the same command again."
            ) from error
    for notice in _channel_notices(kinds, channels, f"--source {folder}"):
        _say(notice)
    return len(kinds)


def _folder_source(arguments):
    """The --source folder, or None for the named sources and tfds:NAME."""
    source = _check_source(arguments)
    return None if source in NAMED_SOURCES or source.startswith("tfds:") else source


def _check_training_data(arguments, train, validation):
    """Check the training data before the model is built: the first training and validation
    batches read, are finite and are on the models' scale (clean images in [-1, 1]; degraded
    ones may exceed it, as noise does)."""
    from keras_indi.utils.validation import check_finite_and_range

    hint = "Check the --source data (keras-indi scales image files to [-1, 1])."
    for name, dataset in (("training", train), ("validation", validation)):
        if dataset is None:
            continue
        batch = dataset[0]
        degraded, clean = batch if isinstance(batch, tuple) else (None, batch)
        check_finite_and_range(clean, f"the first {name} batch's clean images", MODEL_VALUE_RANGE, disable_hint=hint)
        if degraded is not None:
            check_finite_and_range(
                degraded, f"the first {name} batch's degraded images", MODEL_VALUE_RANGE, disable_hint=hint, degraded=True
            )


def validation_verdict(model, validation, seed=0):
    """One line comparing the validation PSNR of `model` at 1 step with the PSNR of its
    degraded inputs (both against the clean images): whether the model improves on its input."""
    import numpy as np

    from keras_indi.apps.quickstart import mean_psnr

    batches = [validation[index] for index in range(len(validation))]
    degraded, clean = (np.concatenate([np.asarray(batch[i], "float32") for batch in batches]) for i in (0, 1))
    restored = [model.restore(batch[0], num_steps=1, seed=seed, progress_bar=False) for batch in batches]
    restored_db = mean_psnr(np.concatenate([np.asarray(r, "float32") for r in restored]), clean)
    input_db = mean_psnr(degraded, clean)
    gain = restored_db - input_db
    line = f"Validation PSNR (1 step): model {restored_db:.1f} dB vs degraded input {input_db:.1f} dB ({gain:+.1f} dB)"
    if gain < 0:
        return line + ": still worse than the input. Train longer: raise --epochs and run the same command with --resume."
    return line + "."


class _PlainWarnings:
    """Within a ``with`` block: print each distinct checkpoint warning once, as
    ``keras-indi train: warning: ...`` without the Python source line; other warnings as usual."""

    def __enter__(self):
        import warnings

        from keras_indi.callbacks import CheckpointWarning

        self.context = warnings.catch_warnings()
        self.context.__enter__()
        warnings.simplefilter("always", CheckpointWarning)
        shown = set()
        default = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if not issubclass(category, CheckpointWarning):
                return default(message, category, filename, lineno, file, line)
            if str(message) not in shown:
                shown.add(str(message))
                print(f"keras-indi train: warning: {message}", file=sys.stderr, flush=True)

        warnings.showwarning = show
        return self

    def __exit__(self, *exception):
        return self.context.__exit__(*exception)


class _TerminateLikeInterrupt:
    """Within a ``with`` block (in the main thread): SIGTERM raises `Terminated`."""

    def __enter__(self):
        import signal
        import threading

        self.previous = None
        if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGTERM"):

            def terminate(number, frame):
                raise Terminated()

            self.previous = signal.signal(signal.SIGTERM, terminate)
        return self

    def __exit__(self, *exception):
        if self.previous is not None:
            import signal

            signal.signal(signal.SIGTERM, self.previous)
        return False


def _run_train(arguments, parser):
    """`keras-indi train`: check the options and the image files, lock OUTPUT (one run at a
    time), prepare it (--resume, --overwrite, a failed start) and train (`_train`)."""
    if not arguments.widths:
        parser.error("--widths needs at least one value, e.g. --widths 32,64,128")
    if any(level >= len(arguments.widths) for level in arguments.attention_levels):
        parser.error(
            f"--attention-levels must be between 0 and {len(arguments.widths) - 1} "
            f"(there are {len(arguments.widths)} levels in --widths)"
        )
    folder = _folder_source(arguments)
    output = pathlib.Path(arguments.output).expanduser()
    if output.exists() and not output.is_dir():
        raise UsageError(f"--output {str(output)!r} is a file; pass a folder for the run.")
    if folder is not None:
        # Every image file opens (a corrupt one is named in seconds), and its channels.
        count = _check_image_files(folder, arguments.channels)
        if count == 1 and arguments.validation_samples is None:
            _say(f"note: --source {folder} holds a single image, so none is left to hold out for validation: "
                 "training on it without validation (--validation-samples 0).")
            arguments.validation_samples = 0
        elif count == 1 and arguments.validation_samples:
            raise UsageError(
                f"--source {folder} holds a single image, so none is left to hold out for "
                f"--validation-samples {arguments.validation_samples}. Pass --validation-samples 0 to train "
                "on it without validation, or add images."
            )
    config = train_config(arguments)
    time_distribution = _time_distribution(arguments.time_distribution, arguments.time_parameter)
    from keras_indi.utils.folder_lock import FolderInUseError, FolderLock

    try:
        lock = FolderLock(output, purpose="keras-indi train").acquire()
    except FolderInUseError as error:
        raise UsageError(
            f"--output {error} To continue that run later, run the same command with --resume once it has stopped."
        ) from None
    try:
        with _TerminateLikeInterrupt(), _PlainWarnings():
            _prepare_train_output(arguments, config, output)
            arguments.train_output = output  # for the resume hint when the run stops
            return _train(arguments, config, time_distribution, output)
    finally:
        lock.release()


def _train(arguments, config, time_distribution, output):
    """The training run of `keras-indi train` in the locked, prepared folder `output`."""
    verbose = 2 if arguments.quiet else "auto"
    task = config["task"]

    import keras

    import keras_indi
    from keras_indi.models.indi_model import InDIModel
    from keras_indi.networks.unet import TimeConditionalUNet
    from keras_indi.callbacks import (
        AtomicHistoryLogger,
        AtomicModelCheckpoint,
        NonFiniteLossGuard,
        TrainingCheckpoint,
        save_model_atomically,
        write_json_atomically,
    )
    from keras_indi.schedules import BrownianNoise, ConstantNoise
    from keras_indi.utils.precision import loss_scaled_optimizer

    # The data first: a bad image file or a wrong scale is reported in seconds, before the
    # model setup, and before anything is written to OUTPUT.
    from keras_indi.degradations import get_task_degradation

    overrides = _degradation_overrides(task, config)  # --noise-level, --jpeg-quality, ...
    no_validation = arguments.validation_samples == 0
    train, validation = _build_datasets(
        arguments,
        task,
        steps_per_epoch=arguments.steps_per_epoch,
        validation_samples=None if no_validation else arguments.validation_samples,
        validation_fraction=0.0 if no_validation else 0.1,
        degrade_on=arguments.degrade_on,
        degradation=get_task_degradation(task, seed=arguments.seed, **overrides) if overrides else None,
    )
    _check_training_data(arguments, train, validation)
    (output / "checkpoints").mkdir(parents=True, exist_ok=True)
    write_json_atomically(
        output / "config.json",
        {
            **config,
            "backend": keras.backend.backend(),
            "keras_version": keras.__version__,
            "keras_indi_version": keras_indi.__version__,
        },
    )
    damaged = _warn_damaged_model_files(output)
    degradation = None
    if arguments.degrade_on == "model":
        # The training batches are clean crops: the model degrades them in its compiled step.
        degradation = get_task_degradation(task, seed=arguments.seed, **overrides)
    keras.utils.set_random_seed(arguments.seed)
    network = TimeConditionalUNet(
        widths=arguments.widths,
        blocks_per_level=arguments.blocks_per_level,
        attention_levels=arguments.attention_levels,
        in_channels=arguments.channels,
        dropout=arguments.dropout,
        dtype=config["precision"],
    )
    schedule = (BrownianNoise if arguments.noise_schedule == "brownian" else ConstantNoise)(arguments.noise_epsilon)
    model = InDIModel(
        network,
        time_distribution=time_distribution,
        noise_schedule=schedule,
        loss=arguments.loss,
        value_range=MODEL_VALUE_RANGE,  # checks the data scale; noisy inputs may exceed it
        degradation=degradation,
        seed=arguments.seed,
    )
    optimizer = keras.optimizers.Adam(arguments.learning_rate)
    model.compile(
        optimizer=loss_scaled_optimizer(optimizer, config["precision"]),  # loss scaling: mixed_float16 only
        steps_per_execution=arguments.steps_per_execution,
        # "auto" keeps Keras' choice (compiled on JAX and TensorFlow, eager on torch).
        jit_compile=True if arguments.jit_compile else "auto",
    )
    size = arguments.image_size
    model(keras.ops.zeros((1, size, size, arguments.channels)))  # build before restoring a checkpoint
    model.optimizer.build(model.trainable_variables)  # else TensorFlow traces the first step twice

    done = _backup_epoch(output)
    if done and hasattr(train, "sampler"):
        train.sampler.epoch = done  # the crops of epoch `done`, as in an uninterrupted run
    # The history rows of the epochs the backup holds; rows of later epochs (written before a
    # kill stopped their checkpoint) are dropped: those epochs are trained again.
    history_path, history_json_path = output / "history.csv", output / "history.json"
    previous = _read_history_rows(history_path)
    kept = [row for row in previous if row["epoch"] < done]
    history_logger = AtomicHistoryLogger(history_path, history_json_path, rows=kept)
    if len(kept) != len(previous) or (kept and not history_json_path.is_file()):
        history_logger.write()
    best = [row["val_loss"] for row in kept if row.get("val_loss") is not None and math.isfinite(row["val_loss"])]
    guard = NonFiniteLossGuard()
    callbacks = [
        # The rows of an epoch first, then its checkpoints: a kill between them loses no row.
        history_logger,
        # .keras files are written to a temporary file and renamed into place (never half-written).
        AtomicModelCheckpoint(output / "checkpoints" / "last.keras"),
        # The full training state (weights, optimizer and its EMA, the seed generators that draw
        # t and the noise), written atomically: a resumed run continues the same loss curve.
        TrainingCheckpoint(str(output / "backup"), keep_last=2, keep_best=0, monitor="loss"),
        guard,
    ]
    if validation is not None:
        callbacks.insert(
            2,
            AtomicModelCheckpoint(
                output / "checkpoints" / "best.keras",
                monitor="val_loss",
                save_best_only=True,
                initial_value_threshold=min(best) if best else None,
            ),
        )
    callbacks += list(TRAIN_CALLBACKS)
    if done >= arguments.epochs:
        _say(f"{output} already holds {done} trained epoch(s) (--epochs {arguments.epochs}): nothing to train. "
             "Raise --epochs to continue training.")
    elif done:
        _say(f"Resuming {output} after epoch {done} of {arguments.epochs}.")
    else:
        _say(
            f"Training InDI ({task}, source {arguments.source}, {arguments.image_size}px crops, U-Net widths "
            f"{list(arguments.widths)}, {config['precision']}) for {arguments.epochs} epoch(s) on backend "
            f"{keras.backend.backend()}; writing to {output}."
        )
    start = time.time()
    # shuffle=False: the pipeline already draws a new seeded order every epoch; Keras' own
    # shuffle would use the global NumPy state, which a resumed process does not share.
    model.fit(
        train, validation_data=validation, epochs=arguments.epochs, callbacks=callbacks, verbose=verbose, shuffle=False
    )
    if guard.stopped_at is not None:
        # Do not write a broken model.keras; the last good epoch stays resumable.
        raise UsageError(
            f"training stopped: the loss became {guard.stopped_at['loss']} in epoch {guard.stopped_at['epoch']} "
            f"(see the causes above). Fix the cause (e.g. a lower --learning-rate), then run the same "
            f"command with --resume to continue from the last good epoch, or --overwrite to start over."
        )
    if "checkpoints/last.keras" in damaged and keras_file_problem(output / "checkpoints" / "last.keras"):
        save_model_atomically(model, output / "checkpoints" / "last.keras")  # the last epoch's model
    save_model_atomically(model, output / "model.keras")
    history = _read_history(history_path)
    _say(
        f"Done in {time.time() - start:.1f} s: {output / 'model.keras'} (last epoch loss "
        f"{(history.get('loss') or [float('nan')])[-1]:.4f}). Try:\n"
        f"  keras-indi restore {output / 'model.keras'} IMAGE --output-dir restored --steps 10\n"
        f"  keras-indi evaluate {output / 'model.keras'} --task {task} --source {arguments.source} "
        f"--image-size {arguments.image_size} --seed {arguments.seed} --output {output / 'evaluation'}"
    )
    if validation is not None and task != "generation":
        _say(validation_verdict(model, validation, seed=arguments.seed))
    elif validation is None:
        _say("No validation PSNR: the run has no validation images (--validation-samples 0).")
    return model


# -- restore ----------------------------------------------------------------------------------
def _same_path(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def collect_inputs(inputs):
    """Expand files and folders into a sorted list of image files; clear errors."""
    from keras_indi.datasets.image_io import IMAGE_EXTENSIONS

    files, folders = [], []
    for name in inputs:
        path = pathlib.Path(name).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise UsageError(
                    f"input folder {str(path)!r} contains no image files (looked for "
                    f"{', '.join(IMAGE_EXTENSIONS)}; sub-folders are not searched)."
                )
            files += found
            folders.append(path)
        elif path.is_file():
            files.append(path)
            folders.append(path.parent)
        else:
            raise UsageError(f"input {name!r} does not exist. Check the path.")
    unique = []
    for path in files:
        if not any(_same_path(path, seen) for seen in unique):
            unique.append(path)
    return unique, folders


def plan_outputs(files, input_folders, output_dir, suffix=None, allow_input_folder=False, overwrite=False):
    """Map each input file to its output PNG; refuse anything that could destroy an input."""
    output_dir = pathlib.Path(output_dir).expanduser()
    if output_dir.exists() and not output_dir.is_dir():
        raise UsageError(f"--output-dir {str(output_dir)!r} is a file; pass a folder.")
    into_input_folder = output_dir.is_dir() and any(_same_path(output_dir, folder) for folder in input_folders)
    if into_input_folder and not allow_input_folder:
        raise UsageError(
            f"--output-dir {str(output_dir)!r} holds input images: restored files would be mixed with "
            "(or replace) the originals. Choose another --output-dir, or pass --allow-input-folder "
            "(outputs then get the suffix '_restored', see --suffix)."
        )
    if suffix is None:
        suffix = "_restored" if into_input_folder else ""
    plan, seen = [], {}
    for path in files:
        target = output_dir / f"{path.stem}{suffix}.png"
        key = os.path.normcase(str(target))
        if key in seen:
            raise UsageError(
                f"inputs {str(seen[key])!r} and {str(path)!r} would both be written to {str(target)!r}. "
                "Rename one of them or restore them into different folders."
            )
        seen[key] = path
        if any(_same_path(target, source) for source in files):
            raise UsageError(
                f"the output {str(target)!r} would overwrite an input image. Choose another --output-dir "
                "or --suffix."
            )
        plan.append((path, target))
    existing = [str(target) for _, target in plan if target.exists()]
    if existing and not overwrite:
        shown = ", ".join(repr(p) for p in existing[:3]) + (f" and {len(existing) - 3} more" if len(existing) > 3 else "")
        raise UsageError(f"output file(s) already exist: {shown}. Pass --overwrite to replace them, or choose another --output-dir.")
    return plan


def save_png(image, path, value_range=(-1.0, 1.0)):
    """Write a float image in `value_range` as an 8-bit PNG (atomically: no partial files)."""
    import numpy as np
    from PIL import Image

    from keras_indi.utils.files import replace_atomically

    low, high = value_range
    unit = np.clip((np.asarray(image, "float32") - low) / (high - low), 0.0, 1.0)
    pixels = np.round(unit * 255.0).astype("uint8")
    if pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    replace_atomically(path, lambda temporary: Image.fromarray(pixels).save(temporary, format="PNG"))


def _input_channel_notices(paths, channels):
    """The notes `_channel_notices` prints for the input files of `restore`."""
    from PIL import Image

    kinds = {}
    for path in paths:
        with Image.open(path) as image:
            kinds[path] = _image_channels(image)
    notices = _channel_notices(kinds, channels, "the inputs")
    if notices:
        notices[-1] += f" The restored images have {channels} channel{'s' if channels > 1 else ''}."
    return notices


def _restore_notices(arguments, plan, channels, regression):
    for notice in _input_channel_notices([path for path, _ in plan], channels):
        _say(notice)
    if regression and arguments.steps != 1:
        _say(f"note: {arguments.model} was trained as one-step regression; --steps {arguments.steps} "
             "re-applies it, which usually helps little. --steps 1 is its intended use.")


def _restored_line(index, total, path, target, image, tiled, start):
    height, width = image.shape[:2]
    return (f"[{index + 1}/{total}] {path} -> {target} ({width}x{height}"
            f"{', tiled' if tiled else ''}, {time.time() - start:.1f} s)")


def _restore_with_saved_programs(arguments, plan):
    """Restore what the saved programs of an earlier run can (JAX, no Keras import: see
    `keras_indi.backend.restore_programs`); returns the part of `plan` left to do, and whether
    the notices about the inputs were printed."""
    from keras_indi.backend.restore_programs import saved_restorer

    restorer = saved_restorer(arguments.model)
    if restorer is None:
        return plan, False
    from keras_indi.datasets.image_io import load_image

    _restore_notices(arguments, plan, restorer.channels, restorer.regression)
    left = []
    for index, (path, target) in enumerate(plan):
        start = time.time()
        image = load_image(path, channels=restorer.channels)
        if arguments.tile_size is not None and max(image.shape[:2]) > arguments.tile_size:
            left.append((path, target))
            continue
        restored = restorer.restore(image, arguments.steps, arguments.seed, arguments.t_start)
        if restored is None:
            left.append((path, target))
            continue
        save_png(restored, target)
        _say(_restored_line(index, len(plan), path, target, image, False, start))
    return left, True


def _run_restore(arguments, parser):
    if arguments.suffix is not None and any(sep in arguments.suffix for sep in ("/", "\\", os.sep)):
        parser.error(f"--suffix {arguments.suffix!r} must not contain a path separator")
    if arguments.tile_size is not None and arguments.overlap >= arguments.tile_size:
        parser.error(f"--overlap ({arguments.overlap}) must be smaller than --tile-size ({arguments.tile_size}); e.g. --tile-size 256 --overlap 32")
    files, folders = collect_inputs(arguments.inputs)
    plan = plan_outputs(
        files, folders, arguments.output_dir, arguments.suffix, arguments.allow_input_folder, arguments.overwrite
    )
    from keras_indi.datasets.image_io import load_image

    for path, _ in plan:  # every input must be readable before anything is written
        load_image(path)
    check_model_file(arguments.model)
    os.makedirs(pathlib.Path(arguments.output_dir).expanduser(), exist_ok=True)
    left, notices_shown = _restore_with_saved_programs(arguments, plan)
    if left:
        _restore_with_keras(arguments, plan, left, notices_shown)
    _say(f"Restored {len(plan)} image(s) into {arguments.output_dir} with {arguments.steps} step(s).")


def _restore_with_keras(arguments, plan, left, notices_shown):
    """Restore the images of `left` (a part of `plan`) with the model loaded by Keras."""
    from keras_indi.backend.restore_programs import file_digest, restore_and_save
    from keras_indi.datasets.image_io import load_image
    from keras_indi.samplers.tiling import choose_tiling, restore_tiled

    digest = file_digest(arguments.model)  # names the weights the saved programs keep
    model = load_indi_model(arguments.model)
    if file_digest(arguments.model) != digest:  # replaced while it was loading: save nothing
        digest = None
    channels = _model_channels(model, arguments.model)
    regression = _is_regression(model)
    if not notices_shown:
        _restore_notices(arguments, plan, channels, regression)
    numbers = {target: index for index, (_, target) in enumerate(plan)}
    for path, target in left:
        start = time.time()
        image = load_image(path, channels=channels)
        height, width = image.shape[:2]
        tile_size, tile_batch_size = arguments.tile_size, arguments.tile_batch_size
        if tile_size is None:  # tiles only when the whole image would not fit in memory
            tile_size, tile_batch_size = choose_tiling(model.network, image.shape, arguments.overlap) or (None, tile_batch_size)
        tiled = tile_size is not None and max(height, width) > tile_size
        if tiled:
            restored = restore_tiled(
                model,
                image,
                tile_size=tile_size,
                overlap=arguments.overlap,
                tile_batch_size=tile_batch_size,
                num_steps=arguments.steps,
                seed=arguments.seed,
                t_start=arguments.t_start,
            )
        else:
            # JAX: restored by a compiled program saved for the next run (None elsewhere).
            restored = restore_and_save(
                model, digest, image, arguments.steps, arguments.seed, arguments.t_start, regression
            )
            if restored is None:
                restored = model.restore(
                    image[None], num_steps=arguments.steps, seed=arguments.seed, t_start=arguments.t_start,
                    progress_bar=False,
                )[0]
        save_png(restored, target)
        _say(_restored_line(numbers[target], len(plan), path, target, image, tiled, start))


# -- evaluate ---------------------------------------------------------------------------------
def _parse_baselines(specs):
    baselines = {}
    for spec in specs:
        label, separator, path = spec.partition("=")
        if not separator or not label or not path:
            raise UsageError(f"--baseline {spec!r} must look like LABEL=MODEL.keras, e.g. regression=runs/regression/model.keras.")
        if label in baselines or label == "InDI":
            raise UsageError(f"--baseline label {label!r} is used twice (or is 'InDI', the evaluated model's label).")
        baselines[label] = path
    return baselines


def _run_evaluate(arguments, parser):
    if not arguments.steps:
        parser.error("--steps needs at least one step count, e.g. --steps 1,2,5,10,20")
    if len(set(arguments.steps)) != len(arguments.steps):
        parser.error(f"--steps has duplicate values: {','.join(map(str, arguments.steps))}")
    baseline_paths = _parse_baselines(arguments.baseline)
    _check_source(arguments)
    from keras_indi.apps.quickstart import prepare_output

    output = pathlib.Path(arguments.output).expanduser()
    if output.is_dir() and os.listdir(output) and not arguments.overwrite:
        raise UsageError(
            f"the output folder {str(output)!r} is not empty. Choose another --output or pass --overwrite."
        )
    model = load_indi_model(arguments.model)
    baselines = {label: load_indi_model(path, option=f"--baseline {label}") for label, path in baseline_paths.items()}
    channels = _model_channels(model, arguments.model)
    if channels != arguments.channels:
        raise UsageError(f"the model expects {channels}-channel images: pass --channels {channels}.")
    folder = _folder_source(arguments)
    if folder is not None:
        # Corrupt files named, channel conversions noted.
        if _check_image_files(folder, channels) < 2:
            raise UsageError(
                f"--source {folder} holds a single image. evaluate measures the images that train holds "
                "out for validation (10% of a folder, at least one), so it needs at least 2 images: add "
                "images, or evaluate on another folder of the same kind of images."
            )
    task = _resolve_task(arguments)
    _, validation = _build_datasets(arguments, task, steps_per_epoch=1, validation_samples=arguments.num_images)
    if validation is None:
        raise UsageError(f"--source {arguments.source!r} gave no validation images; it needs at least 2 images.")
    from keras_indi.datasets import take_arrays
    from keras_indi.evaluation import evaluate_tradeoff

    degraded, clean = take_arrays(validation, num_batches=math.ceil(arguments.num_images / arguments.batch_size))
    degraded, clean = degraded[: arguments.num_images], clean[: arguments.num_images]
    _say(
        f"Evaluating {arguments.model} on {degraded.shape[0]} {task} validation crops of "
        f"{arguments.image_size}px at steps {list(arguments.steps)}",
        quiet=arguments.quiet,
    )
    result = evaluate_tradeoff(
        model,
        degraded,
        clean,
        step_counts=arguments.steps,
        seed=arguments.seed,
        batch_size=arguments.batch_size,
        progress_bar=not arguments.quiet,
        baselines=baselines,
        method_name="InDI",
    )
    prepare_output(output, overwrite=True)
    paths = result.save(output, overwrite=arguments.overwrite, prefix="tradeoff")
    with open(output / "evaluation.json", "w") as file:
        json.dump(
            {
                "model": os.path.abspath(arguments.model),
                "baselines": {label: os.path.abspath(path) for label, path in baseline_paths.items()},
                "task": task,
                "source": arguments.source,
                "data_dir": arguments.data_dir,
                "image_size": arguments.image_size,
                "num_images": int(degraded.shape[0]),
                "seed": arguments.seed,
                "steps": list(arguments.steps),
            },
            file,
            indent=2,
        )
    print(result.to_markdown())
    _say(f"Wrote {', '.join(os.path.basename(p) for p in paths.values())} and evaluation.json to {output}.")
    return result


if __name__ == "__main__":
    sys.exit(main())
