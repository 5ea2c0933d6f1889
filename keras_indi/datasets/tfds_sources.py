"""TensorFlow Datasets sources: DIV2K, the GoPro builder and any TFDS image dataset.

TensorFlow and TensorFlow Datasets are imported lazily, inside the functions: importing this
module (or ``keras_indi.datasets``) works without them.

Offline preparation (nothing is downloaded when ``download=False``, the default):

* **DIV2K** (``div2k/bicubic_x4`` etc.): put the official zips, unchanged, in a folder, e.g.
  ``~/manual/DIV2K_train_HR.zip``, ``DIV2K_valid_HR.zip``, ``DIV2K_train_LR_bicubic_X4.zip``,
  ``DIV2K_valid_LR_bicubic_X4.zip``, then ``div2k_tfds("bicubic_x4", data_dir="~/tfds",
  manual_dir="~/manual")``. TFDS recognises the files by name, checks their checksums and
  prepares ``~/tfds/div2k/bicubic_x4`` once; later calls only need ``data_dir``. This is
  ``tfds.load("div2k/bicubic_x4", data_dir=..., download_and_prepare_kwargs={"download_config":
  tfds.download.DownloadConfig(manual_dir=...)})``.
* **GoPro**: see `keras_indi.datasets.gopro_builder.GoPro.MANUAL_DOWNLOAD_INSTRUCTIONS`
  (``GOPRO_Large.zip`` or its extracted folder in ``manual_dir``).
* **any TFDS image dataset**: prepare it once where network is available
  (``tfds.builder(name, data_dir=...).download_and_prepare()``) and copy ``data_dir``, or
  pass ``download=True``.
"""

import os
import re

import numpy as np

from keras_indi.api_export import keras_indi_export
from keras_indi.datasets import transforms
from keras_indi.datasets.image_io import to_model_image
from keras_indi.datasets.sources import ImageSource, _ArrayImages, _ArrayPairs, apply_degradation, sizes_match

_STREAM_TRAIN, _STREAM_TRAIN_DEGRADE, _STREAM_VALID, _STREAM_VALID_DEGRADE = 11, 12, 13, 14


def _import_tfds():
    try:
        import tensorflow  # noqa: F401
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise ValueError(
            "TFDS sources need `tensorflow` and `tensorflow-datasets` (pip install "
            f"'keras-indi[tensorflow]'): {error}. Without them use folders, NumPy arrays or the "
            "built-in sources."
        ) from error
    return tfds


def _expand(path):
    return None if path is None else os.path.expanduser(os.fspath(path))


class _TFDSBase(ImageSource):
    """Shared loading logic: ``loader(split) -> tf.data.Dataset`` of feature dicts.

    A streaming `ImageSource`: the pipelines read a split in order (``output="tf"``), or
    decode it into memory with `materialize` (``output="numpy"``)."""

    streaming = True

    def __init__(self, name, split, data_dir=None, manual_dir=None, download=False, loader=None):
        self.name = name
        self.split = split
        self.data_dir = _expand(data_dir)
        self.manual_dir = _expand(manual_dir)
        self.download = bool(download)
        self._loader = loader

    def load(self):
        """The split as a ``tf.data.Dataset`` of feature dictionaries (decoded uint8 images)."""
        if self._loader is not None:
            return self._loader(self.split)
        tfds = _import_tfds()
        kwargs = {}
        download = self.download
        if self.manual_dir is not None:
            kwargs["download_config"] = tfds.download.DownloadConfig(manual_dir=self.manual_dir)
            download = True  # prepare from the manual files: no network access
        try:
            return tfds.load(
                self.name,
                split=self.split,
                data_dir=self.data_dir,
                download=download,
                download_and_prepare_kwargs=kwargs or None,
                shuffle_files=False,
            )
        except Exception as error:  # TFDS raises AssertionError / DatasetNotFoundError / ...
            reason = str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
            raise ValueError(
                f"Could not load TFDS dataset {self.name!r} (split {self.split!r}, data_dir="
                f"{self.data_dir!r}): {reason} If you meant a folder of images: {self.name!r} is not "
                "an existing folder. Otherwise prepare the dataset offline with `manual_dir=` (see "
                "keras_indi.datasets.tfds_sources), point `data_dir` to a prepared copy, or pass "
                "`download=True`."
            ) from error

    def _copy(self, split):
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.split = split
        return clone

    def with_split(self, split):
        """The same dataset, another split (TFDS split syntax, e.g. ``"train[90%:]"``)."""
        return self._copy(split)

    def split_fraction(self, fraction):
        """(train, validation) sources holding out the last `fraction` of the split."""
        percent = min(99, max(1, int(round(100 * fraction))))
        base = self.split
        if "[" in base:
            raise ValueError(
                f"Cannot hold out `validation_fraction` of the already sliced split {base!r}; "
                "pass `validation_split=` instead."
            )
        return self._copy(f"{base}[:{100 - percent}%]"), self._copy(f"{base}[{100 - percent}%:]")

    def _read(self, dataset, max_examples):
        if max_examples:
            dataset = dataset.take(max_examples)
        examples = list(dataset.as_numpy_iterator())
        if not examples:
            raise ValueError(f"TFDS dataset {self.name!r} split {self.split!r} is empty.")
        return examples

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r}, split={self.split!r})"


@keras_indi_export("keras_indi.datasets.TFDSImages")
class TFDSImages(_TFDSBase):
    """Clean images from a TFDS dataset (made by `tfds_clean_source`)."""

    paired = False
    scale = 1

    def __init__(
        self,
        name,
        split="train",
        image_key="image",
        data_dir=None,
        manual_dir=None,
        download=False,
        loader=None,
    ):
        super().__init__(name, split, data_dir, manual_dir, download, loader)
        self.image_key = image_key

    def _select(self, dataset):
        key = self.image_key
        spec = dataset.element_spec
        if isinstance(spec, dict) and key not in spec:
            raise ValueError(
                f"TFDS dataset {self.name!r} has no feature {key!r}; its features are "
                f"{sorted(spec)}. Pass the image feature as `image_key`."
            )
        return dataset.map(lambda example: example[key] if isinstance(example, dict) else example)

    def images(self):
        """``tf.data.Dataset`` of uint8 images."""
        return self._select(self.load())

    def materialize(self, max_examples=None, channels=3):
        """The split decoded into memory (at most `max_examples` examples), as an `ImageSource`."""
        return _ArrayImages(self._read(self.images(), max_examples), channels, what=f"{self.name} example")


@keras_indi_export("keras_indi.datasets.TFDSPairs")
class TFDSPairs(_TFDSBase):
    """(degraded, clean) pairs from a TFDS dataset, e.g. `div2k_tfds` or `gopro_tfds`.

    ``scale`` > 1: the input is that many times smaller than the target (cropped scale-aware
    and upsampled back, bicubic)."""

    paired = True

    def __init__(
        self,
        name,
        split="train",
        input_key="lr",
        target_key="hr",
        scale=1,
        data_dir=None,
        manual_dir=None,
        download=False,
        loader=None,
    ):
        super().__init__(name, split, data_dir, manual_dir, download, loader)
        self.input_key = input_key
        self.target_key = target_key
        self.scale = int(scale)

    def pairs(self):
        """``tf.data.Dataset`` of (input, target) uint8 images."""
        dataset = self.load()
        spec = dataset.element_spec
        for key in (self.input_key, self.target_key):
            if isinstance(spec, dict) and key not in spec:
                raise ValueError(
                    f"TFDS dataset {self.name!r} has no feature {key!r}; its features are {sorted(spec)}."
                )
        return dataset.map(lambda example: (example[self.input_key], example[self.target_key]))

    def clean_images(self):
        """The targets alone, as a `TFDSImages` (for a synthetic degradation)."""
        return TFDSImages(
            self.name, self.split, self.target_key, self.data_dir, self.manual_dir, self.download, self._loader
        )

    def materialize(self, max_examples=None, channels=3):
        """The split decoded into memory (at most `max_examples` pairs), as an `ImageSource`."""
        return _ArrayPairs(self._read(self.pairs(), max_examples), self.scale, channels, what=f"{self.name} example")


@keras_indi_export("keras_indi.datasets.tfds_clean_source")
def tfds_clean_source(name, split="train", image_key="image", data_dir=None, manual_dir=None, download=False):
    """Any TFDS image dataset as a clean-image source, to combine with a synthetic degradation.

    Example::

        flowers = tfds_clean_source("oxford_flowers102", data_dir="~/tfds")
        train, val = build_task_datasets("denoising", source=flowers)
        # or simply: build_task_datasets("denoising", source="tfds:oxford_flowers102", data_dir=...)

    Args:
        name: TFDS name (with config, e.g. ``"div2k/bicubic_x4"``).
        split: TFDS split (slicing allowed: ``"train[:1000]"``).
        image_key: the image feature (``"image"`` for most datasets, ``"hr"`` for DIV2K).
        data_dir: TFDS data folder.
        manual_dir: manual download folder for offline preparation.
        download: allow TFDS to download and prepare (False: the data must be prepared, or
            preparable offline from `manual_dir`).

    Returns:
        A `TFDSImages` (nothing is read until a pipeline is built).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"`name` must be a TFDS dataset name. Received name={name!r}.")
    return TFDSImages(name, split, image_key, data_dir, manual_dir, download)


_DIV2K_CONFIG = re.compile(r"^(bicubic|unknown)_x([2348])$|^realistic_(mild|difficult|wild)_x4$")


@keras_indi_export("keras_indi.datasets.div2k_tfds")
def div2k_tfds(config="bicubic_x4", split="train", data_dir=None, manual_dir=None, download=False):
    """DIV2K pairs through TFDS (``div2k/<config>``): low-resolution ``lr`` input, ``hr`` target.

    Offline preparation: put the four official zips (``DIV2K_{train,valid}_HR.zip`` and
    ``DIV2K_{train,valid}_LR_bicubic_X4.zip`` for ``bicubic_x4``) unchanged in `manual_dir`;
    TFDS prepares ``data_dir/div2k/bicubic_x4`` from them without network access.

    Example::

        pairs = div2k_tfds("bicubic_x4", data_dir="~/tfds", manual_dir="~/div2k_zips")
        train, val = build_task_datasets("super_resolution", source=pairs, image_size=128)
        # same as: build_task_datasets("super_resolution", source="div2k", data_dir="~/tfds",
        #                              manual_dir="~/div2k_zips")

    Args:
        config: "bicubic_x2|x3|x4|x8", "unknown_x2|x3|x4", "realistic_{mild,difficult,wild}_x4".
        split: "train" or "validation".
        data_dir, manual_dir, download: see `tfds_clean_source`.

    Returns:
        A `TFDSPairs` with ``scale`` parsed from the config.
    """
    match = _DIV2K_CONFIG.match(str(config))
    if not match or (match.group(1) == "unknown" and match.group(2) == "8"):
        raise ValueError(
            "`config` must be a DIV2K TFDS config such as 'bicubic_x4', 'unknown_x2' or "
            f"'realistic_mild_x4'. Received config={config!r}."
        )
    scale = int(match.group(2) or 4)
    return TFDSPairs(f"div2k/{config}", split, "lr", "hr", scale, data_dir, manual_dir, download)


@keras_indi_export("keras_indi.datasets.gopro_tfds_builder")
def gopro_tfds_builder(data_dir=None):
    """A TFDS builder (``GoPro``) for the GoPro deblurring dataset, prepared from a manual folder.

    ``builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=...))``
    reads ``GOPRO_Large.zip`` or the extracted ``GOPRO_Large`` folder (see
    ``GoPro.MANUAL_DOWNLOAD_INSTRUCTIONS``); ``builder.as_dataset(split="train")`` yields
    ``{"blur", "sharp", "sequence", "frame"}``.
    """
    _import_tfds()
    from keras_indi.datasets.gopro_builder import GoPro

    return GoPro(data_dir=_expand(data_dir))


@keras_indi_export("keras_indi.datasets.gopro_tfds")
def gopro_tfds(split="train", data_dir=None, manual_dir=None, blur="blur"):
    """GoPro pairs through the TFDS `GoPro` builder (``blur`` input, ``sharp`` target).

    The first call with `manual_dir` prepares the dataset in `data_dir` (no network access);
    later calls only need `data_dir`. Without TFDS, use `gopro_pairs` on the extracted folder.

    Args:
        split: "train" or "test".
        data_dir: TFDS data folder.
        manual_dir: folder holding ``GOPRO_Large.zip`` or the extracted ``GOPRO_Large``.
        blur: "blur" or "blur_gamma" (builder config).
    """
    if split not in ("train", "test") and not str(split).startswith(("train[", "test[")):
        raise ValueError(f"`split` must be 'train' or 'test' for GoPro. Received split={split!r}.")
    if blur not in ("blur", "blur_gamma"):
        raise ValueError(f"`blur` must be 'blur' or 'blur_gamma'. Received blur={blur!r}.")
    data_dir, manual_dir = _expand(data_dir), _expand(manual_dir)
    state = {}

    def loader(split):
        tfds = _import_tfds()
        if "builder" not in state:
            from keras_indi.datasets.gopro_builder import GoPro

            builder = GoPro(config=blur, data_dir=data_dir)
            if not builder.is_prepared():
                if manual_dir is None:
                    raise ValueError(
                        f"The GoPro TFDS dataset is not prepared in data_dir={data_dir!r}. Pass "
                        "`manual_dir` (folder with GOPRO_Large.zip or the extracted GOPRO_Large) "
                        "once to prepare it offline, or use `gopro_pairs` on the extracted folder."
                    )
                builder.download_and_prepare(
                    download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
                )
            state["builder"] = builder
        builder = state["builder"]
        available = set(builder.info.splits.keys())
        base = split.split("[")[0]
        if available and base not in available:
            raise ValueError(
                f"The prepared GoPro dataset has no {base!r} split (it has {sorted(available)}); the "
                "manual folder did not contain it."
            )
        return builder.as_dataset(split=split, shuffle_files=False)

    return TFDSPairs(f"gopro/{blur}", split, "blur", "sharp", 1, data_dir, manual_dir, False, loader=loader)


# ---------------------------------------------------------------------------------------------
# Streaming tf.data pipelines (large TFDS datasets are never loaded in memory).
# ---------------------------------------------------------------------------------------------
def _key_rng(seed, tag, key):
    return np.random.default_rng([seed, tag, int(key) % (2**63)])


def _stream(source, training, config):
    """One streaming pipeline; `config` is a `DatasetConfig` (degradation None: real pairs)."""
    import tensorflow as tf

    image_size, batch_size, seed, channels = config.image_size, config.batch_size, config.seed, config.channels
    degradation, flips = config.degradation, config.flips
    paired = source.paired and degradation is None
    dataset = source.pairs() if source.paired else source.images()
    if not paired and source.paired:
        dataset = dataset.map(lambda degraded, clean: clean)
    if config.max_examples:
        dataset = dataset.take(config.max_examples)
    count = int(dataset.cardinality())
    if training and not config.steps_per_epoch and 0 <= count < batch_size:
        raise ValueError(
            f"TFDS dataset {source.name!r} split {source.split!r} has {count} examples, fewer than "
            f"`batch_size` {batch_size}: lower batch_size or pass `steps_per_epoch` (examples repeat)."
        )
    if training:
        dataset = dataset.shuffle(config.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        if config.steps_per_epoch:
            dataset = dataset.repeat().take(config.steps_per_epoch * batch_size)
        keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    else:
        if config.validation_samples:
            dataset = dataset.take(config.validation_samples)
        keys = tf.data.Dataset.range(2**62)
    dataset = tf.data.Dataset.zip((dataset, keys))
    height, width = image_size
    scale = source.scale if paired else 1
    tag = _STREAM_TRAIN if training else _STREAM_VALID
    name = source.name

    def crop_pair(degraded, clean, key):
        rng = _key_rng(seed, tag, key)
        degraded = to_model_image(degraded, channels, what=f"{name} input")
        clean = to_model_image(clean, channels, what=f"{name} target")
        if (
            clean.shape[0] < height
            or clean.shape[1] < width
            or degraded.shape[0] * scale < height
            or degraded.shape[1] * scale < width
        ):
            raise ValueError(
                f"A {name} pair (input {degraded.shape[:2]}, target {clean.shape[:2]}) is smaller than "
                f"`image_size` {image_size}. Use a smaller image_size."
            )
        if not sizes_match(degraded.shape[:2], clean.shape[:2], scale):
            raise ValueError(
                f"A {name} pair has input {degraded.shape[:2]} and target {clean.shape[:2]}, which do not "
                f"match with scale {scale}."
            )
        degraded, clean = transforms.align_pair(
            degraded, clean, image_size, scale=scale, rng=rng, flips=training and flips
        )
        return degraded, clean, np.int64(int(key) % (2**63))

    def crop_clean(clean, key):
        rng = _key_rng(seed, tag, key)
        clean = to_model_image(clean, channels, what=f"{name} image")
        clean = transforms.crop_clean(clean, image_size, rng=rng, flips=training and flips)
        return clean, np.int64(int(key) % (2**63))

    shape = (height, width, channels)
    if paired:

        def mapper(element, key):
            degraded, clean, key = tf.numpy_function(
                crop_pair, [element[0], element[1], key], [tf.float32, tf.float32, tf.int64]
            )
            degraded.set_shape(shape)
            clean.set_shape(shape)
            return degraded, clean, key
    else:

        def mapper(element, key):
            clean, key = tf.numpy_function(crop_clean, [element, key], [tf.float32, tf.int64])
            clean.set_shape(shape)
            return clean, key

    dataset = dataset.map(mapper, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = dataset.batch(batch_size, drop_remainder=training)
    batch_dim = batch_size if training else None
    if paired:
        dataset = dataset.map(lambda degraded, clean, keys: (degraded, clean))
    else:
        degrade_tag = _STREAM_TRAIN_DEGRADE if training else _STREAM_VALID_DEGRADE

        def degrade(clean, keys):
            batch_seed = int(_key_rng(seed, degrade_tag, keys[0]).integers(2**31 - 1))
            return apply_degradation(degradation, clean, batch_seed), clean

        def degrade_map(clean, keys):
            degraded, clean = tf.numpy_function(degrade, [clean, keys], [tf.float32, tf.float32])
            degraded.set_shape((batch_dim,) + shape)
            clean.set_shape((batch_dim,) + shape)
            return degraded, clean

        dataset = dataset.map(degrade_map, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def tfds_pipelines(train, validation, config):
    """Streaming ``(train, validation)`` tf.data pipelines for TFDS sources (internal).

    `config` is a `keras_indi.datasets.DatasetConfig` whose degradation is None for real pairs."""
    train_ds = _stream(train, True, config)
    return train_ds, (None if validation is None else _stream(validation, False, config))
