"""How a network's raw output becomes the clean-image estimate ``F(x_t, t)`` of InDI.

InDI trains ``F(x_t, t) ~ E[x | x_t]`` and every restoration ends with ``x_0 = F(x_d, d)`` at a
small time ``d``, where ``x_t`` is already almost clean. A network that predicts ``x`` directly
must learn the identity there; an under-trained one blurs or adds noise exactly where the
steps should add detail. A skip connection from ``x_t`` removes that burden. With ``G`` the
raw network, every option has the form (as in Karras et al. 2022, "EDM")

    F(x_t, t) = c_skip(t) * x_t + c_out(t) * G(c_in(t) * x_t, t)

* ``"x"``: c_skip = 0, c_out = 1, c_in = 1. The network predicts the clean image.
* ``"residual"``: c_skip = 1, c_out = 1, c_in = 1. The network predicts ``x - x_t``.
* ``"preconditioned"``: the EDM scalings derived for the InDI path (docs/parameterization.md).
  Writing ``x_t = x + t d`` with ``d = (y - x) + eps eta`` of per-pixel standard deviation
  `degradation_std` (sigma_d) and clean images of standard deviation `data_std`
  (sigma_x; 0.5 for images in [-1, 1]), ``x_t`` is the clean image plus a perturbation of
  standard deviation ``s(t) = t sigma_d``. Asking that the network's input and its training
  target have unit variance, and that the skip carries as much of ``x`` as it can, gives

      c_skip = sigma_x^2 / (s^2 + sigma_x^2)
      c_out  = s sigma_x / sqrt(s^2 + sigma_x^2)
      c_in   = 1 / sqrt(s^2 + sigma_x^2)

  At t -> 0 they tend to (1, 0, 1/sigma_x): F is the identity before any training, and each of
  the last steps moves ``x_t`` by ``d * sigma_d * G``, however inaccurate G still is.

The scalings are computed in float32 and applied to the float32 network output, so they are
exact under mixed precision.
"""

import keras
from keras import ops

from keras_indi.utils.validation import check_number

PARAMETERIZATIONS = ("x", "residual", "preconditioned")
#: What ``parameterization="auto"`` becomes for networks whose input and output channels match.
DEFAULT_PARAMETERIZATION = "residual"


def check_parameterization(parameterization, data_std, degradation_std, in_channels, out_channels, owner):
    """Validate the output-parameterization arguments of a network; returns them as stored."""
    if parameterization not in PARAMETERIZATIONS:
        raise ValueError(
            f"`parameterization` must be one of {PARAMETERIZATIONS}. Received {parameterization!r}. "
            "See keras_indi.networks.parameterization."
        )
    data_std = check_number(data_std, "data_std", minimum=0.0, exclusive_minimum=True)
    degradation_std = check_number(degradation_std, "degradation_std", minimum=0.0, exclusive_minimum=True)
    if parameterization != "x" and in_channels != out_channels:
        raise ValueError(
            f"{owner}(parameterization={parameterization!r}) adds the input x_t to the output, so it needs "
            f"as many input as output channels. Received in_channels={in_channels}, "
            f"out_channels={out_channels} (e.g. a conditional DDPM's concatenated input). Pass "
            "parameterization='x' for such a network."
        )
    return parameterization, float(data_std), float(degradation_std)


def output_scalings(t, parameterization, data_std=0.5, degradation_std=0.5):
    """``(c_skip, c_out, c_in)`` for times `t` of shape ``(batch,)``, each ``(batch,)`` float32.

    Example:

    >>> import numpy as np
    >>> c_skip, c_out, c_in = output_scalings(np.array([0.0, 1.0], "float32"), "preconditioned", 0.5, 0.5)
    >>> [round(float(v), 3) for v in c_skip], [round(float(v), 3) for v in c_out]
    ([1.0, 0.5], [0.0, 0.354])
    """
    t = ops.cast(ops.reshape(t, (-1,)), "float32")
    ones = ops.ones_like(t)
    if parameterization == "x":
        return ops.zeros_like(t), ones, ones
    if parameterization == "residual":
        return ones, ones, ones
    if parameterization != "preconditioned":
        raise ValueError(f"Unknown parameterization {parameterization!r}; expected one of {PARAMETERIZATIONS}.")
    spread = t * degradation_std
    total = ops.square(spread) + data_std**2
    return data_std**2 / total, spread * data_std / ops.sqrt(total), 1.0 / ops.sqrt(total)


def broadcast_to_rank(values, rank):
    """``(batch,)`` -> ``(batch, 1, ..., 1)`` of the given rank."""
    return ops.reshape(values, (-1,) + (1,) * (rank - 1))


class ParameterizedNetwork(keras.Model):
    """What `TimeConditionalUNet` and `TimeConditionalMLP` share: the output parameterization
    ``F = c_skip x_t + c_out G(c_in x_t, t)`` (attributes `parameterization`, `data_std`,
    `degradation_std`) and the config they save."""

    def _parameterize(self, x_t, t):
        """``(input of G, finish)``: ``finish(G's output)`` is ``F(x_t, t)``, in float32."""
        c_skip, c_out, c_in = (
            broadcast_to_rank(c, len(x_t.shape))
            for c in output_scalings(t, self.parameterization, self.data_std, self.degradation_std)
        )

        def finish(output):
            output = ops.cast(output, "float32")
            if self.parameterization == "x":
                return output
            return c_skip * ops.cast(x_t, "float32") + c_out * output

        return (ops.cast(x_t, "float32") * c_in if self.parameterization == "preconditioned" else x_t), finish

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.saving.serialize_keras_object(self.dtype_policy),
            **self._architecture_config(),
            "parameterization": self.parameterization,
            "data_std": self.data_std,
            "degradation_std": self.degradation_std,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        # Files saved before the option existed were trained to predict x directly.
        config.setdefault("parameterization", "x")
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.saving.deserialize_keras_object(config["dtype"])
        return cls(**config)


def estimate_degradation_std(degraded, clean, noise_std=0.0):
    """The per-pixel standard deviation of ``degraded - clean`` (plus the InDI noise `noise_std`):
    the `degradation_std` of a ``"preconditioned"`` network for a task.

    Example:

    >>> import numpy as np
    >>> clean = np.zeros((4, 8, 8, 3), "float32")
    >>> noisy = clean + 0.5 * np.random.default_rng(0).normal(size=clean.shape).astype("float32")
    >>> round(estimate_degradation_std(noisy, clean), 1)
    0.5
    """
    import numpy as np

    degraded = np.asarray(degraded, dtype="float64")
    clean = np.asarray(clean, dtype="float64")
    if degraded.shape != clean.shape or degraded.size == 0:
        raise ValueError(
            "`degraded` and `clean` must be non-empty arrays of the same shape. Received shapes "
            f"{degraded.shape} and {clean.shape}."
        )
    difference = degraded - clean
    if not np.all(np.isfinite(difference)):
        raise ValueError("`degraded` and `clean` must be finite (found NaN or inf).")
    return float(np.sqrt(np.mean(np.square(difference)) + float(noise_std) ** 2))
