"""Data for InDI: offline clean sources, paired folders, TFDS sources and task pipelines.

Everything yields float32 images in [-1, 1], NHWC, and pairs ``(degraded, clean)`` of the same
shape. TensorFlow is optional: pipelines are ``tf.data.Dataset`` when it is installed and
``keras.utils.PyDataset`` otherwise.

Quick start (offline, no download)::

    from keras_indi.datasets import build_task_datasets, take_arrays
    train, val = build_task_datasets("denoising", source="builtin", image_size=64)
    degraded, clean = take_arrays(val, num_batches=1)

and the same with real pairs: ``source="gopro", data_dir="~/data/GOPRO_Large"``. Every
source is an `ImageSource` (folders, pairs, arrays, TFDS datasets); the options of the
pipelines are the fields of one `DatasetConfig`, also accepted as keywords.
"""

from keras_indi._lazy import attach

_NAMES = {
    "DPDD_SPLITS": "folders",
    "GOPRO_SPLITS": "folders",
    "ImageFolder": "folders",
    "ImagePairs": "folders",
    "div2k_pairs": "folders",
    "dpdd_pairs": "folders",
    "gopro_pairs": "folders",
    "paired_image_folder": "folders",
    "IMAGE_EXTENSIONS": "image_io",
    "load_image": "image_io",
    "DatasetConfig": "pipeline",
    "NAMED_SOURCES": "pipeline",
    "PairedPyDataset": "pipeline",
    "build_task_datasets": "pipeline",
    "take_arrays": "pipeline",
    "tensorflow_available": "pipeline",
    "BUILTIN_IMAGE_NAMES": "sources",
    "EXTRA_IMAGE_NAMES": "sources",
    "DeadLeaves": "sources",
    "ImageSource": "sources",
    "builtin_images": "sources",
    "dead_leaves_images": "sources",
    "TFDSImages": "tfds_sources",
    "TFDSPairs": "tfds_sources",
    "div2k_tfds": "tfds_sources",
    "gopro_tfds": "tfds_sources",
    "gopro_tfds_builder": "tfds_sources",
    "tfds_clean_source": "tfds_sources",
    "bicubic_resize": "transforms",
    "paired_crop": "transforms",
    "DEFAULT_MODES": "toy",
    "distance_to_nearest_mode": "toy",
    "toy_modes_dataset": "toy",
}
__all__ = [
    "bicubic_resize",
    "build_task_datasets",
    "BUILTIN_IMAGE_NAMES",
    "builtin_images",
    "DatasetConfig",
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
    "ImageSource",
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
__getattr__, __dir__ = attach(__name__, _NAMES)
del attach
