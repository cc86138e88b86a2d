"""Level-2 science: speckle subtraction, S/N maps, detection limits, candidates.

Pure functions on arrays (no files but `hcifits.write_hci_fits`); vip-hci and
other heavy libraries are imported inside the functions that use them.
Modules: `psfsub` (stack, median ADI, PCA-ADI, annular PCA, PCA-ASDI by
vip-hci), `asdi` (fast single-pass PCA-ASDI), `snr` (Mawet et al. 2014 S/N maps), `contrast` (detection limits),
`detection` (candidates), `spectrum` (IFS spectra), `hcifits` (HCI-FITS
writer), `postprocess` (the whole chain), `psf`, `geometry`, `params`,
`synthetic` (test sequences), `exceptions`.
"""
from .params import Level2Params
from .postprocess import Level2Result, run_postprocess

__all__ = ["Level2Params", "Level2Result", "run_postprocess"]
