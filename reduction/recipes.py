"""Named, versioned recipes and the digest that identifies a run's inputs.

A recipe is a processing step with a name, a version and a frozen dataclass of
parameters. Bump the version whenever the step's output may change for the
same inputs: `inputs_digest` then changes, and ``spheredc reduce --pending``
redoes what it produced.
"""
import dataclasses
import hashlib
import json

from reduction.level1.ifs import IfsCubeParams
from reduction.level1.params import CalibrationParams, MasterCubeParams, PSFParams
from reduction.level2.params import Level2Params

__all__ = ["PIPELINE_NAME", "PIPELINE_VERSION", "Recipe", "MASTER_BACKGROUND", "MASTER_FLAT",
           "BAD_PIXEL_MAP", "MASTER_CUBE", "LEVEL2", "IFS_MASTER_CUBE", "IFS_LEVEL2", "RECIPES",
           "recipes_for_arm", "params_dict", "params_json", "inputs_digest"]

#: Name written in ``ESO PRO REC1 PIPE ID``.
PIPELINE_NAME = "spheredc"


def _pipeline_version():
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("spheredc")
    except PackageNotFoundError:  # running from a checkout that is not installed
        return "0.0.0"


#: spheredc version (``sphere.runs.pipeline_version``).
PIPELINE_VERSION = _pipeline_version()


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A processing step.

    Attributes
    ----------
    name : str
        Recipe identifier (``ESO PRO REC1 ID``, ``sphere.runs.recipe``).
    version : str
        Version of the step's algorithm.
    params : dataclass instance
        Parameters it runs with (a frozen dataclass of the science package).
    pro_catg : str
        ESO product category written in ``ESO PRO CATG``.
    """
    name: str
    version: str
    params: object
    pro_catg: str

    def with_params(self, params):
        """The same recipe with other parameters."""
        return dataclasses.replace(self, params=params)


MASTER_BACKGROUND = Recipe("spheredc_ird_master_background", "1.0", CalibrationParams(),
                           "IRD_MASTER_BACKGROUND")
MASTER_FLAT = Recipe("spheredc_ird_master_flat", "1.0", CalibrationParams(), "IRD_MASTER_FLAT")
BAD_PIXEL_MAP = Recipe("spheredc_ird_bad_pixel_map", "1.0", CalibrationParams(),
                       "IRD_BAD_PIXEL_MAP")
# The AO residual halo holds ~5-8 % of the light between 20 and 150 px from the
# star (H band): the recorded PSF flux is the star's total flux, so the aperture
# reaches 150 px (1.8 arcsec) and the residual background is taken beyond it.
MASTER_CUBE = Recipe("spheredc_ird_master_cube", "1.1",
                     MasterCubeParams(psf=PSFParams(size_px=65, aperture_radius_px=150.0,
                                                    annulus_px=(160.0, 200.0))),
                     "IRD_MASTER_CUBE")

# Level 2: full-frame PCA-ADI, ncomp by `reduction.level2.psfsub.default_ncomp`,
# S/N threshold 5. Frames are cropped to 150 px (1.84 arcsec at H) around the
# star, beyond the AO control radius (~0.8 arcsec at H): the speckle subtraction
# and the throughput injections cost ~5 s per field there against minutes on
# the whole 801-px crop of the master cube. The star residual zone is 3 FWHM
# (~12 px, 0.15 arcsec at H): the coronagraph (N_ALC_YJH_S, 0.0925 arcsec) covers
# 7.5 IRDIS pixels, ~1.9 FWHM, and its edge leaves bright residuals within about
# one FWHM of it (a S/N 5.3 one at 8 px on simulator seed 2); as for IFS below.
LEVEL2 = Recipe("spheredc_ird_level2", "1.1",
                Level2Params(outer_radius_px=150, residual_zone_fwhm=3.0), "IRD_LEVEL2")

# IFS: master cube from the sph_ifs_science_dr cubes (no calibration of ours).
IFS_MASTER_CUBE = Recipe("spheredc_ifs_master_cube", "1.0", IfsCubeParams(), "IFS_MASTER_CUBE")

# IFS level 2: single-pass PCA-ASDI over the 39 channels (ncomp by
# `reduction.level2.psfsub.default_ncomp_asdi`), then one spectrum per candidate.
# The input is cropped to 140 px (1.04 arcsec): after the spectral rescaling
# (x 1.39 in YJ) every channel covers the inner 100 px (0.75 arcsec), the
# field of the final image, beyond the AO control radius in YJ (~0.5 arcsec).
# The star residual zone is 3.5 FWHM (~14 px, 0.10 arcsec at YJ): the
# coronagraph (N_ALC_YJH_S, 0.0925 arcsec) covers 12.4 IFS pixels, 3.2 FWHM,
# and its edge leaves bright residuals that are not sources.
IFS_LEVEL2 = Recipe("spheredc_ifs_level2", "1.1",
                    Level2Params(algorithm="pca_asdi", outer_radius_px=140,
                                 residual_zone_fwhm=3.5), "IFS_LEVEL2")

#: Every recipe by name.
RECIPES = {r.name: r for r in (MASTER_BACKGROUND, MASTER_FLAT, BAD_PIXEL_MAP, MASTER_CUBE,
                               LEVEL2, IFS_MASTER_CUBE, IFS_LEVEL2)}


def recipes_for_arm(arm, master_cube=None, level2=None):
    """The (level-1, level-2) recipes that reduce a sequence of an arm.

    Parameters
    ----------
    arm : str
        ``sphere.sequences.arm``.
    master_cube, level2 : `Recipe`, optional
        The IRDIS recipes asked for (default `MASTER_CUBE`; ``level2`` None
        means no level 2). For IFS the IFS recipes replace them; level 2 is
        still run only when ``level2`` is given.

    Returns
    -------
    level1 : `Recipe`
    level2 : `Recipe` or None
    """
    if arm == "IFS":
        return IFS_MASTER_CUBE, (IFS_LEVEL2 if level2 is not None else None)
    return master_cube or MASTER_CUBE, level2


def params_dict(params):
    """Parameters as a plain dict (nested dataclasses flattened to dicts)."""
    return dataclasses.asdict(params) if dataclasses.is_dataclass(params) else dict(params)


def params_json(params):
    """Canonical JSON of the parameters (sorted keys, tuples as lists)."""
    return json.dumps(params_dict(params), sort_keys=True, separators=(",", ":"))


def inputs_digest(recipe, input_checksums):
    """SHA-256 identifying a run: recipe name, version, parameters and inputs.

    Parameters
    ----------
    recipe : `Recipe`
    input_checksums : iterable of str
        SHA-256 of every input file (raw files and calibration products);
        the order does not matter.

    Returns
    -------
    digest : str
        Hexadecimal SHA-256; two runs with the same digest write the same products.
    """
    h = hashlib.sha256()
    for part in (recipe.name, recipe.version, params_json(recipe.params),
                 *sorted(set(input_checksums))):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()
