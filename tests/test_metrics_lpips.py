"""Tests of keras_indi.metrics.LPIPS with stand-in random weights (the real ones cannot be
downloaded here), and of the PyTorch weight conversion against a PyTorch re-implementation
of the official LPIPS forward pass."""

import importlib.util
import os

import keras
import numpy as np
import pytest

from keras_indi import metrics
from keras_indi.metrics import lpips as lpips_module

HAS_TORCH = importlib.util.find_spec("torch") is not None
BACKEND = keras.backend.backend()
SHAPE = (2, 32, 32, 3)  # one input shape everywhere: eager JAX compiles per shape


def _random_npz(path, net, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for key, shape in metrics.lpips_weight_shapes(net).items():
        if key.endswith(".kernel") and key.startswith("features"):
            fan_in = np.prod(shape[:3])
            arrays[key] = (rng.normal(size=shape) * np.sqrt(2.0 / fan_in)).astype("float32")
        elif key.startswith("lin"):
            arrays[key] = np.abs(rng.normal(size=shape) * 0.1).astype("float32")  # heads are >= 0
        else:
            arrays[key] = (rng.normal(size=shape) * 0.01).astype("float32")
    np.savez(path, **arrays)
    return path


@pytest.fixture(scope="module")
def alex_weights(tmp_path_factory):
    return _random_npz(str(tmp_path_factory.mktemp("lpips") / "alex.npz"), "alex")


@pytest.fixture(scope="module")
def alex(alex_weights):
    return metrics.LPIPS(weights_path=alex_weights, net="alex")


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, SHAPE).astype("float32")
    b = np.clip(a + rng.normal(0, 0.3, SHAPE), -1, 1).astype("float32")
    return a, b


def _np(x):
    return keras.ops.convert_to_numpy(x)


def test_lpips_shapes_identity_symmetry(alex, images):
    a, b = images
    distance = _np(alex(a, b))
    assert distance.shape == (2,) and np.all(distance > 0) and np.all(np.isfinite(distance))
    np.testing.assert_allclose(
        _np(alex(a, a)), np.zeros(2, "float32"), atol=1e-7
    )  # float rounding only
    np.testing.assert_allclose(_np(alex(b, a)), distance, rtol=1e-6)
    np.testing.assert_allclose(_np(alex([a, b])), distance, rtol=1e-6)
    # Grayscale is repeated to RGB; a [0, 1] value range is mapped to [-1, 1].
    gray = _np(alex(a[..., :1], b[..., :1]))
    assert gray.shape == (2,)
    unit = metrics.LPIPS(weights_path=alex.weights_path, net="alex", value_range=(0.0, 1.0))
    np.testing.assert_allclose(_np(unit((a + 1) / 2, (b + 1) / 2)), distance, rtol=1e-5)


def test_lpips_weights_h5_round_trip_and_config(alex, images, tmp_path):
    path = str(tmp_path / "lpips_alex.weights.h5")
    alex.save_weights(path)
    restored = metrics.LPIPS(weights_path=path, net="alex")
    a, b = images
    np.testing.assert_allclose(_np(restored(a, b)), _np(alex(a, b)), rtol=1e-6)
    config = alex.get_config()
    assert config["net"] == "alex" and config["weights_path"] == alex.weights_path
    assert not alex.trainable_weights


def test_lpips_errors(alex, alex_weights, tmp_path, images):
    with pytest.raises(ValueError, match="required"):
        metrics.LPIPS()
    with pytest.raises(ValueError, match="not found"):
        metrics.LPIPS(weights_path=str(tmp_path / "missing.npz"), net="alex")
    torch_file = tmp_path / "alex.pth"
    torch_file.write_bytes(b"not really")
    with pytest.raises(ValueError, match="convert_lpips_torch_weights"):
        metrics.LPIPS(weights_path=str(torch_file), net="alex")
    with pytest.raises(ValueError, match="missing the arrays"):
        metrics.LPIPS(weights_path=alex_weights, net="vgg")
    with pytest.raises(ValueError, match="net"):
        metrics.LPIPS(weights_path=alex_weights, net="squeeze")
    bad = dict(np.load(alex_weights))
    bad["lin0.kernel"] = np.zeros(3, "float32")
    np.savez(tmp_path / "bad.npz", **bad)
    with pytest.raises(ValueError, match="lin0.kernel"):
        metrics.LPIPS(weights_path=str(tmp_path / "bad.npz"), net="alex")
    a, b = images
    with pytest.raises(ValueError, match="same shape"):
        alex(a, b[:1])
    with pytest.raises(ValueError, match="at least 32x32"):
        alex(a[:, :16, :16], b[:, :16, :16])


# -- conversion from PyTorch ---------------------------------------------------------------
_TORCH_LAYOUT = {  # (features index, stride, padding), "|" stage output, "Mk" max pool k / 2
    "alex": [
        (0, 4, 2),
        "|",
        "M3",
        (3, 1, 2),
        "|",
        "M3",
        (6, 1, 1),
        "|",
        (8, 1, 1),
        "|",
        (10, 1, 1),
        "|",
    ],
    "vgg": [
        (0, 1, 1),
        (2, 1, 1),
        "|",
        "M2",
        (5, 1, 1),
        (7, 1, 1),
        "|",
        "M2",
        (10, 1, 1),
        (12, 1, 1),
        (14, 1, 1),
        "|",
        "M2",
        (17, 1, 1),
        (19, 1, 1),
        (21, 1, 1),
        "|",
        "M2",
        (24, 1, 1),
        (26, 1, 1),
        (28, 1, 1),
        "|",
    ],
}


def _torch_state(net, seed=0):
    """A random state dict in the layout of `lpips.LPIPS(net=net).state_dict()`."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    shapes = metrics.lpips_weight_shapes(net)
    convs = [spec for spec in _TORCH_LAYOUT[net] if isinstance(spec, tuple)]
    stage_of, stage = {}, 1
    for spec in _TORCH_LAYOUT[net]:
        if spec == "|":
            stage += 1
        elif isinstance(spec, tuple):
            stage_of[spec[0]] = stage
    state = {
        "scaling_layer.shift": torch.zeros(1, 3, 1, 1),
        "scaling_layer.scale": torch.ones(1, 3, 1, 1),
    }
    for i, (index, _, _) in enumerate(convs):
        kh, kw, cin, cout = shapes[f"features.conv{i}.kernel"]
        std = (2.0 / (kh * kw * cin)) ** 0.5
        state[f"net.slice{stage_of[index]}.{index}.weight"] = (
            torch.randn(cout, cin, kh, kw, generator=generator) * std
        )
        state[f"net.slice{stage_of[index]}.{index}.bias"] = (
            torch.randn(cout, generator=generator) * 0.01
        )
    for k in range(5):
        state[f"lin{k}.model.1.weight"] = (
            torch.rand(1, shapes[f"lin{k}.kernel"][0], 1, 1, generator=generator) * 0.1
        )
    return state


def _torch_lpips(state, net, a, b):
    """The official LPIPS v0.1 forward pass (lpips/lpips.py), written with torch.nn.functional."""
    import torch
    import torch.nn.functional as F

    weights = {}
    for key, value in state.items():
        if key.startswith("net."):
            _, _, index, kind = key.split(".")
            weights[(int(index), kind)] = value
    shift = torch.tensor([-0.030, -0.088, -0.188])[None, :, None, None]
    scale = torch.tensor([0.458, 0.448, 0.450])[None, :, None, None]

    def features(x):
        x = (torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))) - shift) / scale
        outputs = []
        for spec in _TORCH_LAYOUT[net]:
            if spec == "|":
                outputs.append(x)
            elif isinstance(spec, str):
                x = F.max_pool2d(x, int(spec[1]), 2)
            else:
                index, stride, padding = spec
                x = F.relu(
                    F.conv2d(
                        x,
                        weights[(index, "weight")],
                        weights[(index, "bias")],
                        stride=stride,
                        padding=padding,
                    )
                )
        return outputs

    total = 0.0
    with torch.no_grad():
        for k, (fa, fb) in enumerate(zip(features(a), features(b))):
            fa = fa / (fa.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            fb = fb / (fb.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + F.conv2d((fa - fb) ** 2, state[f"lin{k}.model.1.weight"]).mean((2, 3))
    return total[:, 0].numpy()


@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed")
def test_convert_lpips_torch_weights_matches_torch_forward(tmp_path, images):
    import torch

    state = _torch_state("alex")
    torch.save(state, tmp_path / "lpips_alex_full.pth")
    output = metrics.convert_lpips_torch_weights(
        str(tmp_path / "lpips_alex_full.pth"), str(tmp_path / "alex.npz"), net="alex"
    )
    model = metrics.LPIPS(weights_path=output, net="alex")
    a, b = images
    np.testing.assert_allclose(
        _np(model(a, b)), _torch_lpips(state, "alex", a, b), rtol=1e-4, atol=1e-6
    )

    # Heads-only file (weights/v0.1/alex.pth) + torchvision backbone (features.{i}.weight).
    heads = {k: v for k, v in state.items() if k.startswith("lin")}
    backbone = {
        f"features.{k.split('.')[2]}.{k.split('.')[3]}": v
        for k, v in state.items()
        if k.startswith("net.")
    }
    second = metrics.convert_lpips_torch_weights(
        heads, str(tmp_path / "alex2.npz"), net="alex", backbone_weights=backbone
    )
    for key, value in np.load(output).items():
        np.testing.assert_array_equal(np.load(second)[key], value)

    with pytest.raises(ValueError, match="already exists"):
        metrics.convert_lpips_torch_weights(state, output, net="alex")
    with pytest.raises(ValueError, match="backbone"):
        metrics.convert_lpips_torch_weights(heads, str(tmp_path / "alex3.npz"), net="alex")
    with pytest.raises(ValueError, match="'vgg'"):  # AlexNet weights converted as VGG
        metrics.convert_lpips_torch_weights(state, str(tmp_path / "vgg.npz"), net="vgg")


@pytest.mark.slow
@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed")
@pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason="building VGG16 is slow under eager JAX/torch; the same Keras layers run on every backend in the AlexNet tests",
)
def test_lpips_vgg_matches_torch_forward(tmp_path):
    state = _torch_state("vgg", seed=1)
    path = metrics.convert_lpips_torch_weights(state, str(tmp_path / "vgg.npz"), net="vgg")
    model = metrics.LPIPS(weights_path=path, net="vgg")
    rng = np.random.default_rng(1)
    a = rng.uniform(-1, 1, SHAPE).astype("float32")
    b = np.clip(a + rng.normal(0, 0.2, SHAPE), -1, 1).astype("float32")
    np.testing.assert_allclose(
        _np(model(a, b)), _torch_lpips(state, "vgg", a, b), rtol=1e-4, atol=1e-6
    )
    assert os.path.getsize(path) > 50e6  # 14.7 M float32 parameters


def test_lpips_weight_shapes_module_constants():
    shapes = metrics.lpips_weight_shapes("vgg")
    assert shapes["features.conv0.kernel"] == (3, 3, 3, 64)
    assert shapes["features.conv12.kernel"] == (3, 3, 512, 512)
    assert [shapes[f"lin{k}.kernel"][0] for k in range(5)] == list(
        lpips_module._STAGE_CHANNELS["vgg"]
    )
