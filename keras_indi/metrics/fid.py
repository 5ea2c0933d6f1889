"""Fréchet Inception Distance (FID) and Kernel Inception Distance (KID).

The maths works on feature arrays (NumPy, float64): :func:`frechet_distance` and
:func:`kernel_inception_distance`. The :class:`FID` and :class:`KID` accumulators compute the
features with either a feature extractor you provide or ``keras.applications.InceptionV3``
built with ``weights=None`` and loaded from a local weights file. Nothing is ever downloaded.

Getting InceptionV3 weights (on a machine with internet access) for ``inception_weights_path``::

    # either the file Keras itself uses (no top, 2048-d average-pooled features):
    #   https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/
    #   inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5
    # or save them from Keras:
    import keras
    model = keras.applications.InceptionV3(include_top=False, pooling="avg")  # downloads
    model.save_weights("inception_v3_notop.weights.h5")

Note: Keras' InceptionV3 is not the 2015 TensorFlow graph used by the reference FID code
(``pytorch-fid``, ``clean-fid``, TTUR). Numbers from it are consistent within this library
and useful to compare methods on the same data, but are not comparable with FIDs published in
papers. For paper-comparable values, pass a ``feature_extractor`` wrapping that network.
"""

import numbers
import os

import keras
import numpy as np

from keras_indi.api_export import keras_indi_export
from keras_indi.backend.compile import predict_batch
from keras_indi.utils.validation import check_positive_int


def _features(value, name):
    if value is None:
        raise ValueError(f"`{name}` is required but received None.")
    if keras.ops.is_tensor(value):
        value = keras.ops.convert_to_numpy(value)
    value = np.asarray(value)
    if not (np.issubdtype(value.dtype, np.floating) or np.issubdtype(value.dtype, np.integer)):
        raise ValueError(f"`{name}` must be a numeric array. Received dtype {value.dtype}.")
    if value.ndim != 2:
        raise ValueError(
            f"`{name}` must be a 2-D array of features (num_samples, feature_dim). Received shape "
            f"{value.shape}. Flatten or pool the features first."
        )
    if value.shape[0] < 2:
        raise ValueError(f"`{name}` needs at least 2 samples. Received shape {value.shape}.")
    if not np.isfinite(value).all():
        raise ValueError(f"`{name}` contains NaN or Inf values.")
    return value.astype("float64")


def _check_same_dim(a, b):
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            "`features_a` and `features_b` must have the same feature dimension. Received "
            f"{a.shape[1]} and {b.shape[1]}."
        )


def _sqrtm_psd(matrix):
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


@keras_indi_export("keras_indi.metrics.gaussian_frechet_distance")
def gaussian_frechet_distance(mean_a, cov_a, mean_b, cov_b):
    """Fréchet (2-Wasserstein squared) distance between two Gaussians.

    ``|mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a^1/2 S_b S_a^1/2)^1/2)``, computed with
    symmetric eigendecompositions in float64 (stable for singular covariances; the trace term
    equals ``tr sqrt(S_a S_b)``).

    >>> gaussian_frechet_distance(np.zeros(2), np.eye(2), np.ones(2), 4 * np.eye(2))  # 2 + 2 * (2 - 1)^2
    4.0
    """
    mean_a = np.asarray(mean_a, "float64").reshape(-1)
    mean_b = np.asarray(mean_b, "float64").reshape(-1)
    cov_a = np.atleast_2d(np.asarray(cov_a, "float64"))
    cov_b = np.atleast_2d(np.asarray(cov_b, "float64"))
    dim = mean_a.shape[0]
    for name, value, shape in (
        ("mean_b", mean_b, (dim,)),
        ("cov_a", cov_a, (dim, dim)),
        ("cov_b", cov_b, (dim, dim)),
    ):
        if value.shape != shape:
            raise ValueError(
                f"`{name}` must have shape {shape} to match `mean_a`. Received {value.shape}."
            )
        if not np.isfinite(value).all():
            raise ValueError(f"`{name}` contains NaN or Inf values.")
    cov_a = 0.5 * (cov_a + cov_a.T)
    cov_b = 0.5 * (cov_b + cov_b.T)
    root_a = _sqrtm_psd(cov_a)
    middle = root_a @ cov_b @ root_a
    trace_sqrt = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(0.5 * (middle + middle.T)), 0.0, None)))
    distance = np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_sqrt
    return float(max(distance, 0.0))


@keras_indi_export("keras_indi.metrics.frechet_distance")
def frechet_distance(features_a, features_b):
    """Fréchet distance between Gaussians fitted to two feature sets (the FID formula).

    Means and unbiased covariances (``ddof=1``, as ``pytorch-fid``) of ``(num_samples,
    feature_dim)`` arrays, then :func:`gaussian_frechet_distance`. With Inception pool
    features this is the FID. Use thousands of samples for FIDs you report: the estimate is
    biased upwards for small sets.

    >>> rng = np.random.default_rng(0)
    >>> features = rng.normal(size=(500, 4))
    >>> round(frechet_distance(features, features), 6)
    0.0
    >>> round(frechet_distance(features, features + 1.0), 6)  # mean shift of 1 in 4 dimensions
    4.0
    """
    a = _features(features_a, "features_a")
    b = _features(features_b, "features_b")
    _check_same_dim(a, b)
    n_a, n_b, dim = a.shape[0], b.shape[0], a.shape[1]
    if n_a * n_b >= dim * dim:
        return gaussian_frechet_distance(
            a.mean(axis=0), np.cov(a, rowvar=False), b.mean(axis=0), np.cov(b, rowvar=False)
        )
    # Fewer samples than dimensions: with centred A, B, S_a = A^T A / (n_a - 1) and
    # S_b = B^T B / (n_b - 1), the non-zero eigenvalues of S_a S_b are the squared singular
    # values of A B^T / sqrt((n_a - 1)(n_b - 1)), so tr sqrt(S_a S_b) is its nuclear norm:
    # exact, and much cheaper than a (dim x dim) matrix square root.
    centred_a = a - a.mean(axis=0)
    centred_b = b - b.mean(axis=0)
    cross = centred_a @ centred_b.T / np.sqrt((n_a - 1) * (n_b - 1))
    trace_sqrt = np.sum(np.linalg.svd(cross, compute_uv=False))
    distance = (
        np.sum((a.mean(axis=0) - b.mean(axis=0)) ** 2)
        + np.sum(centred_a**2) / (n_a - 1)
        + np.sum(centred_b**2) / (n_b - 1)
        - 2.0 * trace_sqrt
    )
    return float(max(distance, 0.0))


@keras_indi_export("keras_indi.metrics.kernel_inception_distance")
def kernel_inception_distance(
    features_a,
    features_b,
    num_subsets=100,
    subset_size=1000,
    degree=3,
    coef0=1.0,
    seed=0,
    return_std=False,
):
    """Kernel Inception Distance: unbiased MMD^2 with a polynomial kernel (Bińkowski et al. 2018).

    ``k(x, y) = (x . y / feature_dim + coef0) ^ degree``; the unbiased MMD^2 estimate is
    averaged over `num_subsets` random subsets of ``min(subset_size, n_a, n_b)`` samples
    drawn without replacement from each set (as ``clean-fid`` / ``torch-fidelity``). Unbiased:
    it can be slightly negative for sets from the same distribution.

    Args:
        features_a, features_b: ``(num_samples, feature_dim)`` arrays.
        num_subsets, subset_size: subset averaging (100 x 1000 by default).
        degree, coef0: polynomial kernel parameters.
        seed: seeds the subset sampling.
        return_std: also return the standard deviation over subsets.

    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(200, 8))
    >>> abs(kernel_inception_distance(a, rng.normal(size=(200, 8)))) < 0.1  # same distribution
    True
    >>> kernel_inception_distance(a, a + 1.0) > 1.0  # shifted
    True
    """
    a = _features(features_a, "features_a")
    b = _features(features_b, "features_b")
    _check_same_dim(a, b)
    for name, value in (
        ("num_subsets", num_subsets),
        ("subset_size", subset_size),
        ("degree", degree),
    ):
        check_positive_int(value, name)
    size = min(int(subset_size), a.shape[0], b.shape[0])
    dim = a.shape[1]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(int(num_subsets)):
        x = a[rng.choice(a.shape[0], size, replace=False)]
        y = b[rng.choice(b.shape[0], size, replace=False)]
        k_xx = (x @ x.T / dim + coef0) ** degree
        k_yy = (y @ y.T / dim + coef0) ** degree
        k_xy = (x @ y.T / dim + coef0) ** degree
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (size * (size - 1))
        values.append(within - 2.0 * k_xy.mean())
    values = np.asarray(values)
    if return_std:
        return float(values.mean()), float(values.std())
    return float(values.mean())


@keras_indi_export("keras_indi.metrics.InceptionFeatureExtractor")
class InceptionFeatureExtractor:
    """2048-d average-pooled ``keras.applications.InceptionV3`` features from a local weights file.

    Builds ``InceptionV3(include_top=False, weights=None, pooling="avg")`` and loads
    `weights_path` (see the module docstring for where to get the file; nothing is downloaded).
    Images in [-1, 1] (the library convention, which is also InceptionV3's own preprocessing)
    are resized bilinearly to ``image_size`` and grayscale images are repeated to RGB.

    Args:
        weights_path: ``.h5`` / ``.weights.h5`` file of the no-top InceptionV3.
        image_size: side the images are resized to (299 as in the FID literature).
        batch_size: images per forward pass.
        value_range: ``(low, high)`` of the images you will pass; mapped to [-1, 1].
    """

    def __init__(self, weights_path, image_size=299, batch_size=32, value_range=(-1.0, 1.0)):
        if weights_path is None or not isinstance(weights_path, (str, os.PathLike)):
            raise ValueError(
                "`weights_path` must be the path of InceptionV3 (no top) weights, e.g. "
                "'inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5'. See "
                f"`keras_indi.metrics.fid` for how to get it. Received {weights_path!r}."
            )
        if not os.path.isfile(weights_path):
            raise ValueError(
                f"InceptionV3 weights file not found: {os.fspath(weights_path)!r}. Download "
                "'inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5' on a machine with "
                "internet access (see the `keras_indi.metrics.fid` docstring) and pass its path."
            )
        if (
            isinstance(image_size, bool)
            or not isinstance(image_size, numbers.Integral)
            or image_size < 75
        ):
            raise ValueError(
                f"`image_size` must be an integer >= 75 (InceptionV3). Received {image_size!r}."
            )
        self.weights_path = os.fspath(weights_path)
        self.image_size = int(image_size)
        self.batch_size = int(batch_size)
        self.value_range = tuple(float(v) for v in value_range)
        self.model = keras.applications.InceptionV3(
            include_top=False,
            weights=None,
            pooling="avg",
            input_shape=(self.image_size, self.image_size, 3),
        )
        try:
            self.model.load_weights(self.weights_path)
        except Exception as error:  # re-raise with what to do
            raise ValueError(
                f"Could not load InceptionV3 weights from {self.weights_path!r}: {error}. The file "
                "must hold the no-top InceptionV3 weights (include_top=False)."
            ) from error

    def __call__(self, images):
        images = _image_batch(images, "images")
        low, high = self.value_range
        outputs = []
        for start in range(0, images.shape[0], self.batch_size):
            batch = images[start : start + self.batch_size]
            batch = 2.0 * (batch - low) / (high - low) - 1.0
            if batch.shape[-1] == 1:
                batch = np.repeat(batch, 3, axis=-1)
            batch = keras.ops.image.resize(
                batch, (self.image_size, self.image_size), interpolation="bilinear", antialias=True
            )
            features = predict_batch(self.model, batch)  # compiled on JAX, eager elsewhere
            outputs.append(keras.ops.convert_to_numpy(features))
        return np.concatenate(outputs, axis=0)


def _image_batch(images, name):
    if keras.ops.is_tensor(images):
        images = keras.ops.convert_to_numpy(images)
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(
            f"`{name}` must be a batch of images (batch, height, width, channels). Received shape "
            f"{images.shape}."
        )
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(
            f"`{name}` must be floating point in [-1, 1]. Received dtype {images.dtype}. Convert "
            "[0, 255] integers with `x.astype('float32') / 127.5 - 1`."
        )
    if not np.isfinite(images).all():
        raise ValueError(f"`{name}` contains NaN or Inf values.")
    return images.astype("float32")


class _FeatureDistance:
    """Accumulate features of real and generated images, then compare the two sets."""

    def __init__(
        self, feature_extractor=None, inception_weights_path=None, image_size=299, name=None
    ):
        if (feature_extractor is None) == (inception_weights_path is None):
            raise ValueError(
                f"{type(self).__name__} needs exactly one of `feature_extractor` (a callable "
                "mapping (batch, h, w, c) images to (batch, dim) features, e.g. a Keras model) or "
                "`inception_weights_path` (a local InceptionV3 no-top weights file; see "
                "`keras_indi.metrics.fid` for how to get it). Received "
                f"feature_extractor={feature_extractor!r}, "
                f"inception_weights_path={inception_weights_path!r}."
            )
        if feature_extractor is not None and not callable(feature_extractor):
            raise ValueError(
                f"`feature_extractor` must be callable. Received {type(feature_extractor).__name__}."
            )
        self.inception_weights_path = (
            None if inception_weights_path is None else os.fspath(inception_weights_path)
        )
        self.image_size = image_size
        if feature_extractor is None:
            feature_extractor = InceptionFeatureExtractor(
                inception_weights_path, image_size=image_size
            )
        self.feature_extractor = feature_extractor
        self.name = name
        self.reset_state()

    def _extract(self, images, name):
        images = _image_batch(images, name)
        features = self.feature_extractor(images)
        if keras.ops.is_tensor(features):
            features = keras.ops.convert_to_numpy(features)
        features = np.asarray(features, "float64")
        features = features.reshape(features.shape[0], -1) if features.ndim > 2 else features
        if features.ndim != 2 or features.shape[0] != images.shape[0]:
            raise ValueError(
                "The feature extractor must return one feature vector per image, shape "
                f"({images.shape[0]}, dim). Received shape {features.shape}."
            )
        return features

    def update_state(self, real_images, generated_images=None):
        """Add a batch of real (clean) and/or generated (restored) images; either may be None."""
        if real_images is not None:
            self.real_features.append(self._extract(real_images, "real_images"))
        if generated_images is not None:
            self.generated_features.append(self._extract(generated_images, "generated_images"))

    def reset_state(self):
        self.real_features = []
        self.generated_features = []

    def _stacked(self):
        if not self.real_features or not self.generated_features:
            raise ValueError(
                f"{type(self).__name__}.result() needs real and generated images: call "
                "update_state(real_images, generated_images) first."
            )
        return np.concatenate(self.real_features), np.concatenate(self.generated_features)

    def __call__(self, real_images, generated_images):
        """One-shot value for two image sets (does not change the accumulated state)."""
        real = self._extract(real_images, "real_images")
        generated = self._extract(generated_images, "generated_images")
        return self._distance(real, generated)

    def result(self):
        return self._distance(*self._stacked())

    def get_config(self):
        if self.inception_weights_path is None:
            raise ValueError(
                f"{type(self).__name__} with a custom `feature_extractor` cannot be serialized; "
                "only the `inception_weights_path` form can."
            )
        return {
            "inception_weights_path": self.inception_weights_path,
            "image_size": self.image_size,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras_indi_export("keras_indi.metrics.FID")
class FID(_FeatureDistance):
    """Fréchet Inception Distance between accumulated real and generated images.

    Args:
        feature_extractor: callable ``images -> (batch, dim)`` features, e.g. a Keras model.
        inception_weights_path: instead, a local InceptionV3 no-top weights file, see
            :class:`InceptionFeatureExtractor` (never downloaded).
        image_size: input side of InceptionV3 (with `inception_weights_path`).
        name: optional label.

    Example with a stand-in extractor (use Inception features for real evaluations):

    >>> fid = FID(feature_extractor=lambda images: images.reshape(len(images), -1)[:, :16])
    >>> images = np.random.default_rng(0).uniform(-1, 1, (64, 8, 8, 1)).astype("float32")
    >>> fid.update_state(images, images)
    >>> round(fid.result(), 6)
    0.0
    """

    def __init__(
        self, feature_extractor=None, inception_weights_path=None, image_size=299, name="fid"
    ):
        super().__init__(feature_extractor, inception_weights_path, image_size, name)

    def _distance(self, real, generated):
        return frechet_distance(real, generated)


@keras_indi_export("keras_indi.metrics.KID")
class KID(_FeatureDistance):
    """Kernel Inception Distance between accumulated real and generated images.

    Same feature arguments as :class:`FID`; `num_subsets`, `subset_size` and `seed` are
    passed to :func:`kernel_inception_distance`. Better than FID for small sets (unbiased).

    >>> kid = KID(feature_extractor=lambda images: images.reshape(len(images), -1))
    >>> images = np.random.default_rng(0).uniform(-1, 1, (32, 4, 4, 1)).astype("float32")
    >>> kid.update_state(images, images + 0.5)
    >>> kid.result() > 0
    True
    """

    def __init__(
        self,
        feature_extractor=None,
        inception_weights_path=None,
        num_subsets=100,
        subset_size=1000,
        seed=0,
        image_size=299,
        name="kid",
    ):
        self.num_subsets = num_subsets
        self.subset_size = subset_size
        self.seed = seed
        super().__init__(feature_extractor, inception_weights_path, image_size, name)

    def _distance(self, real, generated):
        return kernel_inception_distance(
            real,
            generated,
            num_subsets=self.num_subsets,
            subset_size=self.subset_size,
            seed=self.seed,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {"num_subsets": self.num_subsets, "subset_size": self.subset_size, "seed": self.seed}
        )
        return config
