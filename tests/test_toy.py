"""Claim 1 of the paper on its 2D toy: regression lands between modes, InDI on them."""

import keras
import numpy as np

from keras_indi import InDIModel
from keras_indi.datasets.toy import distance_to_nearest_mode, toy_modes_dataset
from keras_indi.networks import TimeConditionalMLP


def train(time_distribution):
    keras.utils.set_random_seed(0)
    degraded, clean = toy_modes_dataset(4096, noise_std=0.5, seed=0)
    model = InDIModel(TimeConditionalMLP(features=2, hidden_units=(128, 128, 128)),
                      time_distribution=time_distribution, noise_schedule=0.0, value_range=None, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    model.fit(degraded, clean, batch_size=256, epochs=15, verbose=0)
    return model


def test_indi_reaches_the_modes_and_regression_does_not():
    validation_degraded, _ = toy_modes_dataset(512, noise_std=0.5, seed=1)
    regression = train("regression").restore(validation_degraded, num_steps=1, seed=0, progress_bar=False)
    indi = train("uniform").restore(validation_degraded, num_steps=20, seed=0, progress_bar=False)
    regression_distance = distance_to_nearest_mode(regression).mean()
    indi_distance = distance_to_nearest_mode(indi).mean()
    # Regression averages modes (about 0.09 here); InDI's iterates land within about 0.02.
    assert regression_distance > 0.065, regression_distance
    assert indi_distance < 0.045, indi_distance
    assert indi_distance < 0.5 * regression_distance


def test_toy_dataset_contract():
    degraded, clean = toy_modes_dataset(10, seed=3)
    assert degraded.shape == clean.shape == (10, 2)
    assert np.all(distance_to_nearest_mode(clean) == 0.0)
    again, _ = toy_modes_dataset(10, seed=3)
    np.testing.assert_array_equal(degraded, again)
