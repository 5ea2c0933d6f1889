"""Sequential composition of degradations."""

import keras

from keras_indi.api_export import keras_indi_export
from keras_indi.degradations.base import Degradation
from keras_indi.degradations.base import serialize_degradation


@keras_indi_export("keras_indi.degradations.Compose")
class Compose(Degradation):
    """Apply degradations one after the other (e.g. blur, then noise, then JPEG).

    All stages draw their parameters from the `Compose` generator (the stages' own seeds are
    not used inside a `Compose`). The layer form exists when every stage has one.

    Example:

    >>> import numpy as np
    >>> from keras_indi.degradations import GaussianBlur, AdditiveGaussianNoise
    >>> blur_then_noise = Compose([GaussianBlur(sigma=1.0), AdditiveGaussianNoise(sigma=0.05)], seed=0)
    >>> blur_then_noise(np.zeros((2, 16, 16, 3), "float32")).shape
    (2, 16, 16, 3)

    Args:
        degradations: list of `Degradation` objects (or their serialized configs).
        seed: int or None, see `Degradation`.
    """

    def __init__(self, degradations, seed=None):
        super().__init__(seed=seed)
        if isinstance(degradations, Degradation) or not isinstance(degradations, (list, tuple)):
            raise ValueError(
                "`degradations` must be a list of Degradation objects. Received "
                f"{type(degradations).__name__}."
            )
        stages = []
        for index, stage in enumerate(degradations):
            if isinstance(stage, dict):
                stage = keras.saving.deserialize_keras_object(stage)
            if not isinstance(stage, Degradation):
                raise ValueError(
                    f"`degradations[{index}]` must be a keras_indi Degradation. Received "
                    f"{type(stage).__name__}."
                )
            stages.append(stage)
        if not stages:
            raise ValueError("`degradations` must hold at least one Degradation.")
        self.degradations = stages

    @property
    def supports_layer(self):
        return all(stage.supports_layer for stage in self.degradations)

    @property
    def layer_unsupported_reason(self):
        names = [type(s).__name__ for s in self.degradations if not s.supports_layer]
        return f"its stage(s) {', '.join(names)} have no layer form"

    def sample_parameters(self, batch_size, rng):
        return {str(i): stage.sample_parameters(batch_size, rng) for i, stage in enumerate(self.degradations)}

    def apply(self, clean, parameters):
        degraded = clean
        for i, stage in enumerate(self.degradations):
            degraded = stage.apply(degraded, parameters[str(i)]).astype("float32", copy=False)
        return degraded

    def backend_call(self, clean, seed_generator):
        self._check_layer_support()
        degraded = clean
        for stage in self.degradations:
            degraded = stage.backend_call(degraded, seed_generator)
        return degraded

    def get_config(self):
        return {
            "degradations": [serialize_degradation(stage) for stage in self.degradations],
            "seed": self.seed,
        }
