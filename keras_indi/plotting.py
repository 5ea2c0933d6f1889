"""Figures that let a reader *see* a restoration: whole images side by side with a zoomed detail."""

import numpy as np

from keras_indi.api_export import keras_indi_export


def new_figure(figsize, dpi, path=None):
    """A matplotlib Figure; one outside pyplot (never shown, nothing to close) when it is to be
    saved to `path`."""
    if path is not None:
        from matplotlib.figure import Figure

        return Figure(figsize=figsize, dpi=dpi)
    import matplotlib.pyplot as plt

    return plt.figure(figsize=figsize, dpi=dpi)


def _display(image, value_range):
    low, high = value_range
    image = np.clip((np.asarray(image, "float32") - low) / (high - low), 0.0, 1.0)
    return image[..., 0] if image.shape[-1] == 1 else image


@keras_indi_export("keras_indi.plotting.comparison_figure")
def comparison_figure(panels, zoom=None, path=None, value_range=(-1.0, 1.0), panel_size=3.0, title=None, dpi=100):
    """Whole images side by side, and under each the same zoomed detail.

    Args:
        panels: list of ``(label, image)`` with images ``(height, width, channels)`` of one size.
        zoom: ``(top, left, size)`` of the square detail shown enlarged in a second row (a red
            box marks it on the whole images); None shows whole images only.
        path: save the figure there (no pyplot figure is created then).
        value_range: the images' value range, mapped to [0, 1] for display.
        panel_size: inches per panel.
        title: optional figure title.

    Returns:
        The matplotlib Figure.

    Example:

    >>> images = [("a", np.zeros((32, 32, 3))), ("b", np.ones((32, 32, 3)))]
    >>> figure = comparison_figure(images, zoom=(8, 8, 12), path="/tmp/comparison.png")
    >>> len(figure.axes)
    4
    """
    if not panels:
        raise ValueError("`panels` must hold at least one (label, image) pair.")
    shapes = {np.shape(image) for _, image in panels}
    if len(shapes) != 1 or len(next(iter(shapes))) != 3:
        raise ValueError(f"Every panel must be one (height, width, channels) image of the same shape. Received shapes {sorted(shapes)}.")
    height, width, _ = next(iter(shapes))
    if zoom is not None:
        top, left, size = (int(v) for v in zoom)
        if size < 1 or top < 0 or left < 0 or top + size > height or left + size > width:
            raise ValueError(f"`zoom` {zoom!r} must be (top, left, size) inside the {height}x{width} images.")
    rows = 1 if zoom is None else 2
    figure = new_figure((panel_size * len(panels), panel_size * rows + (0.4 if title else 0)), dpi, path)
    axes = np.asarray(figure.subplots(rows, len(panels), squeeze=False))
    for column, (label, image) in enumerate(panels):
        shown = _display(image, value_range)
        cmap = "gray" if shown.ndim == 2 else None
        axes[0, column].imshow(shown, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
        axes[0, column].set_title(label, fontsize=10)
        if zoom is not None:
            from matplotlib.patches import Rectangle

            axes[0, column].add_patch(Rectangle((left - 0.5, top - 0.5), size, size, fill=False, edgecolor="red", linewidth=1.2))
            axes[1, column].imshow(shown[top : top + size, left : left + size], cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    for axis in axes.ravel():
        axis.set_xticks([])
        axis.set_yticks([])
    if title:
        figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    if path is not None:
        figure.savefig(path)
    return figure


@keras_indi_export("keras_indi.plotting.detailed_region")
def detailed_region(image, size):
    """``(top, left, size)`` of the square window of `image` with the most detail (the largest
    variance), e.g. for the `zoom` of `comparison_figure`.

    >>> image = np.zeros((64, 64, 3)); image[40:50, 8:18] = 1.0
    >>> detailed_region(image, 16)
    (36, 4, 16)
    """
    gray = np.asarray(image, "float32").mean(axis=-1)
    best, best_score = (0, 0, size), -1.0
    step = max(1, size // 4)
    for top in range(0, gray.shape[0] - size + 1, step):
        for left in range(0, gray.shape[1] - size + 1, step):
            score = float(gray[top : top + size, left : left + size].var())
            if score > best_score:
                best, best_score = (top, left, size), score
    return best
