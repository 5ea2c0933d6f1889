"""Reusable Keras layers for time-conditional restoration networks."""

from keras_indi.layers.attention import SpatialSelfAttention
from keras_indi.layers.forward_process import InDIForwardProcess
from keras_indi.layers.residual_block import TimeResidualBlock
from keras_indi.layers.sampling import Downsample, Upsample
from keras_indi.layers.time_embedding import FourierTimeEmbedding, SinusoidalTimeEmbedding
