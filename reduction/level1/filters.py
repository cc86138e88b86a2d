"""Central wavelengths of the IRDIS filter combinations (``ESO INS COMB IFLT``).

Central wavelengths (microns) as used by public SPHERE pipelines, left field first.
"""
import numpy as np

__all__ = ["IRDIS_WAVELENGTHS_UM", "irdis_wavelengths_um"]

IRDIS_WAVELENGTHS_UM = {
    "DB_Y23": (1.0258, 1.0802), "DB_J23": (1.1895, 1.2698), "DB_H23": (1.5888, 1.6671),
    "DB_NDH23": (1.5888, 1.6671), "DB_H34": (1.6671, 1.7325), "DB_K12": (2.1025, 2.2549),
    "BB_Y": (1.0425, 1.0425), "BB_J": (1.2575, 1.2575), "BB_H": (1.6255, 1.6255),
    "BB_Ks": (2.1813, 2.1813),
}


def irdis_wavelengths_um(filter_comb):
    """Wavelength of each IRDIS field for a filter combination.

    Parameters
    ----------
    filter_comb : str
        ``ESO INS COMB IFLT``.

    Returns
    -------
    wavelengths_um : `numpy.ndarray`, shape (2,)
        Left and right field (NaN for a combination not in the table).
    """
    return np.array(IRDIS_WAVELENGTHS_UM.get(filter_comb, (np.nan, np.nan)), dtype=np.float64)
