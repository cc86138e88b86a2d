"""SPHERE constants the simulator needs (values from SPHERE-DATA.md).

Only numbers live here, so the optics, the detector and the headers agree on
one copy of each.
"""
#: Telescope pupil (m) and central obstruction (fraction of the diameter).
PUPIL_DIAMETER_M = 8.0
CENTRAL_OBSCURATION = 0.14
SPIDER_WIDTH_M = 0.05
#: Spider leg directions (deg from +x): the VLT's 'X' with 101/79 deg openings.
SPIDER_ANGLES_DEG = (50.5, 129.5, 230.5, 309.5)
#: Actuators across the pupil of SPHERE's high-order deformable mirror.
N_ACTUATORS = 40

#: Pixel scales (arcsec/pixel) and anamorphism correction factors (x, y).
IRDIS_PIXSCALE_ARCSEC = 0.01225
IFS_PIXSCALE_ARCSEC = 0.00746
IRDIS_ANAMORPHISM = (1.0, 1.0062)
IFS_ANAMORPHISM = (1.0059, 1.0011)

#: Derotation angle offsets (deg): theta = parang + PUP + TN + INSTRUMENT.
PUPIL_OFFSET_DEG = 135.99
TRUE_NORTH_DEG = -1.75
IFS_OFFSET_DEG = -100.48

#: Filter combinations: central wavelength (um) of the (left, right) fields.
IRDIS_FILTERS = {
    "DB_H23": (1.593, 1.667),
    "BB_Ks": (2.18, 2.18),
}
#: IRDIS filter keywords (INS1 FILT NAME, INS1 OPTI2 NAME, INS1 MODE).
IRDIS_FILTER_KEYS = {
    "DB_H23": ("B_H", "D_H23", "DBI"),
    "BB_Ks": ("B_Ks", "CLEAR", "CI"),
}
#: IFS YJ mode: 39 channels.
IFS_YJ_RANGE_UM = (0.957, 1.329)
IFS_N_CHANNELS = 39
IFS_CUBE_SIZE = 291

#: Neutral density transmissions.
ND_TRANSMISSION = {"OPEN": 1.0, "ND_1.0": 0.1, "ND_2.0": 0.01, "ND_3.5": 10 ** -3.5}

#: Apodized Lyot coronagraph mask radii (arcsec).
CORONAGRAPH_RADIUS_ARCSEC = {"N_ALC_YJH_S": 0.0925, "N_ALC_YJH_L": 0.12, "N_ALC_Ks": 0.12,
                             "N_NS_CLEAR": 0.0}

#: IRDIS detector.
IRDIS_SHAPE = (1024, 2048)
FIELD_SIZE = 1024
DEFAULT_CENTERS = {"left": (485.0, 520.0), "right": (486.0, 508.0)}
#: Unusable zones (0-based, inclusive ranges) of the full 2048 x 1024 frame.
DEAD_ROWS = ((0, 14), (1013, 1023))
DEAD_COLUMNS = ((0, 49), (941, 1077), (1966, 2047))
SATURATION_ADU = 65535

#: Seconds between two frames of a cube beyond the DIT, and between two files.
FRAME_OVERHEAD_S = 0.3
FILE_OVERHEAD_S = 5.0
