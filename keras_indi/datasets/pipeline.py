"""Training and validation pipelines of ``(degraded, clean)`` batches for InDI.

One sampler (NumPy) produces every batch from ``(seed, epoch, batch index)`` alone, so the
pipelines are reproducible, the ``tf.data`` and ``keras.utils.PyDataset`` outputs hold
identical batches, and TensorFlow stays optional. With ``degrade_on="model"`` the training
pipeline yields the clean crops only and the model degrades them on the device.

Every source is an `ImageSource` (or a procedural one: "builtin", "dead_leaves", a
`DeadLeaves`); every option of the pipelines is a field of one `DatasetConfig`.
"""

import dataclasses
import math
import numbers
import os
import pathlib
import re

import keras
import numpy as np

from keras_indi.api_export import keras_indi_export
from keras_indi.datasets import tfds_sources, transforms
from keras_indi.datasets.folders import ImageFolder, div2k_pairs, dpdd_pairs, gopro_pairs
from keras_indi.datasets.image_io import check_channels, to_model_image
from keras_indi.datasets.sources import (
    DeadLeaves,
    ImageSource,
    _ArrayImages,
    _ArrayPairs,
    _builtin_images_cached,
    _check_size,
    apply_degradation,
)
from keras_indi.utils.validation import check_positive_int

# Named sources that hold real pairs, and the task those pairs are made for.
NATIVE_TASKS = {"gopro": "motion_deblurring", "dpdd": "defocus_deblurring", "div2k": "super_resolution"}
NAMED_SOURCES = ("builtin", "dead_leaves", "gopro", "dpdd", "div2k")

# Tags separating the random streams derived from one seed.
_ORDER, _TRAIN, _TRAIN_DEGRADE, _VALID, _VALID_DEGRADE, _SPLIT = range(1, 7)
_DEFAULT_PROCEDURAL_STEPS = 50
_TFDS_NAME = re.compile(r"^[a-z][a-z0-9_]*(/[A-Za-z0-9_.+-]+)?(:[0-9.*]+)?$")
DEGRADE_ON = ("pipeline", "model")


@keras_indi_export("keras_indi.datasets.tensorflow_available")
def tensorflow_available():
    """True when ``import tensorflow`` works (it may be blocked or not installed)."""
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# The options.
# ---------------------------------------------------------------------------------------------
@keras_indi_export("keras_indi.datasets.DatasetConfig")
@dataclasses.dataclass(frozen=True)
class DatasetConfig:
    """Every option of `build_task_datasets`, checked once (bad values raise a ValueError).

    `build_task_datasets` accepts the fields as keywords too: ``build_task_datasets(task,
    source, image_size=128)`` is ``build_task_datasets(task, source,
    DatasetConfig(image_size=128))``. A config is frozen: derive variants with
    ``dataclasses.replace`` (which checks them again).

    Example:

    >>> import dataclasses
    >>> config = DatasetConfig(image_size=32, batch_size=4, output="numpy")
    >>> config.image_size
    (32, 32)
    >>> dataclasses.replace(config, batch_size=8).batch_size
    8
    >>> DatasetConfig(batch_size=0)
    Traceback (most recent call last):
    ...
    ValueError: `batch_size` must be an integer >= 1. Received batch_size=0.

    Attributes:
        image_size: int or (height, width) of the crops (stored as a pair). Clean images
            smaller than the crop are enlarged (bicubic) first; pairs smaller than the crop
            raise an error.
        batch_size: batch size.
        seed: int; the same seed gives the same batches (for both outputs).
        validation_fraction: fraction of a finite source's images held out for validation
            (0 or None: no validation pipeline, None is returned). Ignored when an official
            held-out split is used (see `validation_split`).
        data_dir: dataset folder for "gopro"/"dpdd"/"div2k", or TFDS data_dir.
        degradation: a ``keras_indi.degradations.Degradation`` (or callable
            ``f(batch, seed=...)``) overriding the task's default; with a paired source its
            clean targets are degraded instead of using the real inputs.
        output: "auto" (``tf.data.Dataset`` when TensorFlow imports, else PyDataset), "tf"
            or "numpy" (`PairedPyDataset`, a ``keras.utils.PyDataset``).
        steps_per_epoch: training batches per epoch. Default: one pass over a finite source
            (``ceil(n / batch_size)``), 50 for procedural sources ("builtin", "dead_leaves").
            Do not pass ``steps_per_epoch`` to ``fit`` as well.
        validation_samples: number of validation crops. Default: one per held-out image
            (a larger number takes several fixed crops per image, a smaller one keeps the
            first images); ``4 * batch_size`` for procedural sources.
        validation_split: "auto" uses the official held-out split of GoPro ("test"), DPDD
            ("val") and DIV2K ("validation"/"valid"); None always holds out
            `validation_fraction` of the training split instead; or a split name of a TFDS
            source.
        split: training split of a named/TFDS source (default "train").
        channels: 3 (RGB) or 1.
        flips: random flips for training.
        scale: input downscaling factor of DIV2K / list-of-pairs sources (default 4 for DIV2K).
        manual_dir: TFDS manual download folder (GoPro zip, DIV2K zips) for offline preparation.
        image_key: image feature of a TFDS clean source.
        cache_images: keep decoded images in memory (finite folder sources).
        photo_probability: "builtin" only: probability that a crop comes from a photograph.
        dead_leaves_kwargs: extra `DeadLeaves` arguments (radii, ...) for procedural sources.
        max_examples: TFDS sources: read at most this many examples per split. With
            ``output="numpy"`` a TFDS split is decoded into memory (``output="tf"`` streams it).
        shuffle_buffer: TFDS sources with ``output="tf"``: shuffle buffer (examples).
        workers: PyDataset workers for ``output="numpy"`` (threads, or processes with
            `use_multiprocessing`).
        use_multiprocessing: ``output="numpy"``: run the `workers` in processes rather than
            threads (NumPy degradations hold the GIL part of the time).
        degrade_on: "pipeline" (default): training batches are ``(degraded, clean)`` pairs
            degraded in NumPy on the host. "model": training batches are the clean crops
            only, for an `InDIModel` given the same degradation (see `build_task_datasets`);
            the pipeline raises a ValueError for real pairs and for degradations without a
            layer form.
    """

    image_size: "int | tuple[int, int]" = 64
    batch_size: int = 16
    seed: int = 0
    validation_fraction: "float | None" = 0.1
    data_dir: "str | os.PathLike | None" = None
    degradation: "Callable | None" = None
    output: str = "auto"
    steps_per_epoch: "int | None" = None
    validation_samples: "int | None" = None
    validation_split: "str | None" = "auto"
    split: "str | None" = None
    channels: int = 3
    flips: bool = True
    scale: "int | None" = None
    manual_dir: "str | os.PathLike | None" = None
    image_key: str = "image"
    cache_images: bool = False
    photo_probability: float = 0.5
    dead_leaves_kwargs: "dict | None" = None
    max_examples: "int | None" = None
    shuffle_buffer: int = 256
    workers: int = 1
    use_multiprocessing: bool = False
    degrade_on: str = "pipeline"

    def __post_init__(self):
        def store(name, value):
            object.__setattr__(self, name, value)

        store("image_size", _check_size(self.image_size, "image_size"))
        store("batch_size", check_positive_int(self.batch_size, "batch_size"))
        if not isinstance(self.seed, numbers.Integral) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"`seed` must be a non-negative int. Received seed={self.seed!r}.")
        store("seed", int(self.seed))
        fraction = 0.0 if self.validation_fraction is None else self.validation_fraction
        if not isinstance(fraction, numbers.Real) or not 0.0 <= fraction < 1.0:
            raise ValueError(
                f"`validation_fraction` must be in [0, 1). Received validation_fraction={fraction!r}."
            )
        store("validation_fraction", fraction)
        for name in ("steps_per_epoch", "validation_samples", "scale", "max_examples"):
            if getattr(self, name) is not None:
                store(name, check_positive_int(getattr(self, name), name))
        store("channels", check_channels(self.channels))
        if self.degradation is not None and not callable(self.degradation):
            raise ValueError(
                "`degradation` must be a keras_indi.degradations.Degradation (or a callable "
                f"`f(clean_batch, seed=...) -> degraded_batch`). Received {self.degradation!r}."
            )
        if self.output not in ("auto", "tf", "numpy"):
            raise ValueError(f"`output` must be 'auto', 'tf' or 'numpy'. Received output={self.output!r}.")
        if self.degrade_on not in DEGRADE_ON:
            raise ValueError(
                f"`degrade_on` must be one of {list(DEGRADE_ON)}. Received degrade_on={self.degrade_on!r}."
            )
        if self.validation_split is not None and not isinstance(self.validation_split, str):
            raise ValueError(
                "`validation_split` must be 'auto', None or a split name. "
                f"Received validation_split={self.validation_split!r}."
            )
        if not isinstance(self.photo_probability, numbers.Real) or not 0 <= self.photo_probability <= 1:
            raise ValueError(
                f"`photo_probability` must be in [0, 1]. Received photo_probability={self.photo_probability!r}."
            )
        store("shuffle_buffer", check_positive_int(self.shuffle_buffer, "shuffle_buffer"))
        store("workers", check_positive_int(self.workers, "workers", minimum=0))
        store("dead_leaves_kwargs", dict(self.dead_leaves_kwargs or {}))
        for name in ("flips", "cache_images", "use_multiprocessing"):
            store(name, bool(getattr(self, name)))


_OPTIONS = tuple(field.name for field in dataclasses.fields(DatasetConfig))


def _split_indices(n, validation_fraction, seed, what):
    if not validation_fraction:
        return list(range(n)), []
    if n < 2:
        raise ValueError(
            f"{what} has {n} item(s): at least 2 are needed to hold out a validation part. "
            "Pass `validation_fraction=0` (no validation pipeline) or add images."
        )
    n_val = min(n - 1, max(1, int(round(n * validation_fraction))))
    order = np.random.default_rng([seed, _SPLIT]).permutation(n)
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


# ---------------------------------------------------------------------------------------------
# Procedural sources and the sampler: (epoch, batch index) -> (degraded, clean) batch, in NumPy.
# ---------------------------------------------------------------------------------------------
class _Procedural:
    """Infinite clean crops: dead leaves, optionally mixed with a few photographs."""

    paired = False

    def __init__(self, photos, config):
        self.photos = list(photos)
        self.photo_probability = config.photo_probability if self.photos else 0.0
        self.leaves = DeadLeaves(channels=config.channels, **config.dead_leaves_kwargs)

    def crop(self, index, size, rng, flips):
        if self.photo_probability and rng.random() < self.photo_probability:
            photo = self.photos[int(rng.integers(len(self.photos)))]
            return None, transforms.crop_clean(photo, size, rng=rng, flips=flips)
        return None, self.leaves.generate(rng, size)


class PairSampler:
    """Deterministic batch factory shared by the tf.data and PyDataset outputs.

    Training sample ``s`` of epoch ``e`` uses ``numpy.random.default_rng([seed, tag, e, s])``
    for its crop, flips and (procedural sources) content; finite sources visit their items in
    a per-epoch permutation. The batch degradation seed comes from ``(seed, e, batch index)``.
    Validation ignores the epoch and never flips: every pass yields the same batches.
    With ``clean_only=True`` a batch is the clean crops alone (the same crops as with
    ``clean_only=False``), for a model that degrades them itself. The crop size, batch size,
    seed, flips and degradation (None: real pairs) come from `config`, a `DatasetConfig`.
    """

    def __init__(self, source, config, training, num_batches=None, num_samples=None, clean_only=False):
        self.source = source
        self.image_size = config.image_size
        self.batch_size = config.batch_size
        self.seed = config.seed
        self.training = training
        self.degradation = config.degradation
        self.flips = config.flips and training
        self.clean_only = bool(clean_only)
        self.epoch = 0
        if training:
            self.num_batches = num_batches
            self.num_samples = num_batches * self.batch_size
        else:
            self.num_samples = num_samples
            self.num_batches = math.ceil(num_samples / self.batch_size)
        self._finite = isinstance(source, ImageSource)
        self._orders = {}

    def _item(self, epoch, sample):
        if not self._finite:
            return None
        n = len(self.source)
        if not self.training:
            return sample % n
        block, position = divmod(sample, n)
        key = (epoch, block)
        order = self._orders.get(key)  # (thread-safe: tf.data calls this from several threads)
        if order is None:
            if len(self._orders) > 64:
                self._orders = {}
            order = np.random.default_rng([self.seed, _ORDER, epoch, block]).permutation(n)
            self._orders[key] = order
        return int(order[position])

    def batch(self, epoch, index):
        epoch, index = int(epoch), int(index)
        if not 0 <= index < self.num_batches:
            raise IndexError(f"Batch index {index} out of range [0, {self.num_batches}).")
        start = index * self.batch_size
        stop = min(start + self.batch_size, self.num_samples)
        degraded, clean = [], []
        for sample in range(start, stop):
            if self.training:
                rng = np.random.default_rng([self.seed, _TRAIN, epoch, sample])
            else:
                rng = np.random.default_rng([self.seed, _VALID, sample])
            d, c = self.source.crop(self._item(epoch, sample), self.image_size, rng, self.flips)
            degraded.append(d)
            clean.append(c)
        clean = np.stack(clean)
        if self.clean_only:
            return clean
        if self.source.paired and self.degradation is None:
            return np.stack(degraded), clean
        if self.training:
            key = np.random.default_rng([self.seed, _TRAIN_DEGRADE, epoch, index])
        else:
            key = np.random.default_rng([self.seed, _VALID_DEGRADE, index])
        return apply_degradation(self.degradation, clean, int(key.integers(2**31 - 1))), clean

    def next_epoch(self):
        epoch = self.epoch
        self.epoch += 1
        return epoch


# ---------------------------------------------------------------------------------------------
# Outputs.
# ---------------------------------------------------------------------------------------------
@keras_indi_export("keras_indi.datasets.PairedPyDataset")
class PairedPyDataset(keras.utils.PyDataset):
    """``keras.utils.PyDataset`` of ``(degraded, clean)`` float32 batches (no TensorFlow needed).

    Made by `build_task_datasets(..., output="numpy")`; usable directly in ``model.fit``
    on every backend. ``dataset[i]`` is batch ``i`` of the current epoch; the epoch (hence the
    random crops and flips of a training pipeline) advances in ``on_epoch_end``, which
    ``fit`` calls. Validation datasets return the same batches every epoch. A training
    pipeline made with ``degrade_on="model"`` yields the clean batch alone (an array, which
    ``fit`` reads as inputs without targets: `InDIModel` then degrades it on the device).
    """

    def __init__(self, sampler, workers=1, use_multiprocessing=False, max_queue_size=10):
        super().__init__(
            workers=workers, use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size
        )
        self.sampler = sampler

    def __len__(self):
        return self.sampler.num_batches

    def __getitem__(self, index):
        if index < 0:
            index += len(self)
        return self.sampler.batch(self.sampler.epoch, index)

    def on_epoch_end(self):
        if self.sampler.training:
            self.sampler.epoch += 1

    @property
    def batch_size(self):
        return self.sampler.batch_size

    @property
    def image_size(self):
        return self.sampler.image_size


def _tf_dataset(sampler, channels):
    import tensorflow as tf

    def indices():
        epoch = sampler.next_epoch() if sampler.training else 0
        for index in range(sampler.num_batches):
            yield epoch, index

    height, width = sampler.image_size
    batch_dim = sampler.batch_size if sampler.training else None
    shape = (batch_dim, height, width, channels)

    def make(epoch, index):
        degraded, clean = tf.numpy_function(
            sampler.batch, [epoch, index], [tf.float32, tf.float32], stateful=False
        )
        degraded.set_shape(shape)
        clean.set_shape(shape)
        return degraded, clean

    def make_clean(epoch, index):
        clean = tf.numpy_function(sampler.batch, [epoch, index], tf.float32, stateful=False)
        clean.set_shape(shape)
        return clean

    dataset = tf.data.Dataset.from_generator(
        indices, output_signature=(tf.TensorSpec((), tf.int64), tf.TensorSpec((), tf.int64))
    )
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(sampler.num_batches))
    dataset = dataset.map(
        make_clean if sampler.clean_only else make, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


def _resolve_output(output):
    if output == "auto":
        return "tf" if tensorflow_available() else "numpy"
    if output == "tf" and not tensorflow_available():
        raise ValueError(
            "`output='tf'` needs TensorFlow, which is not installed (or cannot be imported). "
            "Use `output='numpy'` (a keras.utils.PyDataset) or install tensorflow."
        )
    return output


# ---------------------------------------------------------------------------------------------
# Source resolution.
# ---------------------------------------------------------------------------------------------
def _resolve_source(source, config):
    """Return ``(train_source, official_validation_source or None)``.

    Sources are `ImageSource` objects (TFDS ones included), or "builtin" / "dead_leaves" / a
    `DeadLeaves` (procedural). The validation source is an official held-out split (GoPro
    "test", DPDD "val", DIV2K "valid"); None means: hold out `validation_fraction` of the
    training items."""
    channels = config.channels
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if isinstance(source, str):
        name = source
        if name in ("builtin", "dead_leaves"):
            return name, None
        if name in ("gopro", "dpdd", "div2k"):
            return _named_paired(name, config)
        path = pathlib.Path(name).expanduser()
        if path.is_dir():
            return ImageFolder(path, recursive=True, channels=channels, cache=config.cache_images), None
        if name.startswith("tfds:") or _TFDS_NAME.match(name):
            tfds_name = name[5:] if name.startswith("tfds:") else name
            if not tensorflow_available():
                raise ValueError(
                    f"`source={name!r}` is not a folder and not one of {NAMED_SOURCES}; as a TFDS name it "
                    "needs tensorflow and tensorflow-datasets, which are not installed."
                )
            return tfds_sources.tfds_clean_source(
                tfds_name, split=config.split or "train", image_key=config.image_key, data_dir=config.data_dir
            ), None
        raise ValueError(
            f"`source={name!r}` is neither one of {NAMED_SOURCES}, an existing folder, nor a TFDS "
            "dataset name. Check the path."
        )
    if isinstance(source, np.ndarray):
        if source.ndim == 4 or (source.ndim == 3 and source.shape[-1] not in (1, 3, 4)):
            images = source
        elif source.ndim == 3:
            images = source[None]
        else:
            raise ValueError(
                "`source` arrays must be (num_images, height, width[, channels]) or one image "
                f"(height, width, channels). Received shape {source.shape}."
            )
        if len(images) == 0:
            raise ValueError("`source` is an empty array.")
        if np.issubdtype(images.dtype, np.floating):
            # Check the value range now rather than at the first batch.
            to_model_image(np.array([[images.min(), images.max()]]), channels, what="`source` array")
        return _ArrayImages(images, channels, what="`source`"), None
    if isinstance(source, (list, tuple)):
        if not source:
            raise ValueError("`source` is an empty list.")
        if all(isinstance(item, tuple) and len(item) == 2 for item in source):
            return _ArrayPairs(list(source), config.scale or 1, channels), None
        return _ArrayImages([np.asarray(s) for s in source], channels), None
    if isinstance(source, (ImageSource, DeadLeaves)):
        return source, None
    raise ValueError(
        f"Unsupported `source` of type {type(source).__name__}. Use one of {NAMED_SOURCES}, a folder path, "
        "a NumPy array, a TFDS name, ImagePairs/ImageFolder/DeadLeaves, a TFDS source object or "
        "another ImageSource."
    )


def _named_paired(name, config):
    """Train and official validation sources of GoPro / DPDD / DIV2K."""
    split = config.split or "train"
    data_dir, manual_dir, channels, cache = config.data_dir, config.manual_dir, config.channels, config.cache_images

    def with_validation(make, validation_split):
        return make(split), (make(validation_split) if split == "train" else None)

    if name == "dpdd":
        if data_dir is None:
            raise ValueError("`source='dpdd'` needs `data_dir`: the extracted dd_dp_dataset_png folder.")
        return with_validation(lambda s: dpdd_pairs(data_dir, s, channels=channels, cache=cache), "val")
    root = pathlib.Path(os.fspath(data_dir)).expanduser() if data_dir is not None else None
    if name == "gopro":
        if root is not None and any((root / sub).is_dir() for sub in ("train", "test", "GOPRO_Large")):
            return with_validation(lambda s: gopro_pairs(root, s, channels=channels, cache=cache), "test")
        return with_validation(
            lambda s: tfds_sources.gopro_tfds(s, data_dir=data_dir, manual_dir=manual_dir), "test"
        )
    # div2k
    scale = config.scale or 4
    if root is not None and any((root / sub).is_dir() for sub in ("DIV2K_train_HR", "DIV2K_valid_HR")):
        return with_validation(
            lambda s: div2k_pairs(root, s, scale=scale, channels=channels, cache=cache), "valid"
        )
    return with_validation(
        lambda s: tfds_sources.div2k_tfds(f"bicubic_x{scale}", split=s, data_dir=data_dir, manual_dir=manual_dir),
        "validation",
    )


def _procedural_sources(source, config):
    """``(train, validation or None, config)`` for "builtin", "dead_leaves" or a `DeadLeaves`
    (whose radii and channels are used)."""
    photos_train = photos_val = []
    if isinstance(source, DeadLeaves):
        leaves = source.get_config()
        for name in ("image_size", "seed"):
            leaves.pop(name)
        config = dataclasses.replace(
            config, channels=leaves.pop("channels"), dead_leaves_kwargs={**leaves, **config.dead_leaves_kwargs}
        )
    elif source == "builtin":
        photos = _builtin_images_cached(None, config.channels)
        train_idx, val_idx = _split_indices(
            len(photos), config.validation_fraction, config.seed, "The built-in photo set"
        )
        photos_train = [photos[i] for i in train_idx]
        photos_val = [photos[i] for i in val_idx] or photos_train
    validation = _Procedural(photos_val, config) if config.validation_fraction else None
    return _Procedural(photos_train, config), validation, config


def _finite_sources(train, official_val, config):
    """``(train, validation or None)``: the official validation split, or a held-out part."""
    if official_val is not None:
        return train, official_val
    train_idx, val_idx = _split_indices(len(train), config.validation_fraction, config.seed, "`source`")
    if not val_idx:
        return train, None
    return train.subset(train_idx), train.subset(val_idx)


# ---------------------------------------------------------------------------------------------
# The entry point.
# ---------------------------------------------------------------------------------------------
@keras_indi_export("keras_indi.datasets.build_task_datasets")
def build_task_datasets(task=None, source="builtin", config=None, **options):
    """Training and validation pipelines of ``(degraded, clean)`` batches for an InDI task.

    Batches are float32 ``(batch_size, image_size, image_size, channels)`` in [-1, 1]
    (NHWC), ``degraded`` and ``clean`` of the same shape, ready for ``model.fit(train,
    validation_data=validation)``. Training crops are random, with random left-right and
    up-down flips applied to both images; validation crops are fixed (seeded) and never
    flipped, so every validation pass sees the same batches. Everything is reproducible from
    ``seed``.

    Switching from the offline built-in data to real data is one argument::

        train, val = build_task_datasets("motion_deblurring")                     # offline
        train, val = build_task_datasets("motion_deblurring", source="gopro",
                                         data_dir="~/data/GOPRO_Large")           # GoPro pairs

    Sources (``source=``):

    * ``"builtin"`` (default): scikit-image's photographs mixed with procedural dead leaves
      (probability `photo_probability` for a photo); nothing is downloaded.
    * ``"dead_leaves"``: procedural dead leaves only (`DeadLeaves`).
    * ``"gopro"`` / ``"dpdd"`` / ``"div2k"``: real pairs from `data_dir` (see `gopro_pairs`,
      `dpdd_pairs`, `div2k_pairs`). ``"gopro"`` falls back to the TFDS GoPro builder and
      ``"div2k"`` to TFDS ``div2k/bicubic_x{scale}`` (`div2k_tfds`) when `data_dir` does not
      hold the extracted folders (prepare offline with `manual_dir`). Real pairs are used when
      `task` is the dataset's own task (or None); for another task (e.g. ``"jpeg"`` on DIV2K,
      as in the paper) the clean targets are degraded synthetically.
    * a folder path (clean images, searched recursively), a NumPy array ``(n, h, w[, c])`` or
      one image ``(h, w, c)`` (uint8, uint16 or float in [-1, 1]), a list of images, an
      `ImageFolder`, a `DeadLeaves` (its radii and channels are used; the pipeline `seed`
      replaces its seed), a `tfds_clean_source` object, or any other TFDS image dataset name
      (``"tfds:NAME"`` or a bare name such as ``"oxford_flowers102"``, with `image_key`).
    * explicit pairs: an `ImagePairs` (e.g. `paired_image_folder`), a `div2k_tfds` /
      `gopro_tfds` object, or a list of ``(degraded, clean)`` array tuples (with `scale` if
      the inputs are smaller). These are used as real pairs whatever `task` is, unless a
      `degradation` is given.

    Clean-only sources become synthetic pairs on the fly: ``degraded =
    degradation(clean_batch, seed=...)`` with a seed derived from `seed`, the epoch and the
    batch index.

    Degrading on the device: the synthetic degradation runs in NumPy on the host, which can
    be slower than a GPU trains (blur and bicubic resizing cost far more than cropping). With
    ``degrade_on="model"`` the training pipeline yields the clean crops only (the same crops
    as with ``"pipeline"`` for the same `seed`) and `InDIModel` degrades them inside its
    compiled train step with the degradation's Keras-layer form; validation batches stay
    ``(degraded, clean)`` pairs made in the pipeline, so validation is fixed and reproducible.
    Give the model the same degradation::

        train, val = build_task_datasets("super_resolution", seed=0, degrade_on="model")
        model = InDIModel(network, degradation=get_task_degradation("super_resolution", seed=0))
        model.compile()
        model.fit(train, validation_data=val)

    This needs a clean-only (or synthetically degraded) source and a degradation with a layer
    form (``supports_layer``): noise, pure noise, Gaussian/defocus blur, bicubic downsampling
    and `Compose` of those, i.e. the tasks "denoising", "generation", "defocus_deblurring"
    and "super_resolution". JPEG and motion blur run in NumPy only, and real pairs (GoPro,
    DPDD, DIV2K for their own task) have no synthetic degradation: use ``"pipeline"`` there.

    Options (crop size, batch size, seed, validation, output, ...) are the fields of a
    `DatasetConfig`, given as one `config` or as keywords (which override `config`'s)::

        config = DatasetConfig(image_size=128, batch_size=8, seed=1)
        train, val = build_task_datasets("jpeg", "div2k", config, data_dir="~/data/DIV2K")

    Args:
        task: one of ``keras_indi.degradations.TASKS`` (its default degradation comes from
            ``get_task_degradation(task, seed=seed)``), or None with a paired source or an
            explicit `degradation`.
        source: see above; any `ImageSource` works too.
        config: a `DatasetConfig`, or None for the defaults.
        **options: `DatasetConfig` fields (``image_size=``, ``batch_size=``, ``seed=``,
            ``validation_fraction=``, ``data_dir=``, ``degradation=``, ``output=``,
            ``steps_per_epoch=``, ``degrade_on=``, ...) overriding those of `config`.

    Returns:
        ``(train, validation)``: two ``tf.data.Dataset`` or two `PairedPyDataset`
        (``validation`` is None when ``validation_fraction=0`` and no official split applies).
        With ``degrade_on="model"``, ``train`` yields clean batches only.
        The pipelines shuffle themselves: ``fit(train, ..., shuffle=False)`` avoids Keras'
        warning that its ``shuffle`` is ignored for a ``tf.data.Dataset``.
    """
    task = _check_task(task)
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise TypeError(
            f"build_task_datasets() got unexpected keyword argument(s) {unknown}. The options are "
            f"the fields of DatasetConfig: {list(_OPTIONS)}."
        )
    if config is None:
        config = DatasetConfig(**options)
    elif not isinstance(config, DatasetConfig):
        raise ValueError(f"`config` must be a DatasetConfig or None. Received config={config!r}.")
    elif options:
        config = dataclasses.replace(config, **options)
    output = _resolve_output(config.output)
    named = source if isinstance(source, str) and source in NAMED_SOURCES else None

    train_source, official_val = _resolve_source(source, config)
    if config.validation_split is None:
        official_val = None
    elif config.validation_split != "auto":
        official_val = _tfds_split(train_source, config.validation_split)

    # Real pairs or synthetic ones?
    paired = getattr(train_source, "paired", False)
    degradation = config.degradation
    use_real_pairs = (
        paired and degradation is None and (task is None or NATIVE_TASKS.get(named) in (None, task))
    )
    if paired and not use_real_pairs:
        train_source = train_source.clean_images()
        official_val = None if official_val is None else official_val.clean_images()
    if not use_real_pairs and degradation is None:
        if task is None:
            raise ValueError(
                "This source holds clean images only: pass a `task` (its default degradation is used) "
                "or a `degradation`."
            )
        from keras_indi.degradations import get_task_degradation

        config = dataclasses.replace(config, degradation=get_task_degradation(task, seed=config.seed))
    clean_only = config.degrade_on == "model"
    if clean_only:
        _check_degrade_on_model(use_real_pairs, config.degradation, task, named)

    if getattr(train_source, "streaming", False):
        if official_val is None and config.validation_fraction:
            train_source, official_val = train_source.split_fraction(config.validation_fraction)
        if output == "tf":
            if not clean_only:
                return tfds_sources.tfds_pipelines(train_source, official_val, config)
            # Same crops as with degrade_on="pipeline": a no-op degradation, then keep the clean.
            no_degradation = dataclasses.replace(config, degradation=_no_degradation)
            train, _ = tfds_sources.tfds_pipelines(train_source, None, no_degradation)
            val = None
            if official_val is not None:
                _, val = tfds_sources.tfds_pipelines(train_source, official_val, config)
            return train.map(lambda degraded, clean: clean), val
        train_source = train_source.materialize(config.max_examples, config.channels)
        if official_val is not None:
            official_val = official_val.materialize(config.max_examples, config.channels)

    if isinstance(train_source, ImageSource):
        train_source, val_source = _finite_sources(train_source, official_val, config)
        num_batches = config.steps_per_epoch or max(1, math.ceil(len(train_source) / config.batch_size))
        num_val = None if val_source is None else (config.validation_samples or len(val_source))
    else:
        train_source, val_source, config = _procedural_sources(train_source, config)
        num_batches = config.steps_per_epoch or _DEFAULT_PROCEDURAL_STEPS
        num_val = config.validation_samples or 4 * config.batch_size

    def pipeline(sampler):
        if output == "tf":
            return _tf_dataset(sampler, config.channels)
        return PairedPyDataset(sampler, workers=config.workers, use_multiprocessing=config.use_multiprocessing)

    train = pipeline(PairSampler(train_source, config, True, num_batches=num_batches, clean_only=clean_only))
    if val_source is None:
        return train, None
    return train, pipeline(PairSampler(val_source, config, False, num_samples=num_val))


def _check_task(task):
    from keras_indi.degradations import TASKS as known
    if isinstance(task, str):
        task = task.strip().lower().replace("-", "_").replace(" ", "_")
    if task is not None and task not in known:
        raise ValueError(f"`task` must be one of {list(known)} or None. Received task={task!r}.")
    return task


def _check_degrade_on_model(use_real_pairs, degradation, task, named):
    """Raise a ValueError when ``degrade_on="model"`` cannot apply, saying why and what to do."""
    if use_real_pairs:
        if named:
            what = f"source={named!r} gives real (degraded, clean) pairs for task {NATIVE_TASKS[named]!r}"
        else:
            what = "`source` holds real (degraded, clean) pairs (used as they are, whatever `task` is)"
        raise ValueError(
            f"degrade_on='model' needs clean images and a synthetic degradation, but {what}: real "
            "pairs have no synthetic degradation to run on the device. Use degrade_on='pipeline' "
            "(the default), or pass a `degradation` to degrade the clean targets synthetically."
        )
    name = type(degradation).__name__
    if not getattr(degradation, "supports_layer", False):
        if hasattr(degradation, "layer_unsupported_reason"):
            why = f"no Keras-layer form: {degradation.layer_unsupported_reason}"
        else:
            why = "not a keras_indi Degradation with a Keras-layer form (`supports_layer`)"
        of_task = f" (the degradation of task {task!r})" if task else ""
        raise ValueError(
            f"{name}{of_task} runs in NumPy only ({why}), so the model cannot apply it on the "
            "device: use degrade_on='pipeline'."
        )


def _no_degradation(clean, seed=None):
    return clean


def _tfds_split(source, split):
    if getattr(source, "streaming", False):
        return source.with_split(split)
    raise ValueError(
        f"`validation_split={split!r}` names a split, which only TFDS sources have. Use "
        "'auto' or None (hold out `validation_fraction`)."
    )


@keras_indi_export("keras_indi.datasets.take_arrays")
def take_arrays(dataset, num_batches=1):
    """The first `num_batches` batches of a pipeline as NumPy ``(degraded, clean)`` arrays.

    Works with the ``tf.data.Dataset`` and `PairedPyDataset` outputs of
    `build_task_datasets` (and any iterable of ``(x, y)`` batches). Handy in notebooks::

        degraded, clean = take_arrays(validation, num_batches=2)
        clean = take_arrays(train, num_batches=2)  # a degrade_on="model" training pipeline

    A pipeline of clean batches only (``degrade_on="model"``) gives one array, the clean
    images. Note that iterating a training pipeline starts a new epoch (new random crops).
    """
    num_batches = check_positive_int(num_batches, "num_batches")
    if dataset is None:
        raise ValueError("`dataset` is None (no validation pipeline was built?).")
    columns = []
    if isinstance(dataset, keras.utils.PyDataset):
        count = min(num_batches, len(dataset))
        batches = (dataset[i] for i in range(count))
    elif hasattr(dataset, "take") and hasattr(dataset, "as_numpy_iterator"):
        batches = dataset.take(num_batches).as_numpy_iterator()
    else:
        batches = iter(dataset)
    for i, batch in enumerate(batches):
        if i >= num_batches:
            break
        if not isinstance(batch, (tuple, list)):
            batch = (batch,)  # clean images only
        if len(batch) not in (1, 2) or (columns and len(batch) != len(columns)):
            raise ValueError("`dataset` must yield (degraded, clean) pairs of batches, or clean batches.")
        if not columns:
            columns = [[] for _ in batch]
        for column, array in zip(columns, batch):
            column.append(keras.ops.convert_to_numpy(array) if not isinstance(array, np.ndarray) else array)
    if not columns:
        raise ValueError("`dataset` is empty.")
    arrays = tuple(np.concatenate(column) for column in columns)
    return arrays if len(arrays) == 2 else arrays[0]
