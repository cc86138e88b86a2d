"""The portal's pictures as pure functions: arrays in, PNG bytes of the announced size out."""
import io
import math

import numpy as np
import pytest

from web.portal import pictures
from web.portal.pictures import png_size


def _star_field(n=201, companions=((150.0, 120.0, 50.0),), seed=3):
    """A noisy residual image with point sources (x, y, peak); star at the centre."""
    rng = np.random.default_rng(seed)
    yy, xx = np.indices((n, n), dtype=np.float64)
    image = rng.normal(0.0, 1.0, (n, n))
    for x, y, peak in companions:
        image += peak * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 2.0 ** 2))
    return image


def _pixels(png):
    from PIL import Image

    with Image.open(io.BytesIO(png)) as img:
        return np.asarray(img.convert('RGB')).astype(int)


def _lime(rgb):
    # The candidate markers are matplotlib's 'lime' (0, 255, 0); nothing else is that green.
    return (rgb[..., 1] > 200) & (rgb[..., 0] < 60) & (rgb[..., 2] < 60)


def test_image_png_has_the_announced_size_and_is_reproducible():
    image = _star_field()
    png = pictures.image_png(image, pixscale_arcsec=0.01225, title='test', label='ADU/s')
    assert png_size(png) == pictures.IMAGE_SIZE_PX
    assert pictures.image_png(image, pixscale_arcsec=0.01225, title='test',
                              label='ADU/s') == png
    assert b'Software' not in png  # no software/date metadata


def test_image_png_marks_candidates():
    image = _star_field()
    plain = pictures.image_png(image, pixscale_arcsec=0.01225)
    marked = pictures.image_png(image, pixscale_arcsec=0.01225,
                                candidates=[('c1', 150.0, 120.0)])
    assert _lime(_pixels(plain)).sum() == 0
    assert _lime(_pixels(marked)).sum() > 50


def test_image_png_stretch_shows_faint_companion_above_background():
    # asinh stretch: a companion at 10 sigma is much brighter than the background in the PNG.
    image = _star_field(companions=((150.0, 120.0, 10.0), (60.0, 60.0, 400.0)))
    rgb = _pixels(pictures.image_png(image, pixscale_arcsec=0.01225))
    brightness = rgb.sum(axis=2)
    # The axes fill the figure's left part; find the image box by its non-white extent.
    h, w = brightness.shape
    centre = brightness[h // 4: 3 * h // 4, w // 8: 5 * w // 8]
    assert centre.max() > 3 * np.median(centre) + 60


def test_image_png_symmetric_s_n_map():
    snr = _star_field() - 0.0
    png = pictures.image_png(snr, pixscale_arcsec=0.01225, symmetric=True, label='S/N')
    assert png_size(png) == pictures.IMAGE_SIZE_PX


@pytest.mark.parametrize('bad, scale', [(np.zeros((3, 4, 5)), 0.01), (np.zeros(10), 0.01),
                                        (np.zeros((10, 10)), 0.0)])
def test_image_png_refuses_bad_input(bad, scale):
    with pytest.raises(ValueError):
        pictures.image_png(bad, pixscale_arcsec=scale)


def test_asinh_norm_scales():
    data = _star_field()
    sym = pictures.asinh_norm(data, symmetric=True)
    assert sym.vmin == -sym.vmax == pytest.approx(-np.abs(data).max())
    norm = pictures.asinh_norm(data)
    # From below the background to the brightest pixel, monotonic.
    assert norm.vmin < np.median(data) < norm.vmax == pytest.approx(data.max())
    values = norm(np.array([norm.vmin, np.median(data), norm.vmax]))
    assert values[0] < values[1] < values[2]
    # Only NaN: still a usable scale.
    assert np.isfinite(pictures.asinh_norm(np.full((4, 4), np.nan)).vmax)


def _header(rot_deg, scale_deg=0.01225 / 3600):
    from astropy.io import fits

    h = fits.Header()
    h['NAXIS'], h['NAXIS1'], h['NAXIS2'] = 2, 201, 201
    h['CTYPE1'], h['CTYPE2'] = 'RA---TAN', 'DEC--TAN'
    h['CRPIX1'], h['CRPIX2'] = 101.0, 101.0
    h['CRVAL1'], h['CRVAL2'] = 176.15448, -40.1234
    h['CDELT1'], h['CDELT2'] = -scale_deg, scale_deg
    c, s = math.cos(math.radians(rot_deg)), math.sin(math.radians(rot_deg))
    h['PC1_1'], h['PC1_2'], h['PC2_1'], h['PC2_2'] = c, -s, s, c
    return h


@pytest.mark.parametrize('rot_deg', [0.0, 30.0, -75.0, 160.0])
def test_north_angle_points_north_and_east_left_of_it(rot_deg):
    from astropy.wcs import WCS

    header = _header(rot_deg)
    angle = pictures.north_angle_deg(header)
    wcs = WCS(header)
    x0, y0 = 100.0, 100.0
    ra0, dec0 = wcs.pixel_to_world_values(x0, y0)
    t = math.radians(angle)
    r = 20.0
    # Along the north arrow: Dec grows, RA stays; along the east arrow: RA grows.
    ra_n, dec_n = wcs.pixel_to_world_values(x0 - r * math.sin(t), y0 + r * math.cos(t))
    ra_e, dec_e = wcs.pixel_to_world_values(x0 - r * math.cos(t), y0 - r * math.sin(t))
    step = r * 0.01225 / 3600
    assert dec_n - dec0 == pytest.approx(step, rel=1e-3)
    assert abs(ra_n - ra0) * math.cos(math.radians(dec0)) < 1e-3 * step
    assert (ra_e - ra0) * math.cos(math.radians(dec0)) == pytest.approx(step, rel=1e-3)
    assert abs(dec_e - dec0) < 1e-3 * step


def test_north_angle_without_wcs_is_north_up():
    from astropy.io import fits

    assert pictures.north_angle_deg(fits.Header()) == 0.0
    assert pictures.north_angle_deg(_header(0.0)) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize('width_arcsec', [0.3, 1.0, 3.7, 11.0, 120.0])
def test_scale_bar_is_a_round_fifth_of_the_field(width_arcsec):
    bar = pictures.scale_bar_arcsec(width_arcsec)
    assert bar in pictures._BAR_CHOICES_ARCSEC
    assert 0.5 < bar / (width_arcsec / 5) < 2.0


def test_contrast_png():
    sep = np.linspace(0.1, 1.8, 50)
    curves = [('H2 pca_adi', sep, 8 + 4 * sep), ('H3 pca_adi', sep, 8.2 + 4 * sep)]
    png = pictures.contrast_png(curves, candidates=[('c1', 1.08, 12.0)], title='SIMSTAR-1')
    assert png_size(png) == pictures.CONTRAST_SIZE_PX
    assert png_size(pictures.contrast_png([])) == pictures.CONTRAST_SIZE_PX


def test_spectrum_png():
    wl = np.linspace(0.95, 1.35, 39)
    png = pictures.spectrum_png(wl, 1e-5 * (1 + 0.1 * np.sin(wl * 10)), np.full(39, 1e-6))
    assert png_size(png) == pictures.SPECTRUM_SIZE_PX
    assert png_size(pictures.spectrum_png(wl, wl * 1e-5)) == pictures.SPECTRUM_SIZE_PX
    with pytest.raises(ValueError):
        pictures.spectrum_png(wl, wl[:-1])


def test_thumbnails():
    big = pictures.image_png(_star_field(), pixscale_arcsec=0.01225)
    thumb = pictures.thumbnail_png(big)
    w, h = png_size(thumb)
    assert max(w, h) == pictures.THUMB_SIZE_PX
    assert w / h == pytest.approx(pictures.IMAGE_SIZE_PX[0] / pictures.IMAGE_SIZE_PX[1],
                                  rel=0.05)
    square = pictures.image_thumbnail_png(_star_field())
    assert png_size(square) == (pictures.THUMB_SIZE_PX, pictures.THUMB_SIZE_PX)
    with pytest.raises(ValueError):
        pictures.thumbnail_png(b'not a picture')
    with pytest.raises(ValueError):
        png_size(b'GIF89a' + bytes(30))
