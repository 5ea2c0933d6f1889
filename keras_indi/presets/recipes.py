"""The data and degradations of the trained presets, shared by the training script, the
equal-budget studies, the tutorials and the tests.

Everything is offline: clean crops come from the scikit-image photographs in
`TRAINING_IMAGES` (and procedural dead leaves), never from `HELD_OUT_IMAGES`, which the presets'
metrics, the quickstart and the tutorials use as unseen test photographs.
"""

import numpy as np

from keras_indi.datasets.sources import BUILTIN_IMAGE_NAMES, builtin_images, dead_leaves_images

#: Photographs never used for training: the presets' validation images.
HELD_OUT_IMAGES = ("astronaut", "chelsea", "coffee")
#: Photographs the presets train on.
TRAINING_IMAGES = tuple(name for name in BUILTIN_IMAGE_NAMES if name not in HELD_OUT_IMAGES)

#: The degradation of each preset task: (class name in keras_indi.degradations, arguments),
#: the InDI input-noise level eps, the clean data and the network's `degradation_std`
#: (root-mean-square of y - x on the training crops, measured by `estimate_degradation_std`).
TASKS = {
    "denoising": {
        "degradation": ("AdditiveGaussianNoise", {"sigma": 0.5}),
        "description": "Gaussian noise, sigma 0.5 in [-1, 1] units (63.75 in [0, 255])",
        "noise": 0.0,
        "data": "photographs",
        "degradation_std": 0.5,
    },
    "super_resolution_4x": {
        "degradation": ("BicubicDownsample", {"factor": 4}),
        "description": "MATLAB bicubic downsampling x4, upsampled back to size",
        "noise": 0.01,
        "data": "photographs",
        "degradation_std": 0.2,
    },
    "jpeg": {
        "degradation": ("JPEGCompression", {"quality_range": (10, 30)}),
        "description": "JPEG compression, quality drawn in 10-30",
        "noise": 0.01,
        "data": "photographs",
        "degradation_std": 0.2,
    },
    "motion_deblurring": {
        "degradation": ("MotionBlur", {"kernel_size": 15}),
        "description": "camera-shake motion blur, random trajectories in 15x15 kernels",
        "noise": 0.01,
        "data": "photographs",
        "degradation_std": 0.2,
    },
    "defocus_deblurring": {
        "degradation": ("DefocusBlur", {"radius_range": (1.5, 4.0)}),
        "description": "defocus blur, an anti-aliased disk of radius drawn in 1.5-4 px per image",
        "noise": 0.01,
        "data": "photographs",
        "degradation_std": 0.2,
    },
    "generation": {
        "degradation": ("PureNoise", {}),
        "description": "pure Gaussian noise (y ~ N(0, I) independent of x): generation",
        "noise": 0.0,
        "data": "dead_leaves",
        "degradation_std": 1.15,
    },
}


def check_task(task):
    if task not in TASKS:
        raise ValueError(f"Unknown preset task {task!r}. Choose one of: {', '.join(TASKS)}.")
    return TASKS[task]


def task_degradation(task, seed=0):
    """The task's `keras_indi.degradations` object, seeded."""
    from keras_indi import degradations

    name, arguments = check_task(task)["degradation"]
    return getattr(degradations, name)(**arguments, seed=seed)


def random_crops(images, num_crops, size, seed=0, flips=True):
    """`num_crops` random ``size x size`` crops (with random flips) of a list of images."""
    rng = np.random.default_rng(seed)
    crops = np.empty((num_crops, size, size, images[0].shape[-1]), "float32")
    for index in range(num_crops):
        image = images[rng.integers(len(images))]
        top = rng.integers(image.shape[0] - size + 1)
        left = rng.integers(image.shape[1] - size + 1)
        crop = image[top : top + size, left : left + size]
        if flips and rng.random() < 0.5:
            crop = crop[:, ::-1]
        if flips and rng.random() < 0.5:
            crop = crop[::-1]
        crops[index] = crop
    return crops


def training_photographs(names=TRAINING_IMAGES, scales=(1.0,)):
    """The training photographs, each at every scale in `scales` (1 = full size, 0.5 = half
    the width and height, downscaled with anti-aliasing): a list of float32 ``[-1, 1]`` images.

    Several scales multiply what nine photographs offer: the same scene seen from further
    away has finer structures per pixel and, downscaled, less sensor noise and compression.
    """
    from skimage.transform import rescale

    scales = tuple(float(scale) for scale in scales)
    if not scales or any(not 0.0 < scale <= 1.0 for scale in scales):
        raise ValueError(f"`scales` must be a non-empty sequence of numbers in (0, 1]; got {scales}.")
    images = []
    for image in builtin_images(names):
        for scale in scales:
            if scale == 1.0:
                images.append(image)
                continue
            images.append(np.asarray(rescale(image, scale, anti_aliasing=True, channel_axis=-1, order=3), "float32").clip(-1.0, 1.0))
    return images


def clean_crops(task, num_crops, size, seed=0, held_out=False, photo_probability=0.8, images=None):
    """Clean training (or, with `held_out`, test) crops for a preset task.

    Photograph tasks mix crops of `images` (default: `TRAINING_IMAGES` at full size, see
    `training_photographs`) with dead leaves (probability ``1 - photo_probability``); held-out
    crops come from `HELD_OUT_IMAGES` only, never flipped. Generation uses dead leaves only (new
    seeds for held-out ones).
    """
    spec = check_task(task)
    if spec["data"] == "dead_leaves":
        return dead_leaves_images(num_crops, image_size=size, seed=seed + (10_000 if held_out else 0))
    if held_out:
        return random_crops(builtin_images(HELD_OUT_IMAGES), num_crops, size, seed=seed + 1, flips=False)
    if images is None:
        images = builtin_images(TRAINING_IMAGES)
    crops = random_crops(images, num_crops, size, seed=seed)
    rng = np.random.default_rng(seed + 2)
    leaves = rng.random(num_crops) >= photo_probability
    if leaves.any():
        crops[leaves] = dead_leaves_images(int(leaves.sum()), image_size=size, seed=seed + 3)
    return crops


def make_pairs(task, num_pairs, size, seed=0, held_out=False, photo_probability=0.8, images=None):
    """``(degraded, clean)`` float32 arrays of `num_pairs` crops for a preset task (`images`:
    see `clean_crops`)."""
    clean = clean_crops(task, num_pairs, size, seed=seed, held_out=held_out, photo_probability=photo_probability, images=images)
    degraded = np.asarray(task_degradation(task, seed=seed + 5)(clean), "float32")
    return degraded, clean


def held_out_photographs(size=256):
    """The held-out photographs, centre-cropped to ``size x size`` (float32 in [-1, 1])."""
    images = []
    for image in builtin_images(HELD_OUT_IMAGES):
        top = (image.shape[0] - size) // 2
        left = (image.shape[1] - size) // 2
        images.append(image[top : top + size, left : left + size])
    return np.stack(images)
