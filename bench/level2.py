"""Benchmark: PCA-ADI (10 components) + S/N map + contrast curve, ours vs vip-hci defaults.

Synthetic IRDIS-like DBI master cube: 2 channels x 100 frames x 1024 x 1024
(float32, 800 MB, generated here). Both pipelines work on the same central crop,
the useful field of the benchmark (``--radius`` px around the star): vip-hci's
default rotation ('vip-fft') takes ~0.2 s per 121^2 frame and its exact S/N map
one photometry call per aperture and pixel, so the full 1024^2 frame would take
hours. Channels are processed one after the other (PCA-ADI per band).

S/N agreement: eight fake companions per channel (3e-5 contrast, 15 to 50 px),
injected into the crop only. The S/N of one source changes by ~10 % between
two valid interpolators (the ring of ~30 background apertures is a small
sample), so the table gives the median ratio over companions at >= 4 FWHM and
the per-companion spread.

Peak memory: ``ru_maxrss`` of this process (cube generation included) after
our part, and after both.

Run: ``python bench/level2.py [--radius 60] [--frames 100] [--size 1024]``;
the default crop (121 x 121 px, 0.74") keeps vip-hci's part near 10 minutes.
"""
import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SEP_PX = np.array([15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0])
PA_DEG = np.arange(SEP_PX.size) * 137.5 % 360.0
CONTRAST = 3e-5


def make_master_cube(n_frames, size, rng):
    """(2, time, size, size) float32 speckle cube, built in place."""
    from reduction.level2 import synthetic

    angles = np.linspace(-40.0, 40.0, n_frames)
    small = synthetic.speckle_cube(n_frames, 161, angles, drift=0.3, rng=rng)
    cube = np.empty((2, n_frames, size, size), dtype=np.float32)
    c, h = size // 2, 80
    for k in range(2):  # same speckles, scaled in wavelength only by amplitude
        # float32 noise frame by frame: no 400 MB temporary
        for i in range(n_frames):
            rng.standard_normal(cube.shape[2:], dtype=np.float32, out=cube[k, i])
        cube[k] *= 2e-6
        cube[k, :, c - h:c + h + 1, c - h:c + h + 1] += small * (1.0 - 0.1 * k)
    return cube, angles


def snr_at_companions(snr_image):
    from reduction.level2 import geometry

    xs, ys = geometry.sep_pa_to_xy(SEP_PX, PA_DEG, snr_image.shape)
    return np.array([snr_image[int(round(y)) - 1:int(round(y)) + 2,
                               int(round(x)) - 1:int(round(x)) + 2].max()
                     for x, y in zip(xs, ys)])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--radius", type=int, default=60)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args()

    import functools

    import vip_hci

    from reduction.level2 import Level2Params, contrast, geometry, psfsub, snr, synthetic
    from reduction.level2.psf import normalize_psf

    rng = np.random.default_rng(0)
    cube, angles = make_master_cube(args.frames, args.size, rng)
    crop = np.array(geometry.crop_center(cube, args.radius))  # a copy: the cube can go
    del cube
    psf_norm, star_flux, fwhm = normalize_psf(synthetic.airy_psf(31))
    for k in range(2):
        crop[k] = contrast.inject_companions(crop[k], psf_norm, angles, SEP_PX, PA_DEG,
                                             np.full(SEP_PX.size, CONTRAST * star_flux))
    mem_cube = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    params = Level2Params()
    rot = {"imlib": params.imlib, "interpolation": params.interpolation}

    t0 = time.perf_counter()
    ours_snr = []
    for k in range(2):
        alg = functools.partial(psfsub.pca_adi, ncomp=10, **rot)
        image = alg(crop[k], angles)
        m = snr.snr_map(image, fwhm)
        contrast.contrast_curve(crop[k], angles, psf_norm, star_flux, fwhm, alg,
                                pixscale_arcsec=0.01225, n_branches=1, image_no_fc=image)
        ours_snr.append(snr_at_companions(m))
    t_ours = time.perf_counter() - t0
    mem_ours = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20

    t0 = time.perf_counter()
    vip_snr = []
    for k in range(2):
        image = vip_hci.psfsub.pca(cube=crop[k], angle_list=angles, ncomp=10, verbose=False)
        m = vip_hci.metrics.snrmap(image, fwhm, verbose=False, nproc=1)
        vip_hci.metrics.contrast_curve(crop[k], angles, psf_norm, fwhm, 0.01225, star_flux,
                                       vip_hci.psfsub.pca, nbranch=1, ncomp=10,
                                       plot=False, verbose=False)
        vip_snr.append(snr_at_companions(m))
    t_vip = time.perf_counter() - t0
    mem_all = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20

    far = SEP_PX >= 4 * fwhm
    ratio = np.array(ours_snr) / np.array(vip_snr)
    print(f"cube 2 x {args.frames} x {args.size}^2 float32, crop {crop.shape[-1]}^2, "
          f"FWHM {fwhm:.2f} px; ours: {params.imlib}/{params.interpolation}, "
          f"vip-hci defaults: vip-fft rotation, exact snrmap")
    print(f"{'':10s}{'time_s':>10s}  S/N of the companions (ch1 | ch2)")
    for name, t, s in (("ours", t_ours, ours_snr), ("vip-hci", t_vip, vip_snr)):
        print(f"{name:10s}{t:10.1f}  {np.array2string(s[0], precision=1)} | "
              f"{np.array2string(s[1], precision=1)}")
    print(f"speed-up {t_vip / t_ours:.1f}x")
    print(f"S/N ratio ours/vip at >= 4 FWHM: median {np.median(ratio[:, far]):.3f}, "
          f"range {ratio[:, far].min():.3f}..{ratio[:, far].max():.3f} "
          f"(all: median {np.median(ratio):.3f})")
    print(f"peak RSS: cube built {mem_cube:.2f} GiB, after ours {mem_ours:.2f} GiB, "
          f"after both {mem_all:.2f} GiB")


if __name__ == "__main__":
    main()
