"""Reading the data of product files for the pictures: images and spectra (FITS).

I/O at the edge: the views find the file through the database (as the
viewer), these functions only read it.
"""
import numpy as np

__all__ = ['read_image', 'read_spectrum', 'read_strehl']


def read_image(path):
    """The first image of a FITS file, and its header.

    Parameters
    ----------
    path : pathlib.Path

    Returns
    -------
    data : ndarray, shape (ny, nx), float32
        The first plane of a cube.
    header : astropy.io.fits.Header

    Raises
    ------
    ValueError
        If the file has no image of 2 or more dimensions.
    OSError
        If it is not a readable FITS file.
    """
    from astropy.io import fits

    with fits.open(path, memmap=False) as hdul:
        for hdu in hdul:
            if hdu.is_image and hdu.data is not None and hdu.data.ndim >= 2:
                data = hdu.data
                while data.ndim > 2:
                    data = data[0]
                return np.asarray(data, dtype=np.float32), hdu.header.copy()
    raise ValueError(f'{path.name} has no image')


def read_strehl(path):
    """Strehl estimates per field (channel) from the header of a level-1 PSF product.

    Level 1 writes them as ``ESO QC STREHLk`` (k = 1, 2, ...), measured on the
    unsaturated flux frames; only the primary header is read.

    Returns
    -------
    list of float
        Finite estimates, in field order (empty when none was measured).
    """
    from astropy.io import fits

    header = fits.getheader(path)
    values = []
    for k in range(1, 100):
        key = f'HIERARCH ESO QC STREHL{k}'
        if key not in header:
            break
        value = header[key]
        if isinstance(value, (int, float)) and np.isfinite(value):
            values.append(float(value))
    return values


_WAVELENGTH = ('wavelength_um', 'wavelength', 'wave', 'lambda')
_CONTRAST = ('contrast', 'flux_ratio')
_ERROR = ('contrast_err', 'contrast_error', 'error', 'err')


def read_spectrum(path):
    """A candidate's spectrum from the first table of a VOTable or FITS file.

    Parameters
    ----------
    path : pathlib.Path
        Columns (case-insensitive) ``wavelength_um`` (or ``wavelength``, ``wave``,
        ``lambda``; in µm), ``contrast`` (or ``flux_ratio``) and optionally
        ``contrast_err`` (or ``contrast_error``, ``error``, ``err``).

    Returns
    -------
    wavelength_um, contrast : ndarray, shape (n,)
    contrast_err : ndarray, shape (n,), or None

    Raises
    ------
    ValueError
        If the wavelength or contrast column is missing.
    """
    from astropy.table import Table

    # The engine writes VOTables (what SSA serves); other tools write FITS tables.
    with open(path, 'rb') as fh:
        xml = fh.read(64).lstrip().startswith(b'<')
    table = Table.read(path, format='votable' if xml else 'fits')
    names = {n.lower(): n for n in table.colnames}

    def column(options):
        name = next((names[o] for o in options if o in names), None)
        return None if name is None else np.asarray(table[name], dtype=np.float64)

    wl, contrast, err = column(_WAVELENGTH), column(_CONTRAST), column(_ERROR)
    if wl is None or contrast is None:
        raise ValueError(f'{path.name} has no wavelength and contrast columns')
    return wl, contrast, err
