"""Plain-PyTorch twin of `keras_indi.networks.TimeConditionalUNet` (no attention levels).

The peer a PyTorch user would write: same layers, same order, same widths, same parameter
count as the Keras network (sinusoidal time embedding of ``w0`` features scaled by 1000 ->
Dense(T, silu) -> Dense(T); stem conv; per level `blocks_per_level` FiLM residual blocks and a
stride-2 3x3 downsampling conv; two middle blocks; a decoder of ``blocks_per_level + 1``
blocks per level on skip concatenations with nearest-neighbour upsampling + 3x3 conv;
GroupNorm, SiLU and a 3x3 head). Module names mirror the Keras layer names, so Keras weights
load one to one (`load_keras_weights`), which is how `benchmarks/gpu_suite.py --smoke` checks
that the twin computes the same function. Used by the GPU suite only; torch only (no Keras).

Padding follows Keras: reflection-pad the input up to a multiple of ``2 ** (levels - 1)``
and the stride-2 "same" convolution pads bottom/right only on even sizes.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


def group_count(channels, max_groups=32):
    """The largest divisor of `channels` that is <= `max_groups` (as in keras_indi)."""
    for groups in range(min(max_groups, channels), 0, -1):
        if channels % groups == 0:
            return groups
    return 1


def _norm(channels, max_groups):
    return nn.GroupNorm(group_count(channels, max_groups), channels, eps=1e-5)


def _same_stride2(x):
    """Keras "same" padding of a 3x3 stride-2 convolution (extra row / column at the end)."""
    height, width = x.shape[-2:]
    pad_h = max(2 * ((height + 1) // 2 - 1) + 3 - height, 0)
    pad_w = max(2 * ((width + 1) // 2 - 1) + 3 - width, 0)
    return F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))


class TimeResidualBlock(nn.Module):
    """``skip(x) + conv_out(silu(norm_out(conv_in(silu(norm_in(x)))) * (1 + scale) + shift))``."""

    def __init__(self, in_channels, filters, time_dim, groups=32):
        super().__init__()
        self.norm_in = _norm(in_channels, groups)
        self.conv_in = nn.Conv2d(in_channels, filters, 3, padding=1)
        self.time_projection = nn.Linear(time_dim, 2 * filters)
        self.norm_out = _norm(filters, groups)
        self.conv_out = nn.Conv2d(filters, filters, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        self.skip = nn.Conv2d(in_channels, filters, 1) if in_channels != filters else None

    def forward(self, x, embedding):
        hidden = self.conv_in(F.silu(self.norm_in(x)))
        scale, shift = self.time_projection(F.silu(embedding))[:, :, None, None].chunk(2, dim=1)
        hidden = self.norm_out(hidden) * (1.0 + scale) + shift
        hidden = self.conv_out(F.silu(hidden))
        return (x if self.skip is None else self.skip(x)) + hidden


class Resample(nn.Module):
    """Downsample (3x3 stride-2 conv) or Upsample (nearest x2, then 3x3 conv)."""

    def __init__(self, channels, down):
        super().__init__()
        self.down = down
        self.conv = nn.Conv2d(channels, channels, 3, stride=2 if down else 1, padding=0 if down else 1)

    def forward(self, x):
        if self.down:
            return self.conv(_same_stride2(x))
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class TorchTimeConditionalUNet(nn.Module):
    """``model(x_t, t)``: NCHW images (any size) and (batch,) times -> float32 NCHW output."""

    def __init__(self, widths=(64, 128, 256), blocks_per_level=2, in_channels=3, out_channels=None, groups=32):
        super().__init__()
        self.widths = tuple(int(w) for w in widths)
        self.blocks_per_level = int(blocks_per_level)
        self.multiple = 2 ** (len(self.widths) - 1)
        time_dim = 4 * self.widths[0]
        out_channels = out_channels or in_channels
        layers = {
            "time_dense_1": nn.Linear(self.widths[0], time_dim),
            "time_dense_2": nn.Linear(time_dim, time_dim),
            "stem": nn.Conv2d(in_channels, self.widths[0], 3, padding=1),
        }
        channels, skips = self.widths[0], [self.widths[0]]
        for level, width in enumerate(self.widths):
            for index in range(self.blocks_per_level):
                layers[f"down_{level}_block_{index}"] = TimeResidualBlock(channels, width, time_dim, groups)
                channels = width
                skips.append(channels)
            if level < len(self.widths) - 1:
                layers[f"down_{level}_sample"] = Resample(width, down=True)
                skips.append(width)
        layers["middle_block_1"] = TimeResidualBlock(channels, channels, time_dim, groups)
        layers["middle_block_2"] = TimeResidualBlock(channels, channels, time_dim, groups)
        for level in reversed(range(len(self.widths))):
            width = self.widths[level]
            for index in range(self.blocks_per_level + 1):
                layers[f"up_{level}_block_{index}"] = TimeResidualBlock(channels + skips.pop(), width, time_dim, groups)
                channels = width
            if level > 0:
                layers[f"up_{level}_sample"] = Resample(width, down=False)
        layers["head_norm"] = _norm(self.widths[0], groups)
        layers["head"] = nn.Conv2d(self.widths[0], out_channels, 3, padding=1)
        self.layers = nn.ModuleDict(layers)

    def time_embedding(self, t):
        half = self.widths[0] // 2
        exponents = torch.arange(half, device=t.device, dtype=torch.float32) / half
        angles = (t.float() * 1000.0)[:, None] * torch.exp(-math.log(10000.0) * exponents)[None]
        return torch.cat([angles.sin(), angles.cos()], dim=-1)

    def forward(self, x, t):
        layer = self.layers
        height, width = x.shape[-2:]
        pad_h, pad_w = -height % self.multiple, -width % self.multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        embedding = layer["time_dense_2"](F.silu(layer["time_dense_1"](self.time_embedding(t))))
        hidden = layer["stem"](x)
        skips = [hidden]
        for level in range(len(self.widths)):
            for index in range(self.blocks_per_level):
                hidden = layer[f"down_{level}_block_{index}"](hidden, embedding)
                skips.append(hidden)
            if level < len(self.widths) - 1:
                hidden = layer[f"down_{level}_sample"](hidden)
                skips.append(hidden)
        hidden = layer["middle_block_2"](layer["middle_block_1"](hidden, embedding), embedding)
        for level in reversed(range(len(self.widths))):
            for index in range(self.blocks_per_level + 1):
                hidden = torch.cat([hidden, skips.pop()], dim=1)
                hidden = layer[f"up_{level}_block_{index}"](hidden, embedding)
            if level > 0:
                hidden = layer[f"up_{level}_sample"](hidden)
        output = layer["head"](F.silu(layer["head_norm"](hidden)))
        return output[:, :, :height, :width].float()


def load_keras_weights(model, weights):
    """Copy Keras weights ``{path: array}`` (paths like ``"unet/down_0_block_0/conv_in/kernel"``)
    into `model`; returns the number of tensors copied (all of them, or it raises)."""
    state = model.state_dict()
    names = {"kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias"}
    copied = 0
    for path, value in weights.items():
        parts = path.split("/")[1:]  # drop the network's own name
        key = "layers." + ".".join(parts[:-1] + [names[parts[-1]]])
        tensor = torch.as_tensor(value)
        if tensor.ndim == 4:  # conv (kh, kw, in, out) -> (out, in, kh, kw)
            tensor = tensor.permute(3, 2, 0, 1)
        elif tensor.ndim == 2:  # dense (in, out) -> (out, in)
            tensor = tensor.t()
        if state[key].shape != tensor.shape:
            raise ValueError(f"{path}: Keras shape {tuple(tensor.shape)} vs torch {tuple(state[key].shape)}")
        state[key] = tensor.contiguous()
        copied += 1
    if copied != len(state):
        raise ValueError(f"copied {copied} of {len(state)} torch tensors")
    model.load_state_dict(state)
    return copied


def count_parameters(model):
    return sum(parameter.numel() for parameter in model.parameters())
