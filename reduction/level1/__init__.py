"""Level 1 of the reduction: raw frames to calibrated master cubes.

Pure science functions (arrays in, arrays out): calibrations, geometry, bad pixels,
centring on waffle spots, frame times and angles, frame selection, off-axis PSF,
and `build_master_cube` that chains them for one sequence. File input/output,
provenance and distribution are done by the caller.
"""
from .angles import derotation_angle_deg, frame_times_mjd, interpolate_parang_deg
from .badpix import correct_bad_pixels
from .calibrations import bad_pixel_map, master_background, master_flat
from .centring import centre_from_waffle
from .cube import Calibrations, MasterCube, RawFile, build_master_cube
from .geometry import recentre, split_fields
from .normalise import nd_transmission, normalise_flux
from .params import (CalibrationParams, CentringParams, MasterCubeParams, PSFParams,
                     SelectionParams)
from .psf import measure_psf
from .selection import select_frames

__all__ = ["derotation_angle_deg", "frame_times_mjd", "interpolate_parang_deg",
           "correct_bad_pixels", "bad_pixel_map", "master_background", "master_flat",
           "centre_from_waffle", "Calibrations", "MasterCube", "RawFile", "build_master_cube",
           "recentre", "split_fields", "nd_transmission", "normalise_flux",
           "CalibrationParams", "CentringParams", "MasterCubeParams", "PSFParams",
           "SelectionParams", "measure_psf", "select_frames"]
