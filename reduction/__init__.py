"""The embedded reduction engine.

Science (arrays in, arrays out, nothing of ours imported): `reduction.level1`
(raw frames to master cubes), `reduction.level2` (post-processing), and the night
simulator `reduction.simulator`. The thin layer around level 1 reads the archive,
writes products and records provenance:

- `reduction.sequence_io`: a sequence, its files and calibration associations;
- `reduction.policy`: the missing-calibration policy (reduce with flags, or refuse);
- `reduction.recipes`: named, versioned recipes and the inputs digest of a run;
- `reduction.calib_products`: master backgrounds, flats, bad-pixel maps, shared;
- `reduction.fitsmeta`, `reduction.products`, `reduction.previews`: reproducible
  FITS and PNG files, registration in ``sphere.products``/``product_inputs``;
- `reduction.provenance`: ``sphere.runs``;
- `reduction.level1_run`: one sequence end to end; `reduction.engine`: many, on Dask.
"""
