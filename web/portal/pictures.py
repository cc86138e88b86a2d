"""PNG pictures of the portal: images with compass and scale bar, contrast curves, spectra.

Pure functions: arrays in, PNG bytes out. matplotlib draws on an Agg canvas
of its own (no pyplot state, so threads of the server do not share figures);
the compass and the scale bar are matplotlib's anchored artists. Pixel sizes
are fixed (`IMAGE_SIZE_PX`, ...) so pages can reserve the space, and the PNGs
carry no software or date metadata, so the same data give the same bytes.
"""
import io
import math

import numpy as np

__all__ = ['IMAGE_SIZE_PX', 'CONTRAST_SIZE_PX', 'SPECTRUM_SIZE_PX', 'THUMB_SIZE_PX',
           'asinh_norm', 'north_angle_deg', 'scale_bar_arcsec', 'image_png', 'contrast_png',
           'spectrum_png', 'thumbnail_png', 'image_thumbnail_png', 'png_size']

#: (width, height) of the pictures, pixels.
IMAGE_SIZE_PX = (560, 480)
CONTRAST_SIZE_PX = (640, 440)
SPECTRUM_SIZE_PX = (560, 380)
#: Longest side of a thumbnail, pixels.
THUMB_SIZE_PX = 96
_DPI = 100
_BAR_CHOICES_ARCSEC = (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0,
                       60.0)


def _figure(size_px):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size_px[0] / _DPI, size_px[1] / _DPI), dpi=_DPI,
                 layout='constrained')
    FigureCanvasAgg(fig)
    return fig


def _png(fig):
    buf = io.BytesIO()
    # No Software entry, no bbox_inches: reproducible bytes, exact pixel size.
    fig.savefig(buf, format='png', metadata={'Software': None})
    return buf.getvalue()


def asinh_norm(data, symmetric=False, upper_percentile=None):
    """An asinh-stretched colour scale for an image.

    Parameters
    ----------
    data : ndarray
        Finite values set the scale (NaN ignored).
    symmetric : bool
        Symmetric about zero, from -max|data| to +max|data| (S/N maps); else
        from 3 robust standard deviations below the median to the maximum.
    upper_percentile : float, optional
        Top of the scale at this percentile instead of the maximum (small
        pictures, where point sources cover few pixels).

    Returns
    -------
    matplotlib.colors.Normalize
        astropy's ImageNormalize with an AsinhStretch, or matplotlib's
        AsinhNorm when symmetric.
    """
    from astropy.visualization import AsinhStretch, ImageNormalize, ManualInterval

    finite = np.asarray(data, dtype=np.float32)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        finite = np.zeros(1, np.float32)
    if symmetric:
        # asinh about zero (matplotlib's AsinhNorm): linear within a few sigma, so that
        # noise stays pale and both signs of strong signal stand out.
        from matplotlib.colors import AsinhNorm

        vmax = max(float(np.abs(finite).max()), 1e-12)
        return AsinhNorm(linear_width=min(2.0, vmax / 3), vmin=-vmax, vmax=vmax)
    else:
        # From 3 robust sigma below the background to the brightest pixel: the asinh
        # stretch keeps the background dark and the faint companions visible, and
        # negative ADI residuals and masked areas do not stretch the scale.
        med = float(np.median(finite))
        sigma = 1.4826 * float(np.median(np.abs(finite - med)))
        lo = med - 3.0 * sigma
        hi = float(finite.max() if upper_percentile is None
                   else np.percentile(finite, upper_percentile))
        interval = ManualInterval(lo, hi if hi > lo else lo + 1e-12)
    return ImageNormalize(finite, interval=interval, stretch=AsinhStretch())


def north_angle_deg(header):
    """Angle of north in an image, counter-clockwise from the +y axis (0: north up).

    Parameters
    ----------
    header : astropy.io.fits.Header
        With a celestial WCS; without one, north is taken to be up, as the
        level-2 products state (``ORIENT = 'north up, east left'``).

    Returns
    -------
    float
        Degrees.
    """
    import warnings

    from astropy.wcs import WCS, FITSFixedWarning

    with warnings.catch_warnings():
        warnings.simplefilter('ignore', FITSFixedWarning)
        try:
            wcs = WCS(header, naxis=2)
        except (ValueError, KeyError, MemoryError):
            return 0.0
    if not wcs.has_celestial:
        return 0.0
    x0, y0 = wcs.wcs.crpix[0] - 1.0, wcs.wcs.crpix[1] - 1.0
    ra, dec = wcs.pixel_to_world_values(x0, y0)
    step_deg = 1.0 / 3600.0 if dec < 89.0 else -1.0 / 3600.0
    x1, y1 = wcs.world_to_pixel_values(ra, dec + step_deg)
    dx, dy = float(x1 - x0), float(y1 - y0)
    if step_deg < 0:
        dx, dy = -dx, -dy
    if not (math.isfinite(dx) and math.isfinite(dy)) or dx == dy == 0:
        return 0.0
    return math.degrees(math.atan2(-dx, dy))


def _compass(ax, north_deg, color, length=0.13, origin=(0.86, 0.78)):
    """North and east arrows in a corner (axes fraction), labels upright."""
    from matplotlib import patheffects

    halo = 'black' if color == 'white' else 'white'
    outline = [patheffects.withStroke(linewidth=2, foreground=halo)]
    theta = math.radians(north_deg)
    north = (-math.sin(theta), math.cos(theta))
    east = (-math.cos(theta), -math.sin(theta))  # 90 degrees counter-clockwise of north
    for label, (dx, dy) in (('N', north), ('E', east)):
        tip = (origin[0] + length * dx, origin[1] + length * dy)
        ax.annotate('', xy=tip, xytext=origin, xycoords='axes fraction',
                    arrowprops={'arrowstyle': '-|>', 'color': color, 'lw': 1.5,
                                'shrinkA': 0, 'shrinkB': 0})
        ax.annotate(label, (origin[0] + 1.3 * length * dx, origin[1] + 1.3 * length * dy),
                    xycoords='axes fraction', ha='center', va='center', color=color,
                    fontsize=10, fontweight='bold', path_effects=outline)


def scale_bar_arcsec(width_arcsec):
    """A round scale bar length, about a fifth of the field width."""
    return min(_BAR_CHOICES_ARCSEC, key=lambda v: abs(math.log(v / (width_arcsec / 5.0))))


def image_png(image, *, pixscale_arcsec, north_deg=0.0, candidates=(), title='', label='',
              symmetric=False, size_px=IMAGE_SIZE_PX):
    """An image with an asinh stretch, north and east arrows, a scale bar and candidates.

    Parameters
    ----------
    image : ndarray, shape (ny, nx)
        Star at the centre; converted to float32.
    pixscale_arcsec : float
        Pixel scale, for the scale bar.
    north_deg : float
        Angle of north from the +y axis, counter-clockwise (`north_angle_deg`);
        east is 90 degrees further (east left of north on the sky).
    candidates : sequence of (label, x_px, y_px)
        Circled and labelled (0-based pixel positions).
    title, label : str
        Title, colour bar label.
    symmetric : bool
        Colour scale symmetric about zero (S/N maps).
    size_px : (int, int)
        Width and height of the PNG.

    Returns
    -------
    bytes
        PNG.

    Raises
    ------
    ValueError
        If ``image`` is not 2-d or the pixel scale is not positive.
    """
    from matplotlib import patheffects
    from matplotlib.patches import Circle
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    data = np.array(image, dtype=np.float32)
    if data.ndim != 2:
        raise ValueError(f'an image must be 2-d, not of shape {data.shape}')
    if not (pixscale_arcsec and pixscale_arcsec > 0):
        raise ValueError('the pixel scale must be positive')
    ny, nx = data.shape
    # Corners are not covered by every derotated frame: their edge artefacts
    # would set the colour scale, so only the inscribed disc is shown.
    yy, xx = np.ogrid[:ny, :nx]
    data[np.hypot(yy - ny // 2, xx - nx // 2) > min(nx, ny) / 2 - 1] = np.nan
    fig = _figure(size_px)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_facecolor('#d8d8d8' if symmetric else 'black')
    cmap = 'RdBu_r' if symmetric else 'inferno'
    im = ax.imshow(data, origin='lower', cmap=cmap, norm=asinh_norm(data, symmetric),
                   interpolation='nearest')
    radius_px = max(4.0, 0.03 * min(nx, ny))
    outline = [patheffects.withStroke(linewidth=2, foreground='black')]
    for text, x, y in candidates:
        ax.add_patch(Circle((x, y), radius_px, fill=False, color='lime', lw=1.2))
        ax.annotate(str(text), (x, y + radius_px), textcoords='offset points', xytext=(3, 2),
                    color='lime', fontsize=9, fontweight='bold', path_effects=outline)
    # Drawn in black on the pale S/N maps, in white on the dark images.
    ink = 'black' if symmetric else 'white'
    _compass(ax, north_deg, ink)
    bar_arcsec = scale_bar_arcsec(nx * pixscale_arcsec)
    ax.add_artist(AnchoredSizeBar(ax.transData, bar_arcsec / pixscale_arcsec,
                                  f'{bar_arcsec:g}"', loc='lower left', color=ink,
                                  frameon=False, size_vertical=max(1.0, ny / 200),
                                  pad=0.6, sep=4))
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02, label=label)
    return _png(fig)


def contrast_png(curves, *, candidates=(), title='', size_px=CONTRAST_SIZE_PX):
    """5-sigma contrast curves (magnitudes versus separation), deeper limits lower.

    Parameters
    ----------
    curves : sequence of (label, sep_arcsec, contrast_mag)
        One line each; arrays of the same length.
    candidates : sequence of (label, sep_arcsec, contrast_mag)
        Plotted as points over the curves.
    title : str
    size_px : (int, int)

    Returns
    -------
    bytes
        PNG.
    """
    fig = _figure(size_px)
    ax = fig.add_subplot(1, 1, 1)
    for label, sep, mag in curves:
        sep = np.asarray(sep, dtype=np.float32)
        mag = np.asarray(mag, dtype=np.float32)
        ax.plot(sep, mag, lw=1.5, label=f'{label} (5-sigma)')
    for k, (label, sep, mag) in enumerate(candidates):
        if sep is None or mag is None:
            continue
        ax.plot([sep], [mag], marker='*', ms=10, ls='none', color='crimson',
                label='candidates' if k == 0 else None)
        ax.annotate(str(label), (sep, mag), textcoords='offset points', xytext=(5, 4),
                    fontsize=8, color='crimson')
    ax.invert_yaxis()  # fainter companions (deeper limits) lower
    ax.set_xlabel('separation (arcsec)')
    ax.set_ylabel('contrast (mag)')
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=9)
    if curves or candidates:
        ax.legend(fontsize=8)
    return _png(fig)


def spectrum_png(wavelength_um, contrast, contrast_err=None, *, title='',
                 size_px=SPECTRUM_SIZE_PX):
    """A candidate's spectrum: contrast (flux ratio to the star) per wavelength.

    Parameters
    ----------
    wavelength_um, contrast : ndarray, shape (n,)
    contrast_err : ndarray, shape (n,), optional
        1-sigma errors.
    title : str
    size_px : (int, int)

    Returns
    -------
    bytes
        PNG.

    Raises
    ------
    ValueError
        If the arrays differ in length.
    """
    wl = np.asarray(wavelength_um, dtype=np.float32)
    c = np.asarray(contrast, dtype=np.float32)
    err = None if contrast_err is None else np.asarray(contrast_err, dtype=np.float32)
    if wl.shape != c.shape or (err is not None and err.shape != c.shape) or wl.ndim != 1:
        raise ValueError('wavelength, contrast and errors must be 1-d of the same length')
    fig = _figure(size_px)
    ax = fig.add_subplot(1, 1, 1)
    ax.errorbar(wl, c, yerr=err, marker='o', ms=3, lw=1, capsize=2)
    ax.set_xlabel('wavelength (µm)')
    ax.set_ylabel('contrast (flux ratio to the star)')
    ax.ticklabel_format(axis='y', style='sci', scilimits=(-3, 3))
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=9)
    return _png(fig)


def thumbnail_png(png, size_px=THUMB_SIZE_PX):
    """A small copy of a PNG (longest side ``size_px``), for result tables.

    Parameters
    ----------
    png : bytes
    size_px : int

    Returns
    -------
    bytes
        PNG.

    Raises
    ------
    ValueError
        If ``png`` is not a readable image.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(png)) as img:
            img = img.convert('RGB')
            img.thumbnail((size_px, size_px), Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            img.save(buf, format='PNG', optimize=True)
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f'not a readable image: {exc}') from exc
    return buf.getvalue()


def image_thumbnail_png(image, size_px=THUMB_SIZE_PX):
    """A small picture of an image alone (no axes), with the same stretch as `image_png`.

    Parameters
    ----------
    image : ndarray, shape (ny, nx)
    size_px : int
        Width and height of the (square) PNG.

    Returns
    -------
    bytes
        PNG.

    Raises
    ------
    ValueError
        If ``image`` is not 2-d.
    """
    from matplotlib import colormaps
    from PIL import Image

    data = np.array(image, dtype=np.float32)
    if data.ndim != 2:
        raise ValueError(f'an image must be 2-d, not of shape {data.shape}')
    ny, nx = data.shape
    yy, xx = np.ogrid[:ny, :nx]
    data[np.hypot(yy - ny // 2, xx - nx // 2) > min(nx, ny) / 2 - 1] = np.nan
    scaled = np.ma.masked_invalid(asinh_norm(data, upper_percentile=99.98)(data))
    cmap = colormaps['inferno'].with_extremes(bad='black')
    rgb = (cmap(scaled)[::-1, :, :3] * 255).astype(np.uint8)  # row 0 at the bottom
    img = Image.fromarray(rgb, 'RGB').resize((size_px, size_px), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format='PNG', optimize=True)
    return buf.getvalue()


def png_size(png):
    """(width, height) of a PNG, from its header.

    Raises
    ------
    ValueError
        If ``png`` is not a PNG.
    """
    import struct

    if len(png) < 24 or png[:8] != b'\x89PNG\r\n\x1a\n' or png[12:16] != b'IHDR':
        raise ValueError('not a PNG')
    return struct.unpack('>II', png[16:24])
