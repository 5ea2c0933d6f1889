"""Reading image files and converting arrays to the keras-indi image convention.

Every image leaving this module is ``float32`` in ``[-1, 1]``, ``(height, width, channels)``.

Conversion rules (applied to files and to arrays alike):

* **bit depth**: ``uint8`` is divided by 255, ``uint16`` (16-bit PNG/TIFF) by 65535, ``bool``
  maps to {0, 1}; float arrays must already be in ``[0, 1]`` (``float_range="0_1"``) or
  ``[-1, 1]`` (``float_range="-1_1"``, the default for arrays). The result is mapped
  linearly to ``[-1, 1]``.
* **16-bit RGB PNG files**: Pillow decodes them to 8 bits per channel (it keeps the most
  significant byte), so they are read with 8-bit precision. 16-bit *grayscale* files keep their
  full precision. (DPDD ships 16-bit RGB PNGs: 8 bits are plenty for training.)
* **channels** (``channels=3``, the default): grayscale is replicated to RGB; the alpha channel
  of RGBA / gray+alpha images is dropped (no compositing); palette images are expanded to RGB.
  With ``channels=1`` colour images are converted to luma (ITU-R 601: 0.299 R + 0.587 G +
  0.114 B).
* CMYK / YCbCr / LAB files are converted to RGB by Pillow.
"""

import os
import pathlib

import numpy as np

from keras_indi.api_export import keras_indi_export

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
_LUMA = np.array([0.299, 0.587, 0.114], dtype="float32")


def check_channels(channels):
    if channels not in (1, 3):
        raise ValueError(f"`channels` must be 1 (grayscale) or 3 (RGB). Received channels={channels!r}.")
    return int(channels)


def _set_channels(image, channels, what):
    """`image` is float32 (H, W, C) in [0, 1]; return (H, W, channels)."""
    c = image.shape[-1]
    if c == 2:  # gray + alpha
        image = image[..., :1]
    elif c == 4:  # RGBA: drop alpha
        image = image[..., :3]
    elif c not in (1, 3):
        raise ValueError(f"{what} has {c} channels; expected 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA).")
    if channels == 3 and image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    elif channels == 1 and image.shape[-1] == 3:
        image = np.tensordot(image, _LUMA, axes=([-1], [0]))[..., None]
    return np.ascontiguousarray(image, dtype="float32")


def to_unit_float(array, what="image", float_range="-1_1"):
    """Convert an integer/bool/float array to float32 in [0, 1] following the module rules."""
    array = np.asarray(array)
    if array.dtype == np.bool_:
        return array.astype("float32")
    if array.dtype == np.uint8:
        return array.astype("float32") / 255.0
    if array.dtype == np.uint16:
        return array.astype("float32") / 65535.0
    if np.issubdtype(array.dtype, np.integer):
        maximum = int(array.max()) if array.size else 0
        minimum = int(array.min()) if array.size else 0
        if minimum < 0 or maximum > 65535:
            raise ValueError(
                f"{what} has integer values in [{minimum}, {maximum}], which is neither 8-bit nor "
                "16-bit. Convert it to uint8/uint16 or to float32 in [-1, 1] first."
            )
        scale = 255.0 if maximum <= 255 else 65535.0
        return array.astype("float32") / scale
    if np.issubdtype(array.dtype, np.floating):
        array = array.astype("float32", copy=False)
        if array.size and not np.isfinite(array).all():
            raise ValueError(f"{what} contains NaN or Inf values.")
        low, high = (0.0, 1.0) if float_range == "0_1" else (-1.0, 1.0)
        if array.size:
            minimum, maximum = float(array.min()), float(array.max())
            if minimum < low - 1e-3 or maximum > high + 1e-3:
                hint = ""
                if maximum > 2.0:
                    hint = (
                        " It looks like [0, 255] data: pass it as uint8, or divide by 127.5 and subtract 1."
                    )
                raise ValueError(
                    f"{what} has float values in [{minimum:.4g}, {maximum:.4g}] but float images "
                    f"must be in [{low}, {high}].{hint}"
                )
        if float_range == "0_1":
            return np.clip(array, 0.0, 1.0)
        return np.clip((array + 1.0) * 0.5, 0.0, 1.0)
    raise ValueError(f"{what} has unsupported dtype {array.dtype}; expected uint8, uint16, bool or float.")


def to_model_image(array, channels=3, what="image", float_range="-1_1"):
    """Convert one image array (H, W) or (H, W, C) to float32 [-1, 1] with `channels` channels."""
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3:
        raise ValueError(
            f"{what} must be (height, width) or (height, width, channels); received shape {array.shape}."
        )
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"{what} is empty (shape {array.shape}).")
    unit = to_unit_float(array, what=what, float_range=float_range)
    unit = _set_channels(unit, channels, what)
    return unit * 2.0 - 1.0


@keras_indi_export("keras_indi.datasets.load_image")
def load_image(path, channels=3):
    """Read an image file as float32 ``(height, width, channels)`` in ``[-1, 1]``.

    See the module docstring for the conversion rules (bit depth, alpha, grayscale).
    Raises ``ValueError`` naming the file when it is missing, unreadable or corrupt.
    """
    from PIL import Image, UnidentifiedImageError

    channels = check_channels(channels)
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"Image file not found: {path!r}.")
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode in ("P", "PA"):
                image = image.convert("RGBA" if "transparency" in image.info or mode == "PA" else "RGB")
            elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                image = image.convert("RGB")
            elif mode == "1":
                image = image.convert("L")
            elif mode == "F":
                raise ValueError(
                    f"Image file {path!r} holds 32-bit float pixels (mode 'F'), whose range is "
                    "unknown. Save it as 8- or 16-bit PNG, or load it yourself and pass a NumPy array."
                )
            array = np.asarray(image)
            if mode.startswith("I;16") or (mode == "I" and array.size and int(array.max()) <= 65535):
                array = array.astype(np.uint16)
            elif mode == "I":
                raise ValueError(
                    f"Image file {path!r} holds 32-bit integer pixels above 65535; convert it to "
                    "8- or 16-bit first."
                )
    except ValueError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError, MemoryError) as error:
        raise ValueError(
            f"Could not read image file {path!r} (corrupt, truncated, too large or not an image: {error}). "
            "Remove or replace this file."
        ) from error
    return to_model_image(array, channels=channels, what=f"Image file {path!r}")


def list_image_files(directory, argument="directory", recursive=False):
    """Sorted image files (by extension) in `directory`; clear errors when missing or empty."""
    if directory is None:
        raise ValueError(f"`{argument}` is required: pass the path of a folder of images.")
    path = pathlib.Path(os.fspath(directory)).expanduser()
    if not path.exists():
        raise ValueError(f"`{argument}` folder does not exist: {str(path)!r}. Check the path.")
    if not path.is_dir():
        raise ValueError(f"`{argument}` must be a folder; {str(path)!r} is a file.")
    pattern = "**/*" if recursive else "*"
    files = sorted(p for p in path.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise ValueError(
            f"`{argument}` folder {str(path)!r} contains no image files "
            f"(looked for {', '.join(IMAGE_EXTENSIONS)}{', recursively' if recursive else ''})."
        )
    return files
