"""`ConditionalDDPM`: the paper's "vanilla conditional DDPM" baseline, with its beta schedules.

InDI (Delbracio & Milanfar, TMLR 2023) compares against a conditional DDPM that uses the same
U-Net: the noisy image is concatenated on channels with the degraded input and the noise level
is the network's extra input. This module gives that baseline with the same Keras conventions
as `keras_indi.InDIModel` (``fit`` on every backend, mixed precision, ``.keras`` files,
``restore``), so the two can be compared at an equal number of network evaluations.
"""

import math

import keras
import numpy as np
from keras import ops

from keras_indi.api_export import keras_indi_export
from keras_indi.models.indi_model import _LOSSES, InDIModel, replica_batch
from keras_indi.utils.validation import (
    check_choice,
    check_finite_and_range,
    check_float_array,
    check_model_arguments,
    check_network_input,
    check_number,
    check_positive_int,
)

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
class DDPMSchedule:
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

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"DDPMSchedule({self.kind!r}, num_timesteps={self.num_timesteps})"

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()


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


@keras_indi_export(("keras_indi.ConditionalDDPM", "keras_indi.models.ConditionalDDPM"))
class ConditionalDDPM(keras.Model):
    """A conditional DDPM (Ho et al. 2020; Saharia et al. 2021): the InDI paper's baseline.

    `network` is called as ``network([x_input, t])`` where ``x_input`` is the noisy image
    ``x_n`` concatenated on the last (channel) axis with the degraded image ``y``, so a U-Net
    takes ``in_channels = 2 * C`` and predicts ``out_channels = C``; ``t = (n + 1) / T`` is the
    noise level as a float in (0, 1] (see `DDPMSchedule`), the same time input InDI's networks
    take. Each training step draws ``n ~ U{0, ..., T - 1}`` and ``eps ~ N(0, I)``, builds
    ``x_n = sqrt(alpha_bar_n) x + sqrt(1 - alpha_bar_n) eps`` and regresses the network onto
    ``eps`` (``prediction="epsilon"``, the DDPM objective) or onto ``x`` (``"x0"``) with an L2
    (default) or L1 loss. `restore` samples with DDIM or ancestral DDPM (`DDPMSampler`), one
    network evaluation per step, so it compares with InDI at equal NFE, e.g. as a baseline of
    ``keras_indi.evaluate_tradeoff(indi_model, ..., baselines={"ddpm@20": (ddpm, 20)})``.

    Training data: ``fit(degraded, clean)`` or a dataset of ``(degraded, clean)`` pairs (NumPy,
    `keras.utils.PyDataset`, generators, ``tf.data``), on every backend. Compiled metrics
    compare the network's prediction with its target (the noise for ``"epsilon"``).

    Calling the model: ``model(degraded)`` (what ``predict`` returns) is a cheap,
    deterministic one-evaluation estimate: the clean estimate at the noisiest step from
    ``x_{T-1} = 0``, clipped to `clip_range`. Use `restore` for real sampling.
    ``model([x_input, t])`` is the network itself.

    Mixed precision applies to the network; the schedule, noise and mixing stay in float32.

    Args:
        network: e.g. ``TimeConditionalUNet(in_channels=2 * C, out_channels=C)``.
        schedule: ``"linear"`` (default), ``"cosine"`` or a `DDPMSchedule`.
        num_timesteps: T for a string `schedule` (default 1000).
        prediction: ``"epsilon"`` (default) or ``"x0"``.
        loss: ``"l2"`` (default, the DDPM objective) or ``"l1"``.
        value_range: the range of the clean images, default (-1, 1), checked on NumPy
            inputs to catch scale mistakes (uint8 or [0, 255] data): clean targets must lie in
            it, degraded inputs may exceed it (noisy inputs; up to 8 half-widths from its
            centre). None disables the checks.
        clip_range: ``(low, high)`` the clean estimates are clipped to when sampling (and in
            ``model(degraded)``); None never clips. The default, ``"value_range"``, clips to
            `value_range` (None when it is None), as earlier versions did.
        seed: int seed of the generator that draws the steps and the noise in training.

    Example:

    >>> from keras_indi.networks import TimeConditionalUNet
    >>> network = TimeConditionalUNet(widths=(8,), blocks_per_level=1, in_channels=2, out_channels=1)
    >>> model = ConditionalDDPM(network, schedule="cosine", num_timesteps=50, seed=0)
    >>> model.compile(optimizer="adam")
    >>> clean = np.random.default_rng(0).uniform(-1, 1, (8, 8, 8, 1)).astype("float32")
    >>> degraded = 0.5 * clean
    >>> history = model.fit(degraded, clean, epochs=1, batch_size=4, verbose=0)
    >>> model.restore(degraded[:2], num_steps=5, method="ddim", seed=0, progress_bar=False).shape
    (2, 8, 8, 1)
    """

    def __init__(
        self,
        network,
        schedule="linear",
        num_timesteps=None,
        prediction="epsilon",
        loss="l2",
        value_range=(-1.0, 1.0),
        seed=None,
        clip_range="value_range",
        **kwargs,
    ):
        super().__init__(**kwargs)
        network, value_range, seed = check_model_arguments(network, value_range, seed, "network([x_input, t])")
        if isinstance(clip_range, str) and clip_range == "value_range":
            clip_range = value_range
        elif clip_range is not None:
            clip_range = _check_clip_range(clip_range)
        if num_timesteps is not None:
            num_timesteps = check_positive_int(num_timesteps, "num_timesteps")
        self.network = network
        self.schedule = get_ddpm_schedule(schedule, num_timesteps)
        self.prediction = check_choice(prediction, "prediction", _PREDICTIONS)
        self.loss_norm = check_choice(loss, "loss", _LOSSES)
        self.value_range = value_range
        self.clip_range = clip_range
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="ddpm_seed_generator")
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self._sampler = None

    @property
    def num_timesteps(self):
        return self.schedule.num_timesteps

    # -- the DDPM objective ---------------------------------------------------------------
    def alpha_bar(self, steps):
        """``alpha_bar_n`` for integer steps `steps` (any shape), float32."""
        table = ops.convert_to_tensor(self.schedule.alphas_cumprod.astype("float32"))
        return ops.take(table, ops.cast(steps, "int32"), axis=0)

    def step_time(self, steps):
        """The network's time input ``t = (n + 1) / T`` for integer steps, float32."""
        return (ops.cast(steps, "float32") + 1.0) / float(self.num_timesteps)

    def forward_process(self, clean, steps, noise):
        """``x_n = sqrt(alpha_bar_n) x_0 + sqrt(1 - alpha_bar_n) eps`` (float32), steps (batch,)."""
        clean = ops.cast(clean, "float32")
        alpha_bar = _as_column(self.alpha_bar(steps), clean)
        return ops.sqrt(alpha_bar) * clean + ops.sqrt(1.0 - alpha_bar) * ops.cast(noise, "float32")

    def network_input(self, sample, degraded):
        """The network's image input: ``concatenate([x_n, y], axis=-1)``."""
        return ops.concatenate([ops.cast(sample, "float32"), ops.cast(degraded, "float32")], axis=-1)

    def objective(self, clean, degraded, training=False):
        """Draw n and eps, build x_n; return ``{"prediction", "target"}`` (float32)."""
        clean = ops.cast(clean, "float32")
        draw_size, take = replica_batch(ops.shape(clean)[0])  # multi-replica TF: see replica_batch
        steps = take(keras.random.randint((draw_size,), 0, self.num_timesteps, dtype="int32", seed=self.seed_generator))
        shape = (draw_size,) + tuple(ops.shape(clean)[1:])
        noise = take(keras.random.normal(shape, dtype="float32", seed=self.seed_generator))
        sample = self.forward_process(clean, steps, noise)
        inputs = [self.network_input(sample, degraded), self.step_time(steps)]
        prediction = check_prediction_channels(ops.cast(self.network(inputs, training=training), "float32"), clean)
        return {"prediction": prediction, "target": noise if self.prediction == "epsilon" else clean}

    def call(self, inputs, training=False):
        if isinstance(inputs, dict):
            if "clean" not in inputs or "degraded" not in inputs:
                raise ValueError("ConditionalDDPM objective inputs need 'clean' and 'degraded' entries.")
            return self.objective(inputs["clean"], inputs["degraded"], training=training)
        if isinstance(inputs, (list, tuple)):
            if len(inputs) != 2:
                raise ValueError("Call ConditionalDDPM on `degraded` or on `[x_input, t]`.")
            return ops.cast(self.network(list(inputs), training=training), "float32")
        degraded = ops.cast(inputs, "float32")
        last = self.num_timesteps - 1
        steps = ops.full((ops.shape(degraded)[0],), last, dtype="int32")
        sample = ops.zeros_like(degraded)
        output = self.network([self.network_input(sample, degraded), self.step_time(steps)], training=training)
        output = check_prediction_channels(ops.cast(output, "float32"), sample)
        alpha_bar = float(self.schedule.alphas_cumprod[last])
        return split_prediction(output, sample, alpha_bar, self.prediction, self.clip_range)[1]

    def train_step(self, *args):
        """One DDPM step: the data becomes ``({"degraded", "clean"}, clean)``; `call` draws
        n and eps and returns the prediction and its target; `compute_loss` compares them; the
        backend's trainer does gradients (with loss scaling under mixed_float16), metrics and
        the update. ``args`` is ``(data,)`` on TensorFlow and torch, ``(state, data)`` on JAX."""
        *state, data = args
        return super().train_step(*state, self._objective_data(data))

    def test_step(self, *args):
        """Like `train_step` without the update: the DDPM loss at random n on held-out data."""
        *state, data = args
        return super().test_step(*state, self._objective_data(data))

    def _objective_data(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if not isinstance(x, dict):
            if y is None:
                raise ValueError(
                    "ConditionalDDPM trains on (degraded, clean) pairs: pass `fit(degraded, clean)` "
                    "or a dataset of (degraded, clean) tuples."
                )
            x = {"degraded": x, "clean": y}
        return keras.utils.pack_x_y_sample_weight(x, x["clean"], sample_weight)

    @staticmethod
    def _split(y, y_pred, sample_weight):
        if isinstance(y_pred, dict):
            y, y_pred = y_pred["target"], y_pred["prediction"]
        if sample_weight is not None and len(sample_weight.shape) == 1 and len(y.shape) > 2:
            # Per-sample weights (batch,) against per-pixel losses (batch, height, width).
            sample_weight = ops.reshape(sample_weight, (-1,) + (1,) * (len(y.shape) - 2))
        return y, y_pred, sample_weight

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The compiled loss between the network's prediction and its target (eps or x_0)."""
        y, y_pred, sample_weight = self._split(y, y_pred, sample_weight)
        return super().compute_loss(x, y, y_pred, sample_weight, training=training)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """Compiled metrics between the network's prediction and its target."""
        y, y_pred, sample_weight = self._split(y, y_pred, sample_weight)
        return super().compute_metrics(x, y, y_pred, sample_weight)

    def compile(self, optimizer="adam", loss=None, **kwargs):
        """``compile`` with the DDPM loss (the model's `loss` norm) unless `loss` is given."""
        if loss is None:
            loss = _LOSSES[self.loss_norm](name=f"ddpm_{self.loss_norm}")
        super().compile(optimizer=optimizer, loss=loss, **kwargs)

    def fit(self, x=None, y=None, *args, validation_data=None, **kwargs):
        """`keras.Model.fit` after checking NumPy data (float, finite, in `value_range`,
        same shapes). ``x`` holds degraded inputs and ``y`` the clean targets."""
        if isinstance(x, np.ndarray) and y is None:
            self._objective_data((x,))  # raises: clean images only
        pairs = [(x, y, "fit()")]
        if isinstance(validation_data, (tuple, list)) and len(validation_data) >= 2:
            pairs.append((validation_data[0], validation_data[1], "validation_data"))
        for degraded, clean, where in pairs:
            for array, label in ((degraded, "degraded inputs (x)"), (clean, "clean targets (y)")):
                if isinstance(array, np.ndarray):
                    check_float_array(array, f"{where} {label}", min_rank=2)
                    check_finite_and_range(
                        array, f"{where} {label}", self.value_range, degraded=label.startswith("degraded")
                    )
                    check_network_input(self.network, array.shape, f"{where} {label}", inputs_per_call=2)
            if isinstance(degraded, np.ndarray) and isinstance(clean, np.ndarray) and degraded.shape != clean.shape:
                raise ValueError(
                    f"{where} degraded inputs and clean targets must have the same shape (the "
                    f"network sees them concatenated on channels). Received {degraded.shape} and "
                    f"{clean.shape}. For super-resolution, upsample the input to the target size first."
                )
        return super().fit(x, y, *args, validation_data=validation_data, **kwargs)

    # -- restoration ------------------------------------------------------------------------
    @property
    def sampler(self):
        """The `DDPMSampler` of this model (created on first use, compiled loops cached)."""
        if self._sampler is None:
            from keras_indi.samplers.ddpm_sampler import DDPMSampler

            self._sampler = DDPMSampler(self)
        return self._sampler

    def restore(self, degraded, num_steps=50, method="ddim", seed=None, **kwargs):
        """Restore `degraded` in `num_steps` network evaluations; see `DDPMSampler.__call__`.

        ``method="ddim"`` (deterministic with the default ``eta=0``) or ``"ddpm"`` (ancestral);
        any ``num_steps <= num_timesteps``.
        """
        return self.sampler(degraded, num_steps=num_steps, method=method, seed=seed, **kwargs)

    # -- serialization ----------------------------------------------------------------------
    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "network": keras.saving.serialize_keras_object(self.network),
            "schedule": keras.saving.serialize_keras_object(self.schedule),
            "prediction": self.prediction,
            "loss": self.loss_norm,
            "value_range": None if self.value_range is None else list(self.value_range),
            "clip_range": None if self.clip_range is None else list(self.clip_range),
            "seed": self.seed,
        }

    # `keras.Model.from_config` calls ``cls(**config)``; `__init__` deserializes the network
    # and the schedule. Building from a `.keras` file and re-compiling are the same plumbing as
    # InDIModel's (nothing InDI-specific in them), so they are shared rather than rewritten.
    get_build_config = InDIModel.get_build_config
    build_from_config = InDIModel.build_from_config
    compile_from_config = InDIModel.compile_from_config
