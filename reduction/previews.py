"""PNG previews: the no-ADI stack and PSF of a master cube; level-2 images and curves.

matplotlib is imported inside the functions (Agg canvas, no pyplot state) and
the PNG carries no software/date metadata, so the bytes are reproducible.
"""
import numpy as np

from .products import atomic_path

__all__ = ["no_adi_stack", "write_preview", "write_level2_preview", "write_contrast_plot"]


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


def _compass_and_scale(ax, shape, pixscale_arcsec):
    """North/east arrows (north up, east left) and a round-length scale bar."""
    ny, nx = shape
    length, x0, y0 = 0.15 * min(nx, ny), 0.88 * nx, 0.08 * ny
    arrow = {"color": "white", "width": 0.3, "head_width": 1.2 + 0.01 * nx,
             "length_includes_head": True}
    ax.arrow(x0, y0, 0, length, **arrow)
    ax.arrow(x0, y0, -length, 0, **arrow)
    ax.text(x0, y0 + 1.1 * length, "N", color="white", ha="center", va="bottom", fontsize=8)
    ax.text(x0 - 1.1 * length, y0, "E", color="white", ha="right", va="center", fontsize=8)
    bar_arcsec = min((0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0),
                     key=lambda v: abs(v - nx * pixscale_arcsec / 5))
    bar_px = bar_arcsec / pixscale_arcsec
    ax.plot([0.06 * nx, 0.06 * nx + bar_px], [0.06 * ny] * 2, color="white", lw=2)
    ax.text(0.06 * nx + bar_px / 2, 0.08 * ny, f'{bar_arcsec:g}"', color="white",
            ha="center", va="bottom", fontsize=8)


def write_level2_preview(image, path, *, title, pixscale_arcsec, label, candidates=(),
                         symmetric=False):
    """Write a north-up level-2 image (final image or S/N map) as a PNG.

    Parameters
    ----------
    image : `numpy.ndarray`, shape (ny, nx)
        Star on (ny // 2, nx // 2).
    path : str or `pathlib.Path`
        Written as is (the caller makes it atomic).
    title, label : str
        Title and colour bar label.
    pixscale_arcsec : float
        For the scale bar.
    candidates : sequence of dict, optional
        Circled at their ``x``, ``y`` (pixels).
    symmetric : bool, optional
        Colour scale symmetric about zero (S/N maps); asinh stretch either way.
    """
    from astropy.visualization import (AsinhStretch, ImageNormalize, ManualInterval,
                                       PercentileInterval)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle

    fig = Figure(figsize=(5.5, 4.4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_facecolor("black")
    data = np.nan_to_num(np.asarray(image, dtype=np.float32))
    # The corners are not covered by every derotated frame: their edge artefacts
    # would set the colour scale, so they are blanked.
    yy, xx = np.indices(data.shape)
    data[np.hypot(yy - data.shape[0] // 2, xx - data.shape[1] // 2)
         > min(data.shape) / 2 - 1] = np.nan
    finite = data[np.isfinite(data)]
    if symmetric:
        vmax = max(float(np.abs(finite).max()), 1e-12) if finite.size else 1.0
        interval = ManualInterval(-vmax, vmax)
    else:
        interval = PercentileInterval(99.5)
    norm = ImageNormalize(finite, interval=interval, stretch=AsinhStretch())
    im = ax.imshow(data, origin="lower", cmap="RdBu_r" if symmetric else "inferno", norm=norm)
    for c in candidates:
        ax.add_patch(Circle((c["x"], c["y"]), 5.0, fill=False, color="lime", lw=1))
    _compass_and_scale(ax, data.shape, pixscale_arcsec)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02, label=label)
    fig.savefig(path, format="png", metadata={"Software": None})


def write_contrast_plot(table, path, *, title):
    """Write a 5-sigma contrast curve (magnitudes versus arcsec) as a PNG.

    Parameters
    ----------
    table : `astropy.table.Table`
        Columns ``sep_arcsec`` and ``contrast_mag_5sigma``.
    path : str or `pathlib.Path`
    title : str
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 4.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(table["sep_arcsec"], table["contrast_mag_5sigma"], color="C0",
            label="5-sigma, Student-t, throughput corrected")
    ax.invert_yaxis()  # deeper limits lower
    ax.set_xlabel("separation (arcsec)")
    ax.set_ylabel("contrast (mag)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})
