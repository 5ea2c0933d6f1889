"""Channels-last convolution and group normalization without layout copies (torch).

Keras' torch backend runs a channels-last ``Conv2D`` as: permute the input to channels-first
and make it contiguous (a copy), convert it back to PyTorch's channels-last memory format
(a second copy), pad, convolve, add the bias in a separate operation and permute back. On a
CPU those copies took 46% of one evaluation of the preset U-Net (torch profiler, 2-core Xeon,
BENCHMARKS.md). A channels-last image permuted to ``(batch, channels, height, width)`` *is*
already a tensor in PyTorch's channels-last memory format, which oneDNN convolves and PyTorch's
group normalization normalizes directly, so here the permutes stay views, the bias goes into
the convolution, and nothing is copied. Same arguments and result as Keras' computation.
Nearest-neighbour upsampling likewise: one channels-last ``interpolate`` instead of Keras'
two ``repeat`` copies (35% less time at 256x256x32 on the 2-core Xeon).

Only the torch backend has these kernels; `native_channels_last_kernels()` says whether to use
them, and the layers (`keras_indi.layers.Conv2D`, `keras_indi.layers.GroupNormalization`,
`keras_indi.layers.Upsample`) fall
back to Keras' own computation elsewhere, or everywhere with the environment variable
``KERAS_INDI_TORCH_NATIVE_LAYOUT=0`` (for comparisons, or should a PyTorch build misbehave).
"""

import os

import keras


def native_channels_last_kernels():
    """Whether `conv2d` and `group_norm` here should replace Keras' computation: on torch,
    unless ``KERAS_INDI_TORCH_NATIVE_LAYOUT=0``."""
    return keras.backend.backend() == "torch" and os.environ.get("KERAS_INDI_TORCH_NATIVE_LAYOUT", "1") != "0"


def fuse_normalization_and_modulation():
    """Whether `GroupNormalization.normalize` should run its group norm, modulation and SiLU
    as one computation here: on torch with the native kernels, when no gradients are recorded
    (restoration). ``torch.compile`` then fuses them into one kernel per group norm, as for a
    plain PyTorch network: 10% less time per compiled 512x512 evaluation of the preset U-Net.
    In compiled training the fused form was 5% slower (BENCHMARKS.md), so training keeps the
    layer-then-operations form.

    Example (never on JAX or TensorFlow; on torch only inside ``torch.no_grad()``):

    >>> keras.backend.backend() == "torch" or not fuse_normalization_and_modulation()
    True
    """
    if not native_channels_last_kernels():
        return False
    import torch

    return not torch.is_grad_enabled()


def _same_padding(size, kernel_size, stride):
    """Keras' "same" padding of one spatial axis: ``(before, after)``."""
    output_size = -(-size // stride)
    total = max((output_size - 1) * stride + kernel_size - size, 0)
    return total // 2, total - total // 2


def conv2d(inputs, kernel, bias, strides, padding):
    """A channels-last 2-D convolution, Keras' layout and padding rules, on torch.

    Args:
        inputs: ``(batch, height, width, in_channels)`` torch tensor.
        kernel: ``(kernel_height, kernel_width, in_channels, filters)`` (Keras' layout).
        bias: ``(filters,)`` or None.
        strides: ``(stride_height, stride_width)``.
        padding: ``"same"`` or ``"valid"``.

    Returns:
        ``(batch, out_height, out_width, filters)``: a view of a channels-last result.
    """
    import torch
    import torch.nn.functional as F

    inputs = torch.as_tensor(inputs)
    x = inputs.permute(0, 3, 1, 2)  # a view: channels-last memory, channels-first shape
    weight = torch.as_tensor(kernel).to(inputs.dtype).permute(3, 2, 0, 1)
    weight = weight.contiguous(memory_format=torch.channels_last)
    if bias is not None:
        bias = torch.as_tensor(bias).to(inputs.dtype)
    pad = (0, 0)
    if padding == "same":
        (top, bottom), (left, right) = (
            _same_padding(x.shape[2], weight.shape[2], strides[0]),
            _same_padding(x.shape[3], weight.shape[3], strides[1]),
        )
        if top == bottom and left == right:
            pad = (top, left)
        else:
            x = F.pad(x, (left, right, top, bottom))
    elif padding != "valid":
        raise ValueError(f"`padding` must be 'same' or 'valid'; got {padding!r}.")
    outputs = F.conv2d(x, weight, bias, stride=tuple(strides), padding=pad)
    return outputs.permute(0, 2, 3, 1)


def group_norm(inputs, groups, gamma, beta, epsilon, compute_dtype, scale=None, shift=None, silu=False):
    """Group normalization of a channels-last tensor (statistics in float32), on torch.

    With `scale` and `shift` (broadcastable channels-last tensors) the result is then modulated,
    ``normalized * (1 + scale) + shift``, and with ``silu=True`` passed through SiLU, all on the
    channels-first view: under ``torch.compile`` the statistics, the modulation and the SiLU
    then fuse into one kernel (in Keras' channels-last order they take two passes)."""
    import torch
    import torch.nn.functional as F

    x = torch.as_tensor(inputs).float()
    rank = x.dim()
    x = x.permute(0, rank - 1, *range(1, rank - 1))  # channels second: a view
    weight = None if gamma is None else torch.as_tensor(gamma).float()
    bias = None if beta is None else torch.as_tensor(beta).float()
    parameters_need_gradients = any(p is not None and p.requires_grad for p in (weight, bias))
    if torch.is_grad_enabled() and parameters_need_gradients and not x.requires_grad:
        # PyTorch's channels-last group-norm backward crashes (segmentation fault, torch 2.13
        # CPU) when only gamma and beta need gradients: take the channels-first copy then.
        x = x.contiguous()
    outputs = F.group_norm(x, groups, weight, bias, epsilon)
    channels_second = (0, rank - 1, *range(1, rank - 1))
    if scale is not None:
        outputs = outputs * (1.0 + torch.as_tensor(scale).float().permute(*channels_second))
    if shift is not None:
        outputs = outputs + torch.as_tensor(shift).float().permute(*channels_second)
    if silu:
        outputs = F.silu(outputs)
    outputs = outputs.permute(0, *range(2, rank), 1)
    return outputs.to(getattr(torch, compute_dtype))


def upsample_nearest(inputs, factor):
    """Nearest-neighbour upsampling of a channels-last ``(batch, height, width, channels)``
    tensor by an integer `factor`, on torch: equal to Keras' ``UpSampling2D(factor)``."""
    import torch
    import torch.nn.functional as F

    x = torch.as_tensor(inputs).permute(0, 3, 1, 2)  # a view: channels-last memory
    return F.interpolate(x, scale_factor=factor, mode="nearest").permute(0, 2, 3, 1)
