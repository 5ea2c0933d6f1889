"""Data for InDI: offline clean sources, paired folders, TFDS sources and task pipelines.

Everything yields float32 images in [-1, 1], NHWC, and pairs ``(degraded, clean)`` of the same
shape. TensorFlow is optional: pipelines are ``tf.data.Dataset`` when it is installed and
``keras.utils.PyDataset`` otherwise.

Quick start (offline, no download)::

    from keras_indi.datasets import build_task_datasets, take_arrays
    train, val = build_task_datasets("denoising", source="builtin", image_size=64)
    degraded, clean = take_arrays(val, num_batches=1)

and the same with real pairs: ``source="gopro", data_dir="~/data/GOPRO_Large"``.
"""

from keras_indi.datasets.folders import (
    DPDD_SPLITS,
    GOPRO_SPLITS,
    ImageFolder,
    ImagePairs,
    div2k_pairs,
    dpdd_pairs,
    gopro_pairs,
    paired_image_folder,
)
from keras_indi.datasets.image_io import IMAGE_EXTENSIONS, load_image
from keras_indi.datasets.pipeline import (
    NAMED_SOURCES,
    PairedPyDataset,
    build_task_datasets,
    take_arrays,
    tensorflow_available,
)
from keras_indi.datasets.sources import (
    BUILTIN_IMAGE_NAMES,
    EXTRA_IMAGE_NAMES,
    DeadLeaves,
    builtin_images,
    dead_leaves_images,
)
from keras_indi.datasets.tfds_sources import (
    TFDSImages,
    TFDSPairs,
    div2k_tfds,
    gopro_tfds,
    gopro_tfds_builder,
    tfds_clean_source,
)
from keras_indi.datasets.transforms import bicubic_resize, paired_crop

__all__ = [
    "bicubic_resize",
    "build_task_datasets",
    "BUILTIN_IMAGE_NAMES",
    "builtin_images",
    "dead_leaves_images",
    "DeadLeaves",
    "div2k_pairs",
    "div2k_tfds",
    "dpdd_pairs",
    "DPDD_SPLITS",
    "EXTRA_IMAGE_NAMES",
    "gopro_pairs",
    "GOPRO_SPLITS",
    "gopro_tfds",
    "gopro_tfds_builder",
    "IMAGE_EXTENSIONS",
    "ImageFolder",
    "ImagePairs",
    "load_image",
    "NAMED_SOURCES",
    "paired_crop",
    "paired_image_folder",
    "PairedPyDataset",
    "take_arrays",
    "tensorflow_available",
    "tfds_clean_source",
    "TFDSImages",
    "TFDSPairs",
]

from keras_indi.datasets.toy import DEFAULT_MODES, distance_to_nearest_mode, toy_modes_dataset
