"""Models: `InDIModel` and the schedules it uses."""

from keras_indi.models.indi_model import InDIModel
