"""`fit_side_by_side`: models trained at once train exactly as alone; errors reach the caller."""

import keras
import numpy as np
import pytest

from keras_indi.utils.side_by_side import fit_side_by_side
from keras_indi.models.indi_model import InDIModel
from keras_indi.networks.unet import TimeConditionalUNet
from keras_indi.backend.seeding import set_random_seed

SIZE = (12, 10)  # odd, non-square crops


class Pairs(keras.utils.PyDataset):
    """Seeded (degraded, clean) batches, the same for every instance."""

    def __init__(self, batches=3, shape=SIZE):
        super().__init__()
        rng = np.random.default_rng(0)
        self.clean = rng.uniform(-1, 1, (batches, 4, *shape, 3)).astype("float32")
        self.degraded = (0.5 * self.clean + 0.1 * rng.normal(size=self.clean.shape)).astype("float32")

    def __len__(self):
        return len(self.clean)

    def __getitem__(self, index):
        return self.degraded[index], self.clean[index]


def make_model(time_distribution):
    set_random_seed(0)
    network = TimeConditionalUNet(widths=(8,), blocks_per_level=1, groups=2)
    model = InDIModel(network, time_distribution=time_distribution, seed=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    network.build((None, *SIZE, 3))  # the initial weights now, from the seed
    return model


def weights(model):
    return [keras.ops.convert_to_numpy(v) for v in model.network.weights]


def test_side_by_side_gives_the_losses_and_weights_of_one_at_a_time(capsys):
    alone = {name: make_model(distribution) for name, distribution in (("indi", "mass_at_one"), ("twin", "regression"))}
    alone_losses = {name: model.fit(Pairs(), epochs=2, verbose=0, shuffle=False).history["loss"]
                    for name, model in alone.items()}
    together = {name: make_model(distribution) for name, distribution in (("indi", "mass_at_one"), ("twin", "regression"))}
    results = fit_side_by_side({name: (model, Pairs()) for name, model in together.items()}, epochs=2, verbose=1)
    assert list(results) == ["indi", "twin"]
    for name, model in together.items():
        history, seconds = results[name]
        assert history.history["loss"] == alone_losses[name]
        assert seconds > 0
        for a, b in zip(weights(model), weights(alone[name])):
            np.testing.assert_array_equal(a, b)
    output = capsys.readouterr().out
    assert "indi loss" in output and "twin loss" in output and "12/12" in output  # one bar over both runs


def test_bad_runs_are_refused():
    with pytest.raises(ValueError, match="empty"):
        fit_side_by_side({})
    model = make_model("mass_at_one")
    with pytest.raises(ValueError, match="twice"):
        fit_side_by_side({"a": (model, Pairs()), "b": (model, Pairs())})
    # Built in the threads, the initial weights would depend on their timing.
    unbuilt = InDIModel(TimeConditionalUNet(widths=(8,), blocks_per_level=1, groups=2), seed=1)
    unbuilt.compile(optimizer="adam")
    with pytest.raises(ValueError, match=r"\['b'\] are not built"):
        fit_side_by_side({"a": (model, Pairs()), "b": (unbuilt, Pairs())})


def test_an_error_in_one_fit_is_raised_and_the_others_stop():
    class Broken(Pairs):
        def __getitem__(self, index):
            if index == 1:
                raise OSError("disk went away")
            return super().__getitem__(index)

    steady = make_model("regression")
    with pytest.raises(OSError, match="disk went away"):
        fit_side_by_side({"broken": (make_model("mass_at_one"), Broken()), "steady": (steady, Pairs(batches=50))},
                         epochs=4, verbose=0)
    assert steady.stop_training  # stopped at its next batch, even if its fit started after the failure
    assert int(keras.ops.convert_to_numpy(steady.optimizer.iterations)) < 4 * 50
