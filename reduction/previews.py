"""PNG previews of a master cube: the no-ADI stack and the off-axis PSF.

matplotlib is imported inside the functions (Agg canvas, no pyplot state) and
the PNG carries no software/date metadata, so the bytes are reproducible.
"""
import numpy as np

from .products import atomic_path

__all__ = ["no_adi_stack", "write_preview"]


def no_adi_stack(science):
    """Median over time of each field, without derotation.

    Parameters
    ----------
    science : `numpy.ndarray`, shape (n_field, n_time, ny, nx)

    Returns
    -------
    stack : `numpy.ndarray`, shape (n_field, ny, nx), float32
        NaN where no frame has data.
    """
    science = np.asarray(science)
    stack = np.median(science, axis=1).astype(np.float32)
    # np.nanmedian over the whole cube is ~10x slower: redo only the pixels that
    # a NaN spoilt, and only those with at least one finite value.
    for k in range(stack.shape[0]):
        ys, xs = np.nonzero(np.isnan(stack[k]))
        values = science[k][:, ys, xs]
        ok = np.isfinite(values).any(axis=0)
        stack[k][ys[ok], xs[ok]] = np.nanmedian(values[:, ok], axis=0)
    return stack


def write_preview(images, path, *, titles, label="ADU/s"):
    """Write images side by side as a PNG with an asinh stretch.

    Parameters
    ----------
    images : sequence of `numpy.ndarray`, each shape (ny, nx)
    path : str or `pathlib.Path`
        Written atomically.
    titles : sequence of str
        One per image.
    label : str, optional
        Colour bar label.
    """
    from astropy.visualization import AsinhStretch, ImageNormalize, PercentileInterval
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.0 * len(images), 4.2), dpi=100)
    FigureCanvasAgg(fig)
    for k, (img, title) in enumerate(zip(images, titles)):
        ax = fig.add_subplot(1, len(images), k + 1)
        finite = np.nan_to_num(np.asarray(img, dtype=np.float32))
        norm = ImageNormalize(finite, interval=PercentileInterval(99.8), stretch=AsinhStretch())
        im = ax.imshow(finite, origin="lower", cmap="inferno", norm=norm)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02, label=label)
    with atomic_path(path) as tmp:
        # No Software entry: the PNG bytes depend only on the pixels.
        fig.savefig(tmp, format="png", metadata={"Software": None})
