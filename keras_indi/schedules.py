"""The two schedules of InDI: the training-time distribution p(t) and the noise level eps_t.

Time runs from t = 0 (clean image x) to t = 1 (degraded image y). The forward process is

    x_t = (1 - t) x + t y + sigma(t) eta,   eta ~ N(0, I),   sigma(t) = t * eps_t.

Noise schedules expose ``sigma(t) = t * eps_t`` directly, never ``eps_t`` alone, because the
Brownian schedule ``eps_t = eps_0 / sqrt(t)`` is infinite at t = 0 while ``sigma(0) = 0``.
"""

import keras
from keras import ops

from keras_indi.api_export import keras_indi_export
from keras_indi.utils.config import ConfigObject
from keras_indi.utils.validation import check_number


class _Schedule(ConfigObject):
    """What both kinds of schedule share: a config of constructor arguments, and the repr and
    equality it defines."""

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()


# ----------------------------------------------------------------------------------------
# Noise schedules
# ----------------------------------------------------------------------------------------
@keras_indi_export("keras_indi.schedules.NoiseSchedule")
class NoiseSchedule(_Schedule):
    """Base class: the standard deviation ``sigma(t) = t * eps_t`` of the noise in ``x_t``.

    Subclasses implement ``sigma(t)``; ``eps_t`` must be non-increasing in t so that the
    sampler's noise-consistent step is defined. ``transition_std(t, s)`` is the standard
    deviation of the fresh noise the sampler adds when it moves from ``t`` to ``s < t``:

        sqrt(sigma(s)^2 - (s / t)^2 sigma(t)^2).

    Subclasses may override it with a closed form that is exact (e.g. exactly 0).
    """

    def sigma(self, t):
        raise NotImplementedError

    def transition_std(self, t, s):
        t = ops.convert_to_tensor(t, "float32")
        s = ops.convert_to_tensor(s, "float32")
        ratio = s / t
        variance = ops.square(self.sigma(s)) - ops.square(ratio * self.sigma(t))
        return ops.sqrt(ops.maximum(variance, 0.0))

    @property
    def is_constant(self):
        """True when the sampler's fresh noise is identically zero."""
        return False

    @property
    def is_zero(self):
        """True when x_t carries no noise at all (sigma(t) = 0 for every t)."""
        return getattr(self, "epsilon", None) == 0.0


@keras_indi_export("keras_indi.schedules.ConstantNoise")
class ConstantNoise(NoiseSchedule):
    """Constant ``eps_t = epsilon``: ``x_t = (1 - t) x + t (y + epsilon * eta)``.

    The plain InDI scheme. The sampler adds no fresh noise after the first step.

    >>> schedule = ConstantNoise(0.01)
    >>> round(float(schedule.sigma(0.5)), 6)
    0.005
    """

    def __init__(self, epsilon=0.01):
        self.epsilon = check_number(epsilon, "epsilon", minimum=0.0)

    def sigma(self, t):
        return self.epsilon * ops.convert_to_tensor(t, "float32")

    def transition_std(self, t, s):
        return ops.zeros_like(ops.convert_to_tensor(s, "float32"))

    @property
    def is_constant(self):
        return True

    def get_config(self):
        return {"epsilon": self.epsilon}


@keras_indi_export("keras_indi.schedules.BrownianNoise")
class BrownianNoise(NoiseSchedule):
    """Brownian ``eps_t = epsilon / sqrt(t)``, so the added noise ``epsilon sqrt(t) eta`` is a
    Brownian motion in t. The sampler then adds fresh noise of standard deviation
    ``epsilon * sqrt(s (t - s) / t)`` at each step; that is 0 on the last step (s = 0).

    >>> schedule = BrownianNoise(0.1)
    >>> round(float(schedule.sigma(0.25)), 6)
    0.05
    """

    def __init__(self, epsilon=0.01):
        self.epsilon = check_number(epsilon, "epsilon", minimum=0.0)

    def sigma(self, t):
        return self.epsilon * ops.sqrt(ops.maximum(ops.convert_to_tensor(t, "float32"), 0.0))

    def transition_std(self, t, s):
        t = ops.convert_to_tensor(t, "float32")
        s = ops.convert_to_tensor(s, "float32")
        return self.epsilon * ops.sqrt(ops.maximum(s * (t - s) / t, 0.0))

    @property
    def is_constant(self):
        return self.epsilon == 0.0

    def get_config(self):
        return {"epsilon": self.epsilon}


_NOISE_SCHEDULES = {"constant": ConstantNoise, "brownian": BrownianNoise}


def get_noise_schedule(spec):
    """Turn a noise-schedule spec into a `NoiseSchedule`.

    Accepts a `NoiseSchedule`, a float (constant epsilon), ``"constant"`` / ``"brownian"``
    (epsilon 0.01), a dict ``{"class_name": ..., "config": ...}`` or None (constant 0.01).
    """
    if spec is None:
        return ConstantNoise(0.01)
    if isinstance(spec, NoiseSchedule):
        return spec
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return ConstantNoise(float(spec))
    if isinstance(spec, str):
        if spec.lower() not in _NOISE_SCHEDULES:
            raise ValueError(
                f"Unknown noise schedule {spec!r}. Use one of {sorted(_NOISE_SCHEDULES)}, a "
                "float (constant epsilon) or a `keras_indi.schedules.NoiseSchedule`."
            )
        return _NOISE_SCHEDULES[spec.lower()]()
    if isinstance(spec, dict):
        return keras.saving.deserialize_keras_object(spec)
    raise ValueError(
        f"`noise_schedule` must be a NoiseSchedule, a float, a name or None. Received {spec!r}."
    )


# ----------------------------------------------------------------------------------------
# Training-time distributions p(t)
# ----------------------------------------------------------------------------------------
@keras_indi_export("keras_indi.schedules.TimeDistribution")
class TimeDistribution(_Schedule):
    """Base class of p(t), the distribution of training times in [0, 1].

    Subclasses implement ``sample(batch_size, seed)`` with `keras.random` and the given
    `seed` (a `keras.random.SeedGenerator`), returning a float32 tensor of shape (batch_size,).
    """

    def sample(self, batch_size, seed):
        raise NotImplementedError


@keras_indi_export("keras_indi.schedules.UniformTime")
class UniformTime(TimeDistribution):
    """t ~ U[0, 1]."""

    def sample(self, batch_size, seed):
        return keras.random.uniform((batch_size,), 0.0, 1.0, dtype="float32", seed=seed)


@keras_indi_export("keras_indi.schedules.MassAtOneTime")
class MassAtOneTime(TimeDistribution):
    """With probability ``weight / (1 + weight)`` draw t = 1, else t ~ U[0, 1].

    Biases training towards t = 1, the first and hardest inference step. The exact family
    the paper used is not published; this one is used by public re-implementations.
    """

    def __init__(self, weight=1.0):
        self.weight = check_number(weight, "weight", minimum=0.0)

    def sample(self, batch_size, seed):
        uniform = keras.random.uniform((batch_size,), 0.0, 1.0, dtype="float32", seed=seed)
        coin = keras.random.uniform((batch_size,), 0.0, 1.0, dtype="float32", seed=seed)
        at_one = coin < self.weight / (1.0 + self.weight)
        return ops.where(at_one, ops.ones_like(uniform), uniform)

    def get_config(self):
        return {"weight": self.weight}


@keras_indi_export("keras_indi.schedules.PowerTime")
class PowerTime(TimeDistribution):
    """Density proportional to ``t ** power`` on [0, 1] (power = 0 is uniform).

    Sampled by inversion: ``t = u ** (1 / (power + 1))``. Larger powers favour t near 1.
    """

    def __init__(self, power=1.0):
        self.power = check_number(power, "power", minimum=-1.0, exclusive_minimum=True)

    def sample(self, batch_size, seed):
        uniform = keras.random.uniform((batch_size,), 0.0, 1.0, dtype="float32", seed=seed)
        return ops.power(uniform, 1.0 / (self.power + 1.0))

    def get_config(self):
        return {"power": self.power}


@keras_indi_export("keras_indi.schedules.FixedTime")
class FixedTime(TimeDistribution):
    """Always the same t. ``FixedTime(1.0)`` turns InDI into one-step regression."""

    def __init__(self, value=1.0):
        self.value = check_number(value, "value", minimum=0.0, maximum=1.0)

    def sample(self, batch_size, seed):
        return ops.full((batch_size,), self.value, dtype="float32")

    def get_config(self):
        return {"value": self.value}


@keras_indi_export("keras_indi.schedules.CallableTime")
class CallableTime(TimeDistribution):
    """Wrap ``function(batch_size, seed) -> t`` (a tensor of shape (batch_size,) in [0, 1]).

    To save such a model in a ``.keras`` file, register the function with
    ``keras.saving.register_keras_serializable()``.
    """

    def __init__(self, function):
        if isinstance(function, (dict, str)):
            function = keras.saving.deserialize_keras_object(function)
        if not callable(function):
            raise ValueError(f"`function` must be callable. Received {function!r}.")
        self.function = function

    def sample(self, batch_size, seed):
        return ops.cast(self.function(batch_size, seed), "float32")

    def get_config(self):
        return {"function": keras.saving.serialize_keras_object(self.function)}


_TIME_DISTRIBUTIONS = {
    "uniform": UniformTime,
    "mass_at_one": MassAtOneTime,
    "power": PowerTime,
    "regression": lambda: FixedTime(1.0),
}


def get_time_distribution(spec):
    """Turn a p(t) spec into a `TimeDistribution`.

    Accepts a `TimeDistribution`; ``"uniform"``, ``"mass_at_one"`` (weight 1),
    ``"power"`` (power 1) or ``"regression"`` (always t = 1); a dict config; a callable
    ``function(batch_size, seed)``; or None (uniform).
    """
    if spec is None:
        return UniformTime()
    if isinstance(spec, TimeDistribution):
        return spec
    if isinstance(spec, str):
        if spec.lower() not in _TIME_DISTRIBUTIONS:
            raise ValueError(
                f"Unknown time distribution {spec!r}. Use one of {sorted(_TIME_DISTRIBUTIONS)}, "
                "a `keras_indi.schedules.TimeDistribution` or a callable."
            )
        return _TIME_DISTRIBUTIONS[spec.lower()]()
    if isinstance(spec, dict):
        return keras.saving.deserialize_keras_object(spec)
    if callable(spec):
        return CallableTime(spec)
    raise ValueError(
        f"`time_distribution` must be a TimeDistribution, a name, a callable or None. "
        f"Received {spec!r}."
    )
