"""LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual
Metric") re-built with Keras layers; weights are loaded from a local file.

The network is LPIPS v0.1: input scaling, the five ReLU stages of VGG16 or AlexNet
(torchvision layout), channel-wise unit normalization, squared differences, one non-negative
1x1 linear head per stage, spatial mean, sum over stages. Nothing is downloaded: the weights
come from ``weights_path``.

How to get the weights (once, on a machine with internet access)::

    pip install lpips torch torchvision
    python - <<'EOF'
    import lpips, torch
    # downloads torchvision's ImageNet VGG16 and loads the linear heads shipped with `lpips`
    torch.save(lpips.LPIPS(net="vgg").state_dict(), "lpips_vgg.pth")
    EOF
    python -c "from keras_indi.metrics import convert_lpips_torch_weights; \\
        convert_lpips_torch_weights('lpips_vgg.pth', 'lpips_vgg.npz', net='vgg')"

Without the `lpips` package: take the linear heads from the official repository
(``https://github.com/richzhang/PerceptualSimilarity``, file ``lpips/weights/v0.1/vgg.pth`` or
``alex.pth``) and the torchvision backbone (``https://download.pytorch.org/models/
vgg16-397923af.pth`` or ``alexnet-owt-7be5be79.pth``) and call
``convert_lpips_torch_weights("vgg.pth", "lpips_vgg.npz", net="vgg",
backbone_weights="vgg16-397923af.pth")``. The ``.npz`` (or a ``.weights.h5`` written by
``LPIPS.save_weights``) is then all that is needed: ``LPIPS(weights_path="lpips_vgg.npz")``.
Only ``convert_lpips_torch_weights`` needs PyTorch, and only when called.
"""

import numbers
import os
import re

import keras
import numpy as np
from keras import layers, ops

from keras_indi.api_export import keras_indi_export
from keras_indi.backend.compile import jit_stateless

# LPIPS v0.1 ScalingLayer: (x - shift) / scale for inputs in [-1, 1].
_SHIFT = np.array([-0.030, -0.088, -0.188], "float32")
_SCALE = np.array([0.458, 0.448, 0.450], "float32")

# (torchvision `features` index, out channels, kernel, stride, padding); "M" = max pool
# (pool size, stride); "|" = end of an LPIPS stage (its ReLU output is used).
_ARCHITECTURES = {
    "vgg": [
        (0, 64, 3, 1, 1),
        (2, 64, 3, 1, 1),
        "|",
        ("M", 2, 2),
        (5, 128, 3, 1, 1),
        (7, 128, 3, 1, 1),
        "|",
        ("M", 2, 2),
        (10, 256, 3, 1, 1),
        (12, 256, 3, 1, 1),
        (14, 256, 3, 1, 1),
        "|",
        ("M", 2, 2),
        (17, 512, 3, 1, 1),
        (19, 512, 3, 1, 1),
        (21, 512, 3, 1, 1),
        "|",
        ("M", 2, 2),
        (24, 512, 3, 1, 1),
        (26, 512, 3, 1, 1),
        (28, 512, 3, 1, 1),
        "|",
    ],
    "alex": [
        (0, 64, 11, 4, 2),
        "|",
        ("M", 3, 2),
        (3, 192, 5, 1, 2),
        "|",
        ("M", 3, 2),
        (6, 384, 3, 1, 1),
        "|",
        (8, 256, 3, 1, 1),
        "|",
        (10, 256, 3, 1, 1),
        "|",
    ],
}
_STAGE_CHANNELS = {"vgg": (64, 128, 256, 512, 512), "alex": (64, 192, 384, 256, 256)}
_MIN_SIZE = {"vgg": 16, "alex": 32}


def _check_net(net):
    if net not in _ARCHITECTURES:
        raise ValueError(f"`net` must be 'vgg' or 'alex'. Received net={net!r}.")
    return net


def _conv_specs(net):
    return [spec for spec in _ARCHITECTURES[net] if isinstance(spec, tuple) and spec[0] != "M"]


@keras_indi_export("keras_indi.metrics.lpips_weight_shapes")
def lpips_weight_shapes(net="vgg"):
    """Names and shapes of the arrays of the ``.npz`` weight format of :class:`LPIPS`.

    ``features.conv{i}.kernel`` ``(k, k, in, out)`` and ``features.conv{i}.bias`` ``(out,)``
    for the i-th convolution of the backbone, ``lin{s}.kernel`` ``(channels,)`` for the
    linear head of stage s (non-negative in the official weights).

    >>> shapes = lpips_weight_shapes("alex")
    >>> shapes["features.conv0.kernel"], shapes["lin4.kernel"]
    ((11, 11, 3, 64), (256,))
    """
    _check_net(net)
    shapes = {}
    in_channels = 3
    for i, (_, out_channels, kernel, _, _) in enumerate(_conv_specs(net)):
        shapes[f"features.conv{i}.kernel"] = (kernel, kernel, in_channels, out_channels)
        shapes[f"features.conv{i}.bias"] = (out_channels,)
        in_channels = out_channels
    for stage, channels in enumerate(_STAGE_CHANNELS[net]):
        shapes[f"lin{stage}.kernel"] = (channels,)
    return shapes


def _build_backbone(net):
    inputs = keras.Input(shape=(None, None, 3), name="scaled_images")
    x = inputs
    outputs = []
    conv_index = 0
    for spec in _ARCHITECTURES[net]:
        if spec == "|":
            outputs.append(x)
        elif spec[0] == "M":
            x = layers.MaxPooling2D(pool_size=spec[1], strides=spec[2], padding="valid")(x)
        else:
            _, channels, kernel, stride, padding = spec
            if padding:
                x = layers.ZeroPadding2D(padding)(x)
            # Zero-initialized: the weights are always loaded (and random init is slow on JAX).
            x = layers.Conv2D(
                channels,
                kernel,
                strides=stride,
                padding="valid",
                kernel_initializer="zeros",
                name=f"conv{conv_index}",
            )(x)
            x = layers.ReLU()(x)
            conv_index += 1
    return keras.Model(inputs, outputs, name=f"{net}_features")


_HOW_TO_GET_WEIGHTS = (
    "LPIPS weights cannot be downloaded by keras-indi: convert the official ones once with "
    "`keras_indi.metrics.convert_lpips_torch_weights` (see the `keras_indi.metrics.lpips` module "
    "docstring for the exact commands) and pass the resulting .npz (or a .weights.h5 written by "
    "`LPIPS.save_weights`) as `weights_path`."
)


@keras_indi_export("keras_indi.metrics.LPIPS")
class LPIPS(keras.Model):
    """LPIPS perceptual distance (v0.1, VGG16 or AlexNet backbone), one value per image pair.

    Call it on two image batches ``(batch, height, width, 3)`` (or one image each) in
    `value_range` ([-1, 1] by default, the library convention); grayscale images with one
    channel are repeated to RGB. Returns a float32 ``(batch,)`` tensor: 0 for identical images
    (up to float rounding), symmetric, larger is more different. Typical values with the official weights: below 0.1
    for near-identical images, 0.3-0.7 for clearly different ones.

    Args:
        weights_path: local ``.npz`` (from :func:`convert_lpips_torch_weights`, array names in
            :func:`lpips_weight_shapes`) or ``.weights.h5`` (from ``LPIPS.save_weights``).
            Required; see the module docstring for how to obtain the weights.
        net: ``"vgg"`` (the LPIPS choice for use as a metric/loss in restoration papers) or
            ``"alex"`` (the LPIPS default, faster).
        value_range: ``(low, high)`` of the inputs; mapped to [-1, 1].

    Example (``lpips_vgg.npz`` obtained as in the module docstring):

    >>> lpips = LPIPS(weights_path="lpips_vgg.npz")  # doctest: +SKIP
    >>> lpips(clean, restored)  # doctest: +SKIP
    <tf.Tensor: shape=(8,), dtype=float32, numpy=array([0.12, ...])>
    """

    def __init__(
        self, weights_path=None, net="vgg", value_range=(-1.0, 1.0), name="lpips", **kwargs
    ):
        super().__init__(name=name, **kwargs)
        self.net = _check_net(net)
        if (
            not isinstance(value_range, (tuple, list))
            or len(value_range) != 2
            or not all(isinstance(v, numbers.Real) for v in value_range)
            or not value_range[1] > value_range[0]
        ):
            raise ValueError(
                f"`value_range` must be a pair (low, high) with low < high. Received {value_range!r}."
            )
        self.value_range = (float(value_range[0]), float(value_range[1]))
        if weights_path is None:
            raise ValueError("`weights_path` is required. " + _HOW_TO_GET_WEIGHTS)
        if not isinstance(weights_path, (str, os.PathLike)):
            raise ValueError(
                f"`weights_path` must be a file path. Received {type(weights_path).__name__}."
            )
        self.weights_path = os.fspath(weights_path)
        # Read and check the file before building the network, so bad files fail fast.
        arrays = self._read_weights_file(self.weights_path)

        self.features = _build_backbone(self.net)
        self.heads = []
        for stage, channels in enumerate(_STAGE_CHANNELS[self.net]):
            head = layers.Conv2D(
                1, 1, use_bias=False, kernel_initializer="zeros", name=f"lin{stage}"
            )
            head.build((None, None, None, channels))
            self.heads.append(head)
        self.built = True
        self.trainable = False  # a fixed metric / loss network
        self._assign(self.weights_path, arrays)

    def load_lpips_weights(self, weights_path):
        """Load an ``.npz`` (see :func:`lpips_weight_shapes`) or a Keras ``.weights.h5`` file."""
        path = os.fspath(weights_path)
        self._assign(path, self._read_weights_file(path))

    def _assign(self, path, arrays):
        if arrays is None:  # a Keras .weights.h5 file
            try:
                self.load_weights(path)
            except Exception as error:
                raise ValueError(
                    f"Could not load {path!r} into LPIPS(net={self.net!r}): {error}. Was it written "
                    "by `LPIPS.save_weights` with the same `net`?"
                ) from error
            return
        for i in range(len(_conv_specs(self.net))):
            layer = self.features.get_layer(f"conv{i}")
            layer.kernel.assign(arrays[f"features.conv{i}.kernel"].astype("float32"))
            layer.bias.assign(arrays[f"features.conv{i}.bias"].astype("float32"))
        for stage, head in enumerate(self.heads):
            head.kernel.assign(arrays[f"lin{stage}.kernel"].astype("float32").reshape(1, 1, -1, 1))

    def _read_weights_file(self, path):
        """Checked {name: array} of an .npz file, or None for a .weights.h5 file."""
        if not os.path.isfile(path):
            raise ValueError(f"LPIPS weights file not found: {path!r}. " + _HOW_TO_GET_WEIGHTS)
        if path.endswith(".weights.h5"):
            return None
        if path.endswith((".pth", ".pt")):
            raise ValueError(
                f"{path!r} is a PyTorch file: convert it first with "
                "`keras_indi.metrics.convert_lpips_torch_weights(...)` to an .npz file."
            )
        try:
            with np.load(path) as archive:
                arrays = {key: archive[key] for key in archive.files}
        except Exception as error:
            raise ValueError(
                f"Could not read {path!r} as an .npz archive ({error}). LPIPS weights must be an "
                ".npz from `convert_lpips_torch_weights` or a .weights.h5 from `LPIPS.save_weights`."
            ) from error
        expected = lpips_weight_shapes(self.net)
        missing = sorted(set(expected) - set(arrays))
        if missing:
            raise ValueError(
                f"{path!r} is missing the arrays {missing[:4]}{'...' if len(missing) > 4 else ''} "
                f"of LPIPS(net={self.net!r}). Is it the weight file of the other backbone?"
            )
        for key, shape in expected.items():
            if tuple(arrays[key].shape) != shape:
                raise ValueError(
                    f"Array {key!r} in {path!r} has shape {arrays[key].shape}, expected {shape} for "
                    f"LPIPS(net={self.net!r})."
                )
        return arrays

    def _prepare(self, images, name):
        if isinstance(images, (list, tuple)):
            images = np.asarray(images, "float32")
        if not hasattr(images, "shape"):
            raise ValueError(
                f"`{name}` must be an image array or tensor. Received {type(images).__name__}."
            )
        images = ops.cast(ops.convert_to_tensor(images), "float32")
        if len(images.shape) == 3:
            images = ops.expand_dims(images, 0)
        if len(images.shape) != 4:
            raise ValueError(
                f"`{name}` must have shape (batch, height, width, channels). Received {tuple(images.shape)}."
            )
        channels = images.shape[-1]
        if channels == 1:
            images = ops.concatenate([images] * 3, axis=-1)
        elif channels != 3:
            raise ValueError(f"`{name}` must have 1 or 3 channels. Received {channels}.")
        minimum = _MIN_SIZE[self.net]
        for size in images.shape[1:3]:
            if size is not None and size < minimum:
                raise ValueError(
                    f"LPIPS(net={self.net!r}) needs images of at least {minimum}x{minimum} pixels. "
                    f"`{name}` has shape {tuple(images.shape)}."
                )
        low, high = self.value_range
        images = 2.0 * (images - low) / (high - low) - 1.0
        return (images - ops.convert_to_tensor(_SHIFT)) / ops.convert_to_tensor(_SCALE)

    def call(self, reference, estimate=None):
        if estimate is None:
            if not isinstance(reference, (list, tuple)) or len(reference) != 2:
                raise ValueError(
                    "Call LPIPS as `lpips(reference, estimate)` or `lpips([reference, estimate])`."
                )
            reference, estimate = reference
        shape_a, shape_b = tuple(reference.shape), tuple(estimate.shape)
        if len(shape_a) != len(shape_b) or any(
            a is not None and b is not None and a != b for a, b in zip(shape_a, shape_b)
        ):
            raise ValueError(
                f"`reference` and `estimate` must have the same shape. Received {shape_a} and {shape_b}."
            )
        single = len(shape_a) == 3
        reference = self._prepare(reference, "reference")
        estimate = self._prepare(estimate, "estimate")
        if getattr(self, "_compiled_distance", None) is None:
            # One XLA program on JAX with concrete inputs (eager JAX compiles op by op: slow).
            self._compiled_distance = jit_stateless(self, self._distance)
        distance = self._compiled_distance(reference, estimate)
        return distance[0] if single else distance

    def _distance(self, reference, estimate):
        # One forward pass over both batches: identical images give exactly 0.
        batch = ops.shape(reference)[0]
        features = self.features(ops.concatenate([reference, estimate], axis=0))
        total = 0.0
        for head, feature in zip(self.heads, features):
            fa, fb = feature[:batch], feature[batch:]
            fa = fa / (ops.sqrt(ops.sum(ops.square(fa), axis=-1, keepdims=True)) + 1e-10)
            fb = fb / (ops.sqrt(ops.sum(ops.square(fb), axis=-1, keepdims=True)) + 1e-10)
            total = total + ops.mean(head(ops.square(fa - fb)), axis=(1, 2, 3))
        return total

    def compute_output_shape(self, reference_shape, estimate_shape=None):
        return (reference_shape[0],)

    def get_config(self):
        return {
            "weights_path": self.weights_path,
            "net": self.net,
            "value_range": list(self.value_range),
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _load_torch_state(source, name):
    """A {name: numpy array} dict from a path, a state dict or an nn.Module."""
    if source is None:
        return {}
    if hasattr(source, "state_dict") and callable(source.state_dict):
        source = source.state_dict()
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise ValueError(f"`{name}` file not found: {path!r}.")
        try:
            import torch
        except ImportError as error:
            raise ImportError(
                "convert_lpips_torch_weights needs PyTorch to read .pth files: `pip install torch`."
            ) from error
        source = torch.load(path, map_location="cpu", weights_only=True)
        if (
            isinstance(source, dict)
            and "state_dict" in source
            and isinstance(source["state_dict"], dict)
        ):
            source = source["state_dict"]
    if not isinstance(source, dict):
        raise ValueError(
            f"`{name}` must be a .pth path, a state dict or a torch module. Received {type(source).__name__}."
        )
    arrays = {}
    for key, value in source.items():
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        arrays[key] = np.asarray(value)
    return arrays


@keras_indi_export("keras_indi.metrics.convert_lpips_torch_weights")
def convert_lpips_torch_weights(
    lpips_weights, output_path, net="vgg", backbone_weights=None, overwrite=False
):
    """Convert official PyTorch LPIPS weights to the ``.npz`` read by :class:`LPIPS`.

    Needs PyTorch only to read ``.pth`` files (not when given state dicts of NumPy arrays).

    Args:
        lpips_weights: the LPIPS weights as a ``.pth`` path, a state dict or an
            ``lpips.LPIPS`` module. Either the full state dict of ``lpips.LPIPS(net=net)``
            (backbone keys ``net.slice{k}.{i}.weight`` and heads ``lin{k}.model.1.weight``) or
            only the heads (the ``weights/v0.1/{net}.pth`` file of the official repository), in
            which case `backbone_weights` is required.
        output_path: where to write the ``.npz``.
        net: ``"vgg"`` or ``"alex"``.
        backbone_weights: torchvision ``vgg16()`` / ``alexnet()`` weights (``.pth`` path or
            state dict with keys ``features.{i}.weight``), e.g. ``vgg16-397923af.pth``.
        overwrite: replace an existing `output_path`.

    Returns:
        `output_path`.

    See the ``keras_indi.metrics.lpips`` module docstring for the full recipe.
    """
    net = _check_net(net)
    output_path = os.fspath(output_path)
    if os.path.exists(output_path) and not overwrite:
        raise ValueError(f"{output_path!r} already exists. Pass overwrite=True to replace it.")
    state = _load_torch_state(lpips_weights, "lpips_weights")
    state.update(
        {
            f"backbone.{k}": v
            for k, v in _load_torch_state(backbone_weights, "backbone_weights").items()
        }
    )

    backbone = {}
    heads = {}
    for key, value in state.items():
        match = re.fullmatch(
            r"(?:module\.)?net\.slice\d+\.(\d+)\.(weight|bias)", key
        ) or re.fullmatch(r"backbone\.(?:module\.)?features\.(\d+)\.(weight|bias)", key)
        if match:
            backbone[(int(match.group(1)), match.group(2))] = value
            continue
        match = re.fullmatch(r"(?:module\.)?lin(\d+)\.model\.\d+\.weight", key)
        if match:
            heads[int(match.group(1))] = value

    shapes = lpips_weight_shapes(net)
    arrays = {}
    for i, (torch_index, *_rest) in enumerate(_conv_specs(net)):
        for kind in ("weight", "bias"):
            if (torch_index, kind) not in backbone:
                raise ValueError(
                    f"The backbone weight features.{torch_index}.{kind} of {net!r} was not found. Pass "
                    "the full `lpips.LPIPS(net=...).state_dict()`, or the heads plus "
                    "`backbone_weights` (torchvision vgg16/alexnet weights)."
                )
        kernel = np.transpose(backbone[(torch_index, "weight")], (2, 3, 1, 0))
        arrays[f"features.conv{i}.kernel"] = kernel
        arrays[f"features.conv{i}.bias"] = backbone[(torch_index, "bias")]
    for stage in range(len(_STAGE_CHANNELS[net])):
        if stage not in heads:
            raise ValueError(
                f"The LPIPS head lin{stage}.model.1.weight was not found in `lpips_weights`."
            )
        arrays[f"lin{stage}.kernel"] = np.asarray(heads[stage]).reshape(-1)
    for key, shape in shapes.items():
        if tuple(arrays[key].shape) != shape:
            raise ValueError(
                f"Converted array {key!r} has shape {arrays[key].shape}, expected {shape}: are these "
                f"{net!r} weights?"
            )
    directory = os.path.dirname(output_path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    with open(output_path, "wb") as file:
        np.savez(file, **{key: value.astype("float32") for key, value in arrays.items()})
    return output_path
