import keras
import numpy as np
import pytest

from keras_indi.schedules import (
    BrownianNoise,
    CallableTime,
    ConstantNoise,
    NoiseSchedule,
    get_noise_schedule,
    get_time_distribution,
)


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def test_sigma_is_t_times_epsilon():
    t = np.array([0.0, 0.25, 1.0], "float32")
    np.testing.assert_allclose(numpy(ConstantNoise(0.1).sigma(t)), [0.0, 0.025, 0.1], rtol=1e-6)
    np.testing.assert_allclose(numpy(BrownianNoise(0.1).sigma(t)), [0.0, 0.05, 0.1], rtol=1e-6)


def test_brownian_closed_form_matches_the_generic_transition():
    schedule = BrownianNoise(0.2)
    for t, s in [(1.0, 0.9), (0.5, 0.1), (0.3, 0.0)]:
        generic = NoiseSchedule.transition_std(schedule, np.float32(t), np.float32(s))
        closed = schedule.transition_std(np.float32(t), np.float32(s))
        assert float(numpy(closed)) == pytest.approx(float(numpy(generic)), abs=1e-6)


def test_noise_schedule_specs_and_zero():
    assert get_noise_schedule(None) == ConstantNoise(0.01)
    assert get_noise_schedule(0.0).is_zero and not get_noise_schedule(0.1).is_zero
    assert get_noise_schedule("brownian") == BrownianNoise(0.01)
    serialized = keras.saving.serialize_keras_object(BrownianNoise(0.3))
    assert keras.saving.deserialize_keras_object(serialized) == BrownianNoise(0.3)


def test_callable_time_distribution():
    distribution = get_time_distribution(lambda batch_size, seed: keras.ops.full((batch_size,), 0.5))
    assert isinstance(distribution, CallableTime)
    np.testing.assert_array_equal(numpy(distribution.sample(3, keras.random.SeedGenerator(0))), 0.5)
    with pytest.raises(ValueError, match="callable"):
        CallableTime(3)
