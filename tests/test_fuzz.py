"""Property-based (hypothesis) tests of the public entry points' input validation.

The property, everywhere: a call either returns a finite result of the right shape, or raises
``ValueError`` whose message names the bad argument (or file). Never another exception type,
never a silently wrong shape, never NaN from finite, valid inputs. Networks are tiny and built
once per module; every example reuses them (building and compiling is the expensive part).
"""

import hashlib
import math
import os
import pathlib
import struct
import tempfile
import zlib

import numpy as np
import pytest
from conftest import BACKEND, FAST
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keras_indi import ConditionalDDPM, InDIModel, degradations
from keras_indi.apps import cli
from keras_indi.datasets.image_io import load_image
from keras_indi.metrics.image_quality import psnr, ssim
from keras_indi.networks import TimeConditionalUNet
from keras_indi.samplers import InDISampler
from keras_indi.samplers.indi_sampler import MAX_STEPS
from keras_indi.samplers.tiling import restore_tiled

# Model-driving properties compile a function per new input shape (JAX: also per step
# count, ~1 s each on CPU): few examples in fast mode.
MODEL_EXAMPLES = (5 if BACKEND == "jax" else 8) if FAST else 40
CHEAP_EXAMPLES = 30 if FAST else 200
FUZZ = settings(deadline=None, max_examples=MODEL_EXAMPLES, suppress_health_check=list(HealthCheck), database=None)
CHEAP = settings(FUZZ, max_examples=CHEAP_EXAMPLES)
CHANNELS = 3


# -- tiny models, built once ----------------------------------------------------------------
@pytest.fixture(scope="module")
def indi_model():
    network = TimeConditionalUNet(widths=(8,), blocks_per_level=1, groups=4, in_channels=CHANNELS)
    model = InDIModel(network, seed=0)
    model.compile(optimizer="adam")
    return model


@pytest.fixture(scope="module")
def ddpm_model():
    network = TimeConditionalUNet(
        widths=(8,), blocks_per_level=1, groups=4, in_channels=2 * CHANNELS, out_channels=CHANNELS
    )
    return ConditionalDDPM(network, num_timesteps=8, seed=0)


# -- random arrays ------------------------------------------------------------------------------
# kinds of arrays; "valid" is a finite float (batch, height, width, 3) batch in [-1, 1].
INVALID_KINDS = (
    "rank", "empty", "channels", "int", "uint8", "bool", "object", "complex",
    "range255", "nan", "inf",
)


@st.composite
def image_arrays(draw, kinds=("valid",) * 3 + INVALID_KINDS, min_size=1, max_size=9, batch_rank=True):
    """``(array, kind)``: a random image batch, valid or broken in one way (`kind`)."""
    kind = draw(st.sampled_from(kinds))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    batch = draw(st.integers(1, 2))
    height = draw(st.sampled_from([min_size, max_size, 5, 7]) | st.integers(min_size, max_size))
    width = draw(st.sampled_from([min_size, max_size, 4, 6]) | st.integers(min_size, max_size))
    channels = CHANNELS
    shape = (batch, height, width, channels) if batch_rank else (height, width, channels)
    if kind == "rank":
        rank = draw(st.sampled_from([r for r in range(7) if r != len(shape)]))
        shape = tuple(draw(st.integers(1, 4)) for _ in range(rank))
    elif kind == "empty":
        axis = draw(st.integers(0, len(shape) - 1))
        shape = shape[:axis] + (0,) + shape[axis + 1 :]
    elif kind == "channels":
        channels = draw(st.sampled_from([1, 2, 4, 5]))
        shape = shape[:-1] + (channels,)
    dtype = draw(st.sampled_from(["float16", "float32", "float64"]))
    array = rng.uniform(-1.0, 1.0, size=shape).astype(dtype)
    if kind == "int":
        array = rng.integers(-1, 2, size=shape).astype(draw(st.sampled_from(["int8", "int32", "int64"])))
    elif kind == "uint8":
        array = rng.integers(0, 256, size=shape).astype("uint8")
    elif kind == "bool":
        array = rng.integers(0, 2, size=shape).astype(bool)
    elif kind == "object":
        array = array.astype(object)
    elif kind == "complex":
        array = (array + 1j * array).astype("complex64")
    elif kind == "range255":
        array = rng.uniform(0.0, 255.0, size=shape).astype(dtype)
        array.flat[rng.integers(array.size)] = 255.0  # clearly [0, 255]: the maximum is there
    elif kind in ("nan", "inf"):
        bad = np.nan if kind == "nan" else draw(st.sampled_from([np.inf, -np.inf]))
        positions = rng.integers(array.size, size=draw(st.integers(1, 3)))
        array.flat[positions] = bad
    return array, kind


def expect(call, kind, names, shape=None):
    """Run `call`: a valid `kind` must give a finite array of `shape`; any other kind must
    raise ValueError mentioning one of `names` (and 255 for [0, 255]-looking data)."""
    if kind == "valid":
        result = np.asarray(call())
        assert result.shape == shape
        assert np.isfinite(result).all(), "NaN/Inf output for finite, valid input"
        return result
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert any(name in message for name in names), f"{kind}: {message!r} names none of {names}"
    if kind == "range255":
        assert "255" in message, message
    return None


# -- models and samplers --------------------------------------------------------------------
@FUZZ
@given(case=image_arrays(), num_steps=st.integers(1, 3))
def test_indi_restore_arrays(indi_model, case, num_steps):
    array, kind = case
    expect(
        lambda: indi_model.restore(array, num_steps=num_steps, seed=0, progress_bar=False),
        kind, ["`degraded`"], array.shape,
    )


@FUZZ
@given(case=image_arrays(kinds=("valid", "rank", "channels", "nan", "range255", "int")), stochastic=st.booleans())
def test_indi_sampler_on_network(indi_model, case, stochastic):
    """A bare network in `InDISampler` (no value range from a model: range goes unchecked)."""
    array, kind = case
    if kind == "range255":
        kind = "valid"  # no value range to check against: a valid (if odd) input
    sampler = InDISampler(indi_model.network, noise_schedule=0.05, progress_bar=False)
    expect(lambda: sampler(array, num_steps=2, seed=1, stochastic=stochastic), kind, ["`degraded`"], array.shape)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.function retracing; other backends compile per shape")
def test_restore_shapes_sharing_a_dimension(indi_model):
    """Regression (found by the fuzzer): TensorFlow retraces the compiled loop with partly
    known shapes, e.g. (None, 1, None, 3), and the network lost the known height inside the
    loop: tf.while_loop raised. Images of one height and several widths must all restore."""
    for width in (2, 3, 5, 7, 4):
        image = np.zeros((1 + width % 2, 1, width, CHANNELS), "float32")
        restored = indi_model.restore(image, num_steps=2, seed=0, progress_bar=False)
        assert restored.shape == image.shape and np.isfinite(restored).all()


BAD_STEPS = [0, -1, -(10**9), 1.5, 2.0, True, False, 10**9, MAX_STEPS + 1, "2", None, math.nan, np.float32(2)]
BAD_T_START = [0, 0.0, -0.5, 1.5, 1.0000001, math.nan, math.inf, -math.inf, True, "1", None, np.array([0.5])]


def steps_and_t_start():
    valid_steps = st.sampled_from([1, 2, np.int64(3), np.int32(2)])
    valid_t_start = st.sampled_from([1.0, 1, 0.5, np.float32(0.25), np.float64(1.0)]) | st.floats(0.01, 1.0)
    steps = st.tuples(valid_steps, st.just(True)) | st.tuples(st.sampled_from(BAD_STEPS), st.just(False))
    t_start = st.tuples(valid_t_start, st.just(True)) | st.tuples(st.sampled_from(BAD_T_START), st.just(False))
    return steps, t_start


@FUZZ
@given(*steps_and_t_start())
def test_indi_restore_steps_and_t_start(indi_model, steps, t_start):
    (num_steps, steps_ok), (t_value, t_ok) = steps, t_start
    image = np.random.default_rng(0).uniform(-1, 1, (1, 5, 7, CHANNELS)).astype("float32")
    names = ([] if steps_ok else ["num_steps"]) + ([] if t_ok else ["t_start"])
    expect(
        lambda: indi_model.restore(image, num_steps=num_steps, t_start=t_value, seed=0, progress_bar=False),
        "valid" if steps_ok and t_ok else "invalid", names, image.shape,
    )


@FUZZ
@given(
    case=image_arrays(kinds=("valid",) * 4 + INVALID_KINDS, max_size=13, batch_rank=False),
    batched=st.booleans(),
    tile=st.sampled_from([1, 4, 5, 8, (4, 6), 0, -3, True, 2.5, (4,), (4, 4, 4)]),
    overlap=st.sampled_from([0, 1, 2, 3, -1, True, 1.5]),
    mode=st.sampled_from(["per_step", "per_tile", "per_pixel"]),
    steps=steps_and_t_start()[0],
)
def test_restore_tiled(indi_model, case, batched, tile, overlap, mode, steps):
    array, kind = case
    num_steps, steps_ok = steps
    if batched:
        array = array[None]
    tile_ok = (
        not isinstance(tile, (bool, float))
        and (isinstance(tile, int) and tile > 0 or isinstance(tile, tuple) and len(tile) == 2)
    )
    overlap_ok = isinstance(overlap, int) and not isinstance(overlap, bool) and overlap >= 0
    if tile_ok and overlap_ok:
        overlap_ok = overlap < min(tile if isinstance(tile, tuple) else (tile,))
    problems = [name for name, ok in (
        ("tile_size", tile_ok), ("overlap", overlap_ok), ("mode", mode != "per_pixel"), ("num_steps", steps_ok)
    ) if not ok]
    if kind != "valid":
        problems.append("`image`")
    if problems and (kind == "valid" or len(problems) > 1):
        kind = "invalid"
    expect(
        lambda: restore_tiled(
            indi_model, array, tile_size=tile, overlap=overlap, mode=mode, tile_batch_size=4,
            num_steps=num_steps, seed=0,
        ),
        kind, problems, array.shape,
    )


@FUZZ
@given(case=image_arrays(), num_steps=st.sampled_from([1, 2, 8, 0, 9, -1, 1.5, True]), method=st.sampled_from(["ddim", "ddpm"]))
def test_ddpm_restore(ddpm_model, case, num_steps, method):
    array, kind = case
    names = ["`degraded`"]
    steps_ok = isinstance(num_steps, int) and not isinstance(num_steps, bool) and 1 <= num_steps <= 8
    if kind == "valid" and not steps_ok:
        kind, names = "invalid", ["num_steps"]
    expect(
        lambda: ddpm_model.restore(array, num_steps=num_steps, method=method, seed=0, progress_bar=False),
        kind, names, array.shape,
    )


FIT_KINDS = ("valid",) * 3 + ("rank", "empty", "channels", "int", "uint8", "range255", "nan", "inf", "complex")


@FUZZ
@given(x_case=image_arrays(kinds=FIT_KINDS), y_kind=st.sampled_from(["same", "same", "shape", "nan", "range255"]))
def test_fit_numpy(indi_model, x_case, y_kind):
    x, kind = x_case
    rng = np.random.default_rng(1)
    y = rng.uniform(-1, 1, x.shape).astype("float32")
    names = ["(x)"]
    if kind == "valid" and y_kind != "same":
        kind = {"shape": "invalid", "nan": "nan", "range255": "range255"}[y_kind]
        names = ["same shape"] if y_kind == "shape" else ["(y)"]
        if y_kind == "shape":
            y = rng.uniform(-1, 1, x.shape[:-2] + (x.shape[-2] + 1, x.shape[-1])).astype("float32")
        elif y_kind == "nan":
            y.flat[0] = np.nan
        else:
            y = rng.uniform(0, 255, x.shape).astype("float32")
            y.flat[0] = 255.0
    if kind == "valid":
        history = indi_model.fit(x, y, epochs=1, batch_size=2, verbose=0)
        assert np.isfinite(history.history["loss"]).all()
        return
    expect(lambda: indi_model.fit(x, y, epochs=1, verbose=0), kind, names)


# -- NumPy-only entry points ----------------------------------------------------------------------
DEGRADATIONS = [
    lambda: degradations.AdditiveGaussianNoise(sigma=0.1, seed=0),
    lambda: degradations.GaussianBlur(sigma=1.0, seed=0),
    lambda: degradations.DefocusBlur(radius=2.0, seed=0),
    lambda: degradations.JPEGCompression(quality=20, seed=0),
    lambda: degradations.BicubicDownsample(factor=2, seed=0),
]


@pytest.mark.backend_agnostic
@CHEAP
@given(
    case=image_arrays(max_size=16, batch_rank=False),
    batched=st.booleans(),
    index=st.integers(0, len(DEGRADATIONS) - 1),
)
def test_degradations(case, batched, index):
    array, kind = case
    degradation = DEGRADATIONS[index]()
    if batched:
        array = array[None]
    if kind == "channels" and (index != 3 or array.shape[-1] == 1) or kind == "rank" and array.ndim in (3, 4):
        kind = "valid"  # only JPEG needs 1 or 3 channels; an image or a batch
    if kind == "valid":
        try:
            degradation(array)
        except ValueError as error:
            # Small images (blur kernels, factor-2 downsampling): a ValueError naming the class.
            assert type(degradation).__name__ in str(error)
            return
    expect(lambda: degradation(array), kind, [type(degradation).__name__, "`clean`"], array.shape)


@pytest.mark.backend_agnostic
@CHEAP
@given(
    case=image_arrays(kinds=("valid",) * 3 + INVALID_KINDS, max_size=16),
    metric=st.sampled_from([psnr, ssim]),
    single=st.booleans(),
    mismatch=st.booleans(),
    same=st.booleans(),
)
def test_psnr_ssim(case, metric, single, mismatch, same):
    reference, kind = case
    if single and reference.ndim == 4 and reference.shape[0] == 1:
        reference = reference[0]
    rng = np.random.default_rng(0)
    if same or kind not in ("valid", "channels", "rank"):
        estimate = reference.copy()
    else:
        estimate = np.clip(reference + rng.uniform(0.01, 0.1, reference.shape), -1, 1).astype(reference.dtype)
    names = ["`reference`", "`estimate`"]
    if kind == "valid" and mismatch:
        estimate = estimate[..., :1, :]
        if estimate.shape == reference.shape:
            estimate = estimate[..., :0, :]
        kind, names = "invalid", ["same shape", "`estimate`"]
    if kind == "channels" or kind == "rank" and reference.ndim in (3, 4):
        kind = "valid"  # metrics take any channel count, one image or a batch
    small = reference.ndim in (3, 4) and min(reference.shape[-3:-1]) < 11
    if kind == "valid" and metric is ssim and small:
        kind, names = "invalid", ["11x11"]
    if kind == "valid":
        values = np.asarray(metric(reference, estimate))
        assert values.shape == (() if reference.ndim == 3 else (reference.shape[0],))
        assert not np.isnan(values).any()
        if not same:
            assert np.isfinite(values).all()
        return
    expect(lambda: metric(reference, estimate), kind, names)


# -- image files ----------------------------------------------------------------------------------
def png_bytes(width, height, bit_depth, color_type, data=None):
    """A PNG file from raw scanlines (or a header only, when `data` is None)."""

    def chunk(tag, payload):
        return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    body = b"" if data is None else chunk(b"IDAT", zlib.compress(data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + body + chunk(b"IEND", b"")


def image_file_bytes(kind, rng):
    """Bytes of an image file of `kind`, and whether it is a valid image."""
    import io

    from PIL import Image

    def save(image, fmt="PNG"):
        buffer = io.BytesIO()
        image.save(buffer, format=fmt)
        return buffer.getvalue()

    height, width = int(rng.integers(1, 9)), int(rng.integers(1, 9))
    rgb = rng.integers(0, 256, (height, width, 3)).astype("uint8")
    if kind == "rgb":
        return save(Image.fromarray(rgb)), True
    if kind == "jpeg":
        return save(Image.fromarray(rgb), "JPEG"), True
    if kind == "gray":
        return save(Image.fromarray(rgb[..., 0])), True
    if kind == "rgba":
        return save(Image.fromarray(np.dstack([rgb, rgb[..., :1]]), "RGBA")), True
    if kind == "palette":
        return save(Image.fromarray(rgb).convert("P")), True
    if kind == "gray16":
        return save(Image.fromarray(rng.integers(0, 65536, (height, width)).astype("uint16"))), True
    if kind == "rgb16":
        rows = rng.integers(0, 65536, (height, width * 3)).astype(">u2").tobytes()
        data = b"".join(b"\x00" + rows[r * width * 6 : (r + 1) * width * 6] for r in range(height))
        return png_bytes(width, height, 16, 2, data), True
    if kind == "empty":
        return b"", False
    if kind == "random":
        return rng.bytes(int(rng.integers(1, 200))), False
    if kind == "huge":
        return png_bytes(200_000, 200_000, 8, 2), False
    if kind in ("truncated_png", "truncated_jpeg"):
        full = save(Image.fromarray(rng.integers(0, 256, (32, 32, 3)).astype("uint8")), "PNG" if "png" in kind else "JPEG")
        return full[: int(rng.integers(1, len(full) - 1))], None  # maybe still decodable
    raise AssertionError(kind)


FILE_KINDS = ("rgb", "jpeg", "gray", "rgba", "palette", "gray16", "rgb16", "empty", "random", "huge", "truncated_png", "truncated_jpeg")


@pytest.mark.backend_agnostic
@CHEAP
@given(kind=st.sampled_from(FILE_KINDS), seed=st.integers(0, 2**32 - 1), channels=st.sampled_from([1, 3]))
def test_load_image_files(kind, seed, channels):
    rng = np.random.default_rng(seed)
    data, valid = image_file_bytes(kind, rng)
    suffix = ".jpg" if "jpeg" in kind else ".png"
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, f"image_{kind}{suffix}")
        with open(path, "wb") as file:
            file.write(data)
        try:
            image = load_image(path, channels=channels)
        except ValueError as error:
            assert valid is not True, f"valid {kind} file refused: {error}"
            assert path in str(error) or repr(path) in str(error), str(error)
            return
        assert valid is not False, f"{kind} file accepted"
        assert image.dtype == np.float32 and image.ndim == 3 and image.shape[-1] == channels
        assert np.isfinite(image).all() and image.min() >= -1.0 and image.max() <= 1.0


# -- the restore CLI's file planning ------------------------------------------------------------
def tree_hashes(root):
    hashes = {}
    for path in sorted(pathlib.Path(root).rglob("*")):
        if path.is_file() and not path.is_symlink():
            hashes[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


@st.composite
def folder_layouts(draw):
    """Files for two input folders (`a`, `b`, with `a/nested`), stems shared across extensions."""
    stems = st.sampled_from(["x", "y", "x_restored", "photo", "Photo"])
    extensions = st.sampled_from([".png", ".jpg", ".PNG", ".jpeg", ".txt"])
    folders = st.sampled_from(["a", "b", "a/nested", "out"])
    files = draw(st.lists(st.tuples(folders, stems, extensions), min_size=1, max_size=8, unique=True))
    inputs = draw(st.lists(st.sampled_from(["a", "b", "a/x.png", "b/y.jpg", "a/nested"]), min_size=1, max_size=3))
    output = draw(st.sampled_from(["a", "b", "out", "a/nested", "new", "a/new", "./a", "a/../b", "link_to_a"]))
    suffix = draw(st.sampled_from([None, "", "_restored", "_out"]))
    return files, inputs, output, suffix, draw(st.booleans()), draw(st.booleans())


@pytest.mark.backend_agnostic
@CHEAP
@given(layout=folder_layouts())
def test_restore_cli_never_plans_onto_inputs(layout):
    files, inputs, output, suffix, allow_input_folder, overwrite = layout
    with tempfile.TemporaryDirectory() as root:
        root_path = pathlib.Path(root)
        for folder, stem, extension in files:
            (root_path / folder).mkdir(parents=True, exist_ok=True)
            (root_path / folder / f"{stem}{extension}").write_bytes(f"{folder}/{stem}{extension}".encode())
        (root_path / "a").mkdir(exist_ok=True)
        os.symlink(root_path / "a", root_path / "link_to_a")
        before = tree_hashes(root)
        try:
            collected, input_folders = cli.collect_inputs([str(root_path / name) for name in inputs])
        except ValueError:
            assert tree_hashes(root) == before
            return
        input_files = {os.path.realpath(p) for p in collected}
        output_dir = root_path / output
        is_input_folder = output_dir.is_dir() and any(
            os.path.realpath(output_dir) == os.path.realpath(f) for f in input_folders
        )
        try:
            plan = cli.plan_outputs(collected, input_folders, output_dir, suffix, allow_input_folder, overwrite)
        except ValueError as error:
            assert "--" in str(error) or "input" in str(error), str(error)
            assert tree_hashes(root) == before
            return
        assert not is_input_folder or allow_input_folder, "wrote into an input folder without permission"
        targets = [os.path.realpath(target) for _, target in plan]
        assert len(set(targets)) == len(targets), "two inputs planned onto one output"
        assert not input_files & set(targets), "planned to overwrite an input file"
        assert overwrite or not any(os.path.exists(t) for t in targets), "existing output without --overwrite"
        assert sorted(os.path.realpath(source) for source, _ in plan) == sorted(input_files)
        # Carry the plan out like `keras-indi restore` does: inputs stay byte-identical.
        os.makedirs(output_dir, exist_ok=True)
        for _, target in plan:
            cli.save_png(np.zeros((2, 2, 3), "float32"), target)
        after = tree_hashes(root)
        for path in input_files:
            assert after[path] == before[path], f"input {path} changed"
