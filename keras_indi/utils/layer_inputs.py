"""The one place keras-indi sets private Keras layer attributes, and why.

Keras 3 casts every positional input of a layer to the layer's compute dtype and refuses
non-tensor positional arguments. keras-indi's time-conditional layers take ``[x_t, t]``:
under mixed precision (``mixed_bfloat16``/``mixed_float16``) the time ``t`` must stay float32
(the sinusoidal embedding of t in bfloat16 loses the small times InDI's last steps use), and
the models take dicts of batches. Keras offers no public switch for either (its own
keras-hub models set the same two attributes); `keep_input_dtypes` sets them, and nothing
else in keras_indi touches a private Keras attribute (tests/test_architecture.py checks).
"""


def keep_input_dtypes(layer):
    """Let `layer` receive its inputs as given: no cast to its compute dtype (each network
    casts images itself; times stay float32) and non-tensor inputs (lists, dicts) allowed."""
    layer._convert_input_args = False
    layer._allow_non_tensor_positional_args = True
    return layer
