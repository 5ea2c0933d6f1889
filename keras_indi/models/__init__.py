"""Models: `InDIModel`, the `ConditionalDDPM` baseline and the schedules they use."""

from keras_indi.models.base import RestorationModel
from keras_indi.models.indi_model import InDIModel
from keras_indi.models.ddpm import ConditionalDDPM, DDPMSchedule, ddim_step, split_prediction
