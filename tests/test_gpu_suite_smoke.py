"""The GPU suite's pieces that can be checked without a GPU (benchmarks/gpu_suite.py).

The PyTorch twin must compute the same function as TimeConditionalUNet (same weights -> same
output, same parameter count) and the counted FLOPs must match the convolutions it runs.
"""

import os
import sys

import keras
import numpy as np
import pytest

torch = pytest.importorskip("torch")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))

import gpu_suite
from torch_twin import TorchTimeConditionalUNet, count_parameters, load_keras_weights

from keras_indi.networks import TimeConditionalUNet

pytestmark = pytest.mark.slow


def test_twin_matches_keras_network():
    if keras.backend.backend() == "jax":
        pytest.skip("the eager U-Net build takes ~15 s on JAX/CPU; the TensorFlow and torch passes cover it")
    widths, blocks = (8, 16, 16), 2
    network = TimeConditionalUNet(widths=widths, blocks_per_level=blocks)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (2, 20, 12, 3)).astype("float32")  # padded to a multiple inside
    t = np.array([0.2, 0.8], "float32")
    network([x, t])
    network.set_weights([0.05 * rng.standard_normal(v.shape).astype("float32") for v in network.weights])
    expected = keras.ops.convert_to_numpy(network([x, t]))
    twin = TorchTimeConditionalUNet(widths, blocks)
    load_keras_weights(twin, {v.path: keras.ops.convert_to_numpy(v) for v in network.weights})
    assert count_parameters(twin) == network.count_params()
    with torch.no_grad():
        output = twin(torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(t)).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(output, expected, atol=1e-5)


def test_counted_flops_match_twin_convolutions():
    widths, blocks, size = (8, 16, 32), 2, 24
    twin = TorchTimeConditionalUNet(widths, blocks)
    counted = []

    def hook(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            kh, kw = module.kernel_size
            counted.append(2 * output.numel() * module.in_channels * kh * kw)
        elif isinstance(module, torch.nn.Linear):
            counted.append(2 * output.numel() * module.in_features)

    for module in twin.modules():
        module.register_forward_hook(hook)
    with torch.no_grad():
        twin(torch.zeros(1, 3, size, size), torch.ones(1))
    assert sum(counted) == gpu_suite.unet_forward_flops(widths, blocks, size, size)


def test_default_and_twin9m_parameter_counts():
    for name, expected in (("default", 14_850_115), ("twin9m", 8_358_963)):
        widths, blocks = gpu_suite.config_shape(gpu_suite.CONFIGS[name])
        assert count_parameters(TorchTimeConditionalUNet(widths, blocks)) == expected


def test_peak_table():
    assert gpu_suite.peak_bf16("NVIDIA H100 80GB HBM3") == 989e12
    assert gpu_suite.peak_bf16("NVIDIA H200") == 989e12
    assert gpu_suite.peak_bf16("cpu: Intel(R) Xeon(R)") is None
