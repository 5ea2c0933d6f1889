"""The DDPM side of the comparison: the variance schedule and the step maths that use it.

`DDPMSchedule` owns the betas and cumulative alphas; `split_prediction` turns a network output
into the (noise, clean image) estimates and `ddim_step` moves a sample to an earlier step. Both
`keras_indi.ConditionalDDPM` (training) and `keras_indi.DDPMSampler` (restoration) use them, so
this module imports neither.
"""

import math

import keras
import numpy as np
from keras import ops

from keras_indi.api_export import keras_indi_export
from keras_indi.schedules import _Schedule
from keras_indi.utils.validation import check_choice, check_number, check_positive_int

_SCHEDULE_KINDS = ("linear", "cosine")
_PREDICTIONS = {"epsilon": "the noise eps", "x0": "the clean image x_0"}


def _check_clip_range(clip_range):
    """`clip_range` as ``(low, high)`` floats with low < high; a clear error otherwise."""
    try:
        low, high = (float(v) for v in clip_range)
        valid = math.isfinite(low) and math.isfinite(high) and low < high
    except (TypeError, ValueError):
        valid = False
    if isinstance(clip_range, str) or not valid:
        raise ValueError(
            "`clip_range` must be (low, high) with low < high, None (no clipping) or "
            f"'value_range'. Received clip_range={clip_range!r}."
        )
    return (low, high)


def _as_column(values, reference):
    """(batch,) -> (batch, 1, ..., 1) to broadcast against `reference`."""
    return ops.reshape(values, (-1,) + (1,) * (len(reference.shape) - 1))


@keras_indi_export(("keras_indi.DDPMSchedule", "keras_indi.models.DDPMSchedule"))
class DDPMSchedule(_Schedule):
    """The variance schedule ``beta_1 ... beta_T`` of a discrete-time DDPM.

    Steps are indexed ``n = 0, ..., T - 1`` (``n = T - 1`` is the noisiest) and

        x_n = sqrt(alpha_bar_n) x_0 + sqrt(1 - alpha_bar_n) eps,
        alpha_bar_n = prod_{i <= n} (1 - beta_i),

    with ``alpha_bar`` strictly decreasing in (0, 1). The network sees the continuous time
    ``t_n = (n + 1) / T`` in (0, 1] (`times`): t = 1 is the noisiest step, as InDI's t = 1 is
    the degraded end, and the network is never evaluated at t = 0. With T = 1000 and the default
    ``SinusoidalTimeEmbedding(scale=1000)`` that embeds exactly the integer step ``n + 1``.

    Args:
        kind: ``"linear"`` (Ho et al. 2020: betas evenly spaced from `beta_start` to
            `beta_end`) or ``"cosine"`` (Nichol & Dhariwal 2021: ``alpha_bar`` follows
            ``cos^2``, with offset `cosine_s`).
        num_timesteps: T, the number of training noise levels.
        beta_start, beta_end: linear endpoints *for T = 1000*. For another T they are scaled
            by ``1000 / T`` (the improved-DDPM convention) so that ``alpha_bar_T`` stays close
            to 0; betas are clipped to `max_beta`.
        cosine_s: the cosine schedule's small offset.
        max_beta: upper clip of the betas (keeps every ``alpha_bar_n > 0``).

    Example:

    >>> schedule = DDPMSchedule("cosine", num_timesteps=100)
    >>> schedule.alphas_cumprod.shape
    (100,)
    >>> bool(np.all(np.diff(schedule.alphas_cumprod) < 0))
    True
    >>> schedule.times[[0, -1]].tolist()
    [0.009999999776482582, 1.0]
    """

    def __init__(self, kind="linear", num_timesteps=1000, beta_start=1e-4, beta_end=0.02, cosine_s=0.008, max_beta=0.999):
        self.kind = check_choice(kind, "kind", _SCHEDULE_KINDS)
        self.num_timesteps = check_positive_int(num_timesteps, "num_timesteps")
        self.beta_start = check_number(beta_start, "beta_start", minimum=0.0, maximum=1.0, exclusive_minimum=True)
        self.beta_end = check_number(beta_end, "beta_end", minimum=self.beta_start, maximum=1.0)
        self.cosine_s = check_number(cosine_s, "cosine_s", minimum=0.0)
        self.max_beta = check_number(max_beta, "max_beta", minimum=0.0, maximum=1.0, exclusive_minimum=True)
        if self.max_beta == 1.0:
            raise ValueError("`max_beta` must be < 1 so that every alpha_bar stays > 0. Received max_beta=1.0.")
        steps = self.num_timesteps
        if self.kind == "linear":
            scale = 1000.0 / steps
            betas = np.linspace(scale * self.beta_start, scale * self.beta_end, steps, dtype="float64")
        else:
            fraction = np.arange(steps + 1, dtype="float64") / steps
            f = np.cos((fraction + self.cosine_s) / (1.0 + self.cosine_s) * math.pi / 2.0) ** 2
            betas = 1.0 - f[1:] / f[:-1]
        # float64 tables; consumers cast to float32.
        self.betas = np.clip(betas, 1e-8, self.max_beta)
        self.alphas_cumprod = np.cumprod(1.0 - self.betas)
        self.times = (np.arange(1, steps + 1, dtype="float64") / steps).astype("float32")

    def timesteps(self, num_steps):
        """The decreasing step indices ``T - 1 = n_0 > ... > n_{N-1}`` of an N-step sampler.

        Evenly spaced over ``[T - 1, 0]`` (the last is 0 for N >= 2), distinct for any
        ``N <= T``.

        >>> DDPMSchedule(num_timesteps=10).timesteps(4).tolist()
        [9, 6, 3, 0]
        """
        num_steps = check_positive_int(num_steps, "num_steps")
        if num_steps > self.num_timesteps:
            raise ValueError(
                f"`num_steps` must be <= the number of training timesteps ({self.num_timesteps}). "
                f"Received num_steps={num_steps}."
            )
        return np.round(np.linspace(self.num_timesteps - 1, 0, num_steps)).astype("int64")

    def get_config(self):
        return {
            "kind": self.kind,
            "num_timesteps": self.num_timesteps,
            "beta_start": self.beta_start,
            "beta_end": self.beta_end,
            "cosine_s": self.cosine_s,
            "max_beta": self.max_beta,
        }

    def __repr__(self):
        return f"DDPMSchedule({self.kind!r}, num_timesteps={self.num_timesteps})"


def get_ddpm_schedule(spec, num_timesteps=None):
    """A `DDPMSchedule` from ``"linear"``, ``"cosine"``, a config dict or a schedule."""
    if isinstance(spec, dict):
        spec = keras.saving.deserialize_keras_object(spec) if "class_name" in spec else DDPMSchedule(**spec)
    if isinstance(spec, DDPMSchedule):
        if num_timesteps is not None and num_timesteps != spec.num_timesteps:
            raise ValueError(
                f"`num_timesteps`={num_timesteps} disagrees with the schedule's "
                f"{spec.num_timesteps}. Pass one or the other."
            )
        return spec
    if isinstance(spec, str):
        if spec not in _SCHEDULE_KINDS:
            raise ValueError(f"`schedule` must be one of {list(_SCHEDULE_KINDS)} or a DDPMSchedule. Received {spec!r}.")
        return DDPMSchedule(spec, 1000 if num_timesteps is None else num_timesteps)
    raise ValueError(f"`schedule` must be 'linear', 'cosine' or a DDPMSchedule. Received {spec!r}.")


def check_prediction_channels(prediction, sample):
    """Raise if the network predicts another number of channels than the image has (a U-Net
    built with ``in_channels = 2 * C`` but no ``out_channels = C`` would broadcast silently)."""
    predicted, expected = prediction.shape[-1], sample.shape[-1]
    if predicted is not None and expected is not None and predicted != expected:
        raise ValueError(
            f"The network predicts {predicted} channels but the images have {expected}. Its "
            f"input is the noisy image concatenated with the degraded one ({2 * expected} "
            f"channels) and its output must have {expected}: e.g. "
            f"`TimeConditionalUNet(in_channels={2 * expected}, out_channels={expected})`."
        )
    return prediction


def split_prediction(prediction, sample, alpha_bar, kind, clip_range=None):
    """``(eps_hat, x0_hat)`` from a network output, for a step whose ``alpha_bar`` is given.

    ``kind="epsilon"``: ``x0_hat = (x_n - sqrt(1 - a) eps_hat) / sqrt(a)``; ``kind="x0"``:
    ``eps_hat = (x_n - sqrt(a) x0_hat) / sqrt(1 - a)``. With `clip_range`, ``x0_hat`` is
    clipped to it and ``eps_hat`` recomputed from the clipped value (as DDIM implementations
    do). `alpha_bar` is a float32 scalar or a tensor that broadcasts against `sample`.
    """
    root_a, root_one_minus_a = ops.sqrt(alpha_bar), ops.sqrt(1.0 - alpha_bar)
    if kind == "epsilon":
        eps = prediction
        x0 = (sample - root_one_minus_a * eps) / root_a
    else:
        x0 = prediction
    if clip_range is not None:
        x0 = ops.clip(x0, clip_range[0], clip_range[1])
    if kind != "epsilon" or clip_range is not None:
        eps = (sample - root_a * x0) / root_one_minus_a
    return eps, x0


def ddim_step(eps, x0, alpha_bar, alpha_bar_next, eta=0.0, noise=None):
    """One generalized DDIM update (Song et al. 2021, eq. 12) from step n to an earlier step.

        sigma = eta sqrt((1 - a') / (1 - a)) sqrt(1 - a / a')
        x' = sqrt(a') x0_hat + sqrt(1 - a' - sigma^2) eps_hat + sigma z

    ``eta = 0`` is deterministic DDIM; ``eta = 1`` is DDPM ancestral sampling with the
    posterior variance (beta tilde), exactly Ho et al.'s sampler when every step is visited.
    The last step (``a' = 1``) returns ``x0_hat`` exactly, with no noise.

    >>> float(ddim_step(0.5, 2.0, 0.25, 1.0))
    2.0
    """
    alpha_bar = ops.cast(alpha_bar, "float32")
    alpha_bar_next = ops.cast(alpha_bar_next, "float32")
    variance = (1.0 - alpha_bar_next) / (1.0 - alpha_bar) * (1.0 - alpha_bar / alpha_bar_next)
    sigma = eta * ops.sqrt(ops.maximum(variance, 0.0))
    direction = ops.sqrt(ops.maximum(1.0 - alpha_bar_next - ops.square(sigma), 0.0))
    updated = ops.sqrt(alpha_bar_next) * x0 + direction * eps
    if noise is not None:
        updated = updated + sigma * noise
    return updated
