"""Image folders: clean-only folders and (degraded, clean) pair folders (generic, GoPro, DPDD, DIV2K).

All of them are lazy, random-access `ImageSource` objects: ``len(pairs)`` and ``pairs[i]``
(decodes the files of item ``i``). Use them directly, or pass them as ``source=`` to
`keras_indi.datasets.build_task_datasets`.
"""

import os
import pathlib

import numpy as np

from keras_indi.api_export import keras_indi_export
from keras_indi.datasets.image_io import check_channels, list_image_files, load_image
from keras_indi.datasets.sources import ImageSource, sizes_match

_SHOW = 5  # how many offending names an error message lists


def _header_size(path):
    """(height, width) from the file header; ValueError naming the file if unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as error:
        raise ValueError(
            f"Could not read image file {str(path)!r} (corrupt, too large or not an image: {error}). "
            "Remove or replace this file."
        ) from error
    return height, width


def _check_scale(scale):
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ValueError(
            f"`scale` must be an integer >= 1 (target size / input size). Received scale={scale!r}."
        )
    return int(scale)


def _check_pair_sizes(input_path, input_size, target_path, target_size, scale):
    expected = (target_size[0] / scale, target_size[1] / scale)
    if not sizes_match(input_size, target_size, scale):
        what = "the same size" if scale == 1 else f"{scale}x smaller than the target"
        raise ValueError(
            f"Image pair size mismatch: input {str(input_path)!r} is {input_size[0]}x{input_size[1]} "
            f"(height x width) but target {str(target_path)!r} is {target_size[0]}x{target_size[1]}; "
            f"the input must be {what} (expected about {expected[0]:g}x{expected[1]:g}). "
            "Fix or remove this pair, or pass the right `scale`."
        )


@keras_indi_export("keras_indi.datasets.ImageFolder")
class ImageFolder(ImageSource):
    """A folder of clean images, decoded lazily: ``folder[i]`` is float32 (h, w, c) in [-1, 1].

    Combine it with a degradation to get synthetic pairs, e.g.
    ``build_task_datasets("jpeg", source="path/to/photos")`` (a folder path is turned into an
    ``ImageFolder`` automatically).

    Args:
        directory: the folder. Files with an image extension are used, sorted by name.
        recursive: also look into sub-folders.
        channels: 3 (RGB, default) or 1. See `keras_indi.datasets.image_io` for the rules
            (grayscale -> RGB, alpha dropped, 16-bit scaled by 1/65535).
        cache: keep decoded images in memory after the first read.
    """

    def __init__(self, directory, recursive=False, channels=3, cache=False):
        self.directory = pathlib.Path(os.fspath(directory)).expanduser() if directory is not None else None
        self.paths = list_image_files(directory, argument="directory", recursive=recursive)
        self.channels = check_channels(channels)
        self.cache = bool(cache)
        self._cache = {}

    @classmethod
    def from_paths(cls, paths, channels=3, cache=False):
        folder = cls.__new__(cls)
        folder.directory = None
        folder.paths = [pathlib.Path(p) for p in paths]
        folder.channels = check_channels(channels)
        folder.cache = bool(cache)
        folder._cache = {}
        return folder

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        index = int(index)
        if index in self._cache:
            return self._cache[index]
        image = load_image(self.paths[index], channels=self.channels)
        if self.cache:
            self._cache[index] = image
        return image

    def subset(self, indices):
        """A new ImageFolder restricted to `indices` (e.g. a train/validation split)."""
        return ImageFolder.from_paths([self.paths[i] for i in indices], self.channels, self.cache)

    def __repr__(self):
        return f"ImageFolder({str(self.directory)!r}, {len(self)} images)"


@keras_indi_export("keras_indi.datasets.ImagePairs")
class ImagePairs(ImageSource):
    """Matched (degraded input, clean target) image files, decoded lazily.

    ``pairs[i]`` returns ``(degraded, clean)`` float32 arrays in [-1, 1]. With ``scale > 1``
    the input is ``scale`` times smaller than the target (e.g. DIV2K ``x4``): the data
    pipelines then crop matching regions and upsample the input crop back with bicubic
    interpolation, so that InDI sees same-size pairs.

    Built by `paired_image_folder`, `gopro_pairs`, `dpdd_pairs` and `div2k_pairs`.

    Args:
        input_paths, target_paths: equally long sequences of files.
        scale: integer, target size / input size.
        names: optional item names used in messages (default: the target file names).
        channels: 3 (default) or 1.
        check_sizes: read every file header now and raise on unreadable files or size
            mismatches (cheap: pixels are not decoded).
        cache: keep decoded images in memory after the first read.
    """

    paired = True

    def __init__(
        self, input_paths, target_paths, scale=1, names=None, channels=3, check_sizes=True, cache=False
    ):
        self.input_paths = [pathlib.Path(p) for p in input_paths]
        self.target_paths = [pathlib.Path(p) for p in target_paths]
        if len(self.input_paths) != len(self.target_paths):
            raise ValueError(
                f"`input_paths` and `target_paths` must have the same length; received "
                f"{len(self.input_paths)} and {len(self.target_paths)}."
            )
        if not self.input_paths:
            raise ValueError("ImagePairs needs at least one pair; received none.")
        self.scale = _check_scale(scale)
        self.names = list(names) if names is not None else [p.name for p in self.target_paths]
        self.channels = check_channels(channels)
        self.cache = bool(cache)
        self._cache = {}
        if check_sizes:
            for input_path, target_path in zip(self.input_paths, self.target_paths):
                _check_pair_sizes(
                    input_path, _header_size(input_path), target_path, _header_size(target_path), self.scale
                )

    def __len__(self):
        return len(self.input_paths)

    def __getitem__(self, index):
        index = int(index)
        if index in self._cache:
            return self._cache[index]
        degraded = load_image(self.input_paths[index], channels=self.channels)
        clean = load_image(self.target_paths[index], channels=self.channels)
        _check_pair_sizes(
            self.input_paths[index], degraded.shape[:2], self.target_paths[index], clean.shape[:2], self.scale
        )
        if self.cache:
            self._cache[index] = (degraded, clean)
        return degraded, clean

    def subset(self, indices):
        """A new ImagePairs restricted to `indices`."""
        indices = list(indices)
        return ImagePairs(
            [self.input_paths[i] for i in indices],
            [self.target_paths[i] for i in indices],
            scale=self.scale,
            names=[self.names[i] for i in indices],
            channels=self.channels,
            check_sizes=False,
            cache=self.cache,
        )

    def describe(self, index):
        files = f"{str(self.input_paths[index])!r}, {str(self.target_paths[index])!r}"
        return f"Image pair {self.names[index]!r} ({files})"

    def clean_images(self):
        """The targets alone, as an `ImageFolder` (to use them with a synthetic degradation)."""
        return ImageFolder.from_paths(self.target_paths, channels=self.channels, cache=self.cache)

    def __repr__(self):
        return f"ImagePairs({len(self)} pairs, scale={self.scale})"


def _match_by_stem(input_files, target_files, input_dir, target_dir, strip_suffix=""):
    def stems(files, where, strip):
        table = {}
        for path in files:
            stem = path.stem
            if strip and stem.endswith(strip):
                stem = stem[: -len(strip)]
            if stem in table:
                raise ValueError(
                    f"Two files in {str(where)!r} share the name {stem!r}: "
                    f"{table[stem].name!r} and {path.name!r}. Keep one."
                )
            table[stem] = path
        return table

    inputs = stems(input_files, input_dir, strip_suffix)
    targets = stems(target_files, target_dir, "")
    only_input = sorted(set(inputs) - set(targets))
    only_target = sorted(set(targets) - set(inputs))
    if only_input or only_target:
        lines = []
        if only_input:
            lines.append(
                f"{len(only_input)} input file(s) in {str(input_dir)!r} have no target with the same "
                f"name, e.g. {[inputs[s].name for s in only_input[:_SHOW]]}"
            )
        if only_target:
            lines.append(
                f"{len(only_target)} target file(s) in {str(target_dir)!r} have no input with the same "
                f"name, e.g. {[targets[s].name for s in only_target[:_SHOW]]}"
            )
        raise ValueError(
            "Unpaired images (pairs are matched by file name without extension"
            + (f", after removing the input suffix {strip_suffix!r}" if strip_suffix else "")
            + "): "
            + "; ".join(lines)
            + ". Remove the extra files or pass `allow_unpaired=True` to skip them."
        )
    common = sorted(set(inputs) & set(targets))
    return [inputs[s] for s in common], [targets[s] for s in common], common


def _pair_folders(input_dir, target_dir, input_arg, target_arg, strip_suffix="", allow_unpaired=False):
    input_files = list_image_files(input_dir, argument=input_arg)
    target_files = list_image_files(target_dir, argument=target_arg)
    try:
        return _match_by_stem(input_files, target_files, input_dir, target_dir, strip_suffix)
    except ValueError:
        if not allow_unpaired:
            raise
    strip = lambda s: s[: -len(strip_suffix)] if strip_suffix and s.endswith(strip_suffix) else s  # noqa: E731
    inputs = {strip(p.stem): p for p in input_files}
    targets = {p.stem: p for p in target_files}
    common = sorted(set(inputs) & set(targets))
    if not common:
        raise ValueError(
            f"No file name is shared by `{input_arg}` ({str(input_dir)!r}) and `{target_arg}` "
            f"({str(target_dir)!r}); pairs are matched by file name without extension."
        )
    return [inputs[s] for s in common], [targets[s] for s in common], common


@keras_indi_export("keras_indi.datasets.paired_image_folder")
def paired_image_folder(
    input_dir,
    target_dir,
    scale=1,
    strip_suffix="",
    allow_unpaired=False,
    channels=3,
    check_sizes=True,
    cache=False,
):
    """Pair degraded inputs and clean targets stored in two folders, matched by file name.

    ``input_dir/0001.png`` pairs with ``target_dir/0001.png`` (the extension may differ:
    ``0001.jpg`` pairs with ``0001.png``). Sizes are checked from the file headers.

    Example (then train on it with one line)::

        pairs = paired_image_folder("data/low", "data/high")
        train, val = build_task_datasets(None, source=pairs, image_size=128)

    Args:
        input_dir: folder of degraded images.
        target_dir: folder of clean images.
        scale: integer, target size / input size (1: same size; 4: DIV2K-style x4 inputs,
            cropped scale-aware and upsampled back with bicubic interpolation).
        strip_suffix: removed from the end of input names before matching (DIV2K's
            ``0001x4.png`` -> ``0001`` with ``strip_suffix="x4"``).
        allow_unpaired: skip files without a partner instead of raising.
        channels, check_sizes, cache: see `ImagePairs`.

    Returns:
        An `ImagePairs`.

    Raises:
        ValueError: missing or empty folder, unpaired names (a few are listed), unreadable
            file (named), or pair size mismatch (both files named).
    """
    scale = _check_scale(scale)
    inputs, targets, names = _pair_folders(
        input_dir, target_dir, "input_dir", "target_dir", strip_suffix, allow_unpaired
    )
    return ImagePairs(
        inputs, targets, scale=scale, names=names, channels=channels, check_sizes=check_sizes, cache=cache
    )


def _check_root(root, argument="root"):
    if root is None:
        raise ValueError(f"`{argument}` is required: pass the dataset folder.")
    path = pathlib.Path(os.fspath(root)).expanduser()
    if not path.is_dir():
        raise ValueError(f"`{argument}` folder does not exist: {str(path)!r}. Check the path.")
    return path


GOPRO_SPLITS = ("train", "test")


@keras_indi_export("keras_indi.datasets.gopro_pairs")
def gopro_pairs(root, split="train", blur="blur", channels=3, check_sizes=True, cache=False):
    """GoPro motion-deblurring pairs (Nah et al., CVPR 2017) from the extracted ``GOPRO_Large``.

    Layout (as in ``GOPRO_Large.zip``; ``root`` may be ``GOPRO_Large`` or its parent)::

        root/train/GOPR0372_07_00/blur/000047.png      # blurry input
        root/train/GOPR0372_07_00/blur_gamma/000047.png # (optional) blur in gamma space
        root/train/GOPR0372_07_00/sharp/000047.png     # sharp target
        root/test/GOPR0384_11_00/...

    2103 training and 1111 test pairs of 1280x720 frames. Item names are
    ``"<sequence>/<frame>"``.

    Example::

        train, val = build_task_datasets("motion_deblurring", source="gopro", data_dir="~/GOPRO_Large")

    Args:
        root: the GoPro folder.
        split: "train" or "test".
        blur: input sub-folder, "blur" (default) or "blur_gamma".
        channels, check_sizes, cache: see `ImagePairs`.
    """
    if split not in GOPRO_SPLITS:
        raise ValueError(f"`split` must be one of {GOPRO_SPLITS} for GoPro. Received split={split!r}.")
    if blur not in ("blur", "blur_gamma"):
        raise ValueError(f"`blur` must be 'blur' or 'blur_gamma'. Received blur={blur!r}.")
    path = _check_root(root)
    if not (path / split).is_dir() and (path / "GOPRO_Large" / split).is_dir():
        path = path / "GOPRO_Large"
    split_dir = path / split
    if not split_dir.is_dir():
        raise ValueError(
            f"GoPro folder {str(path)!r} has no {split!r} sub-folder. Expected the layout "
            f"root/{split}/<sequence>/{{blur,sharp}}/*.png (extract GOPRO_Large.zip and pass its folder)."
        )
    sequences = sorted(p for p in split_dir.iterdir() if p.is_dir())
    if not sequences:
        raise ValueError(f"GoPro split folder {str(split_dir)!r} contains no sequence folders.")
    inputs, targets, names = [], [], []
    for sequence in sequences:
        for sub in (blur, "sharp"):
            if not (sequence / sub).is_dir():
                raise ValueError(
                    f"GoPro sequence folder {str(sequence)!r} has no {sub!r} sub-folder; expected "
                    f"{sequence.name}/{blur}/*.png and {sequence.name}/sharp/*.png."
                )
        seq_inputs, seq_targets, stems = _pair_folders(
            sequence / blur, sequence / "sharp", f"{sequence.name}/{blur}", f"{sequence.name}/sharp"
        )
        inputs += seq_inputs
        targets += seq_targets
        names += [f"{sequence.name}/{s}" for s in stems]
    return ImagePairs(inputs, targets, names=names, channels=channels, check_sizes=check_sizes, cache=cache)


DPDD_SPLITS = ("train", "val", "test")


@keras_indi_export("keras_indi.datasets.dpdd_pairs")
def dpdd_pairs(root, split="train", channels=3, check_sizes=True, cache=False):
    """DPDD defocus-deblurring pairs (Abuolaim & Brown, ECCV 2020), Canon combined view.

    Layout of the released ``dd_dp_dataset_png`` folder (``root`` may be that folder or its
    parent)::

        root/train_c/source/<name>.png   # defocused input (combined dual-pixel view)
        root/train_c/target/<name>.png   # all-in-focus target
        root/val_c/{source,target}/      # 74 pairs
        root/test_c/{source,target}/     # 76 pairs
        root/train_l, train_r, ...       # left/right dual-pixel views: not used here

    350 / 74 / 76 pairs of 1680x1120 images. The files are 16-bit RGB PNGs: they are read
    with 8-bit precision (see `keras_indi.datasets.image_io`).

    Example::

        train, val = build_task_datasets("defocus_deblurring", source="dpdd", data_dir="~/dd_dp_dataset_png")

    Args:
        root: the DPDD folder.
        split: "train", "val" or "test".
        channels, check_sizes, cache: see `ImagePairs`.
    """
    if split not in DPDD_SPLITS:
        raise ValueError(f"`split` must be one of {DPDD_SPLITS} for DPDD. Received split={split!r}.")
    path = _check_root(root)
    folder = f"{split}_c"
    if not (path / folder).is_dir() and (path / "dd_dp_dataset_png" / folder).is_dir():
        path = path / "dd_dp_dataset_png"
    if not (path / folder).is_dir():
        raise ValueError(
            f"DPDD folder {str(path)!r} has no {folder!r} sub-folder. Expected the layout "
            f"root/{folder}/source/*.png and root/{folder}/target/*.png (dd_dp_dataset_png)."
        )
    inputs, targets, names = _pair_folders(
        path / folder / "source", path / folder / "target", f"{folder}/source", f"{folder}/target"
    )
    return ImagePairs(inputs, targets, names=names, channels=channels, check_sizes=check_sizes, cache=cache)


@keras_indi_export("keras_indi.datasets.div2k_pairs")
def div2k_pairs(root, split="train", scale=4, kind="bicubic", channels=3, check_sizes=True, cache=False):
    """DIV2K super-resolution pairs from the extracted official zips (no TFDS needed).

    Layout (``root`` holds the extracted ``DIV2K_*`` folders)::

        root/DIV2K_train_HR/0001.png
        root/DIV2K_train_LR_bicubic/X4/0001x4.png
        root/DIV2K_valid_HR/0801.png
        root/DIV2K_valid_LR_bicubic/X4/0801x4.png

    Inputs are ``scale`` times smaller; the pipelines crop them scale-aware and upsample the
    crops back (bicubic). For the TFDS version see `div2k_tfds`.

    Args:
        root: folder with the extracted DIV2K folders.
        split: "train" or "valid" ("validation" is accepted).
        scale: 2, 3 or 4 (8 for bicubic).
        kind: "bicubic" or "unknown".
        channels, check_sizes, cache: see `ImagePairs`.
    """
    split = {"validation": "valid"}.get(split, split)
    if split not in ("train", "valid"):
        raise ValueError(f"`split` must be 'train' or 'valid' for DIV2K. Received split={split!r}.")
    if kind not in ("bicubic", "unknown"):
        raise ValueError(f"`kind` must be 'bicubic' or 'unknown'. Received kind={kind!r}.")
    scale = _check_scale(scale)
    path = _check_root(root)
    target_dir = path / f"DIV2K_{split}_HR"
    input_dir = path / f"DIV2K_{split}_LR_{kind}" / f"X{scale}"
    if not target_dir.is_dir() or not input_dir.is_dir():
        raise ValueError(
            f"DIV2K folder {str(path)!r} must contain DIV2K_{split}_HR/ and "
            f"DIV2K_{split}_LR_{kind}/X{scale}/ (extract DIV2K_{split}_HR.zip and "
            f"DIV2K_{split}_LR_{kind}_X{scale}.zip there)."
        )
    inputs, targets, names = _pair_folders(
        input_dir,
        target_dir,
        f"DIV2K_{split}_LR_{kind}/X{scale}",
        f"DIV2K_{split}_HR",
        strip_suffix=f"x{scale}",
    )
    return ImagePairs(
        inputs, targets, scale=scale, names=names, channels=channels, check_sizes=check_sizes, cache=cache
    )
