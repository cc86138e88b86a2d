"""Named, versioned recipes and the digest that identifies a run's inputs.

A recipe is a processing step with a name, a version and a frozen dataclass of
parameters. Bump the version whenever the step's output may change for the
same inputs: `inputs_digest` then changes, and ``spheredc reduce --pending``
redoes what it produced.
"""
import dataclasses
import hashlib
import json

from reduction.level1.params import CalibrationParams, MasterCubeParams, PSFParams
from reduction.level2.params import Level2Params

__all__ = ["PIPELINE_NAME", "PIPELINE_VERSION", "Recipe", "MASTER_BACKGROUND", "MASTER_FLAT",
           "BAD_PIXEL_MAP", "MASTER_CUBE", "LEVEL2", "RECIPES", "params_dict", "params_json",
           "inputs_digest"]

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
MASTER_CUBE = Recipe("spheredc_ird_master_cube", "1.0",
                     MasterCubeParams(psf=PSFParams(size_px=65, aperture_radius_px=150.0,
                                                    annulus_px=(160.0, 200.0))),
                     "IRD_MASTER_CUBE")

# Level 2: full-frame PCA-ADI, ncomp by `reduction.level2.psfsub.default_ncomp`,
# S/N threshold 5. Frames are cropped to 150 px (1.84 arcsec at H) around the
# star, beyond the AO control radius (~0.8 arcsec at H): the speckle subtraction
# and the throughput injections cost ~5 s per field there against minutes on
# the whole 801-px crop of the master cube.
LEVEL2 = Recipe("spheredc_ird_level2", "1.0", Level2Params(outer_radius_px=150),
                "IRD_LEVEL2")

#: Every recipe by name.
RECIPES = {r.name: r for r in (MASTER_BACKGROUND, MASTER_FLAT, BAD_PIXEL_MAP, MASTER_CUBE,
                               LEVEL2)}


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
