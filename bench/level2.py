"""Benchmark: PCA-ADI (10 components) + S/N map + contrast curve, ours vs vip-hci defaults.

Synthetic IRDIS-like DBI master cube: 2 channels x 100 frames x 1024 x 1024
(float32, generated here). Both pipelines work on the same central crop,
the useful field of the benchmark (``--radius`` px around the star): vip-hci's
default rotation ('vip-fft') takes ~1 s per 401^2 frame and its exact S/N map
one photometry call per aperture and pixel, so the full 1024^2 frame would take
hours. Channels are processed one after the other (PCA-ADI per band).

Run: ``python bench/level2.py [--radius 60] [--frames 100] [--size 1024]``;
the default crop (121 x 121 px, 0.74") keeps vip-hci's part near 6 minutes.
"""
import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_cube(n_frames, size, rng):
    """(2, time, size, size) speckle cube with one companion per channel."""
    from reduction.level2 import contrast, synthetic
    from reduction.level2.psf import normalize_psf

    angles = np.linspace(-40.0, 40.0, n_frames)
    small = synthetic.speckle_cube(n_frames, 161, angles, drift=0.3, rng=rng)
    cube = np.zeros((2, n_frames, size, size), dtype=np.float32)
    c, h = size // 2, 80
    for k in range(2):  # same speckles, scaled in wavelength only by amplitude
        cube[k, :, c - h:c + h + 1, c - h:c + h + 1] = small * (1.0 - 0.1 * k)
    for k in range(2):  # float32 noise, channel by channel: keeps the peak memory low
        cube[k] += 2e-6 * rng.standard_normal(cube.shape[1:], dtype=np.float32)
    psf = synthetic.airy_psf(31)
    psf_norm, star_flux, fwhm = normalize_psf(psf)
    cube = contrast.inject_companions(cube,
                                      np.stack([psf_norm] * 2), angles, [30.0], [60.0],
                                      np.array([[3e-5 * star_flux] * 2]))
    return cube, angles, psf, psf_norm, star_flux, fwhm


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--radius", type=int, default=60)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args()

    import functools

    import vip_hci

    from reduction.level2 import contrast, geometry, psfsub, snr

    rng = np.random.default_rng(0)
    cube, angles, psf, psf_norm, star_flux, fwhm = make_cube(args.frames, args.size, rng)
    crop = np.ascontiguousarray(geometry.crop_center(cube, args.radius))
    del cube
    x_c, y_c = geometry.sep_pa_to_xy(30.0, 60.0, crop.shape)
    x_c, y_c = int(round(x_c)), int(round(y_c))

    t0 = time.perf_counter()
    ours_snr = []
    for k in range(2):
        alg = functools.partial(psfsub.pca_adi, ncomp=10)
        image = alg(crop[k], angles)
        m = snr.snr_map(image, fwhm)
        contrast.contrast_curve(crop[k], angles, psf_norm, star_flux, fwhm, alg,
                                pixscale_arcsec=0.01225, n_branches=1, image_no_fc=image)
        ours_snr.append(m[y_c - 1:y_c + 2, x_c - 1:x_c + 2].max())
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
        vip_snr.append(m[y_c - 1:y_c + 2, x_c - 1:x_c + 2].max())
    t_vip = time.perf_counter() - t0
    mem_all = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20

    print(f"cube 2 x {args.frames} x {args.size}^2, crop {crop.shape[-1]}^2, FWHM {fwhm:.2f} px")
    print(f"{'':10s}{'time_s':>10s}{'S/N ch1':>10s}{'S/N ch2':>10s}")
    print(f"{'ours':10s}{t_ours:10.1f}{ours_snr[0]:10.2f}{ours_snr[1]:10.2f}")
    print(f"{'vip-hci':10s}{t_vip:10.1f}{vip_snr[0]:10.2f}{vip_snr[1]:10.2f}")
    print(f"speed-up {t_vip / t_ours:.1f}x; S/N ratio ours/vip "
          f"{ours_snr[0] / vip_snr[0]:.3f}, {ours_snr[1] / vip_snr[1]:.3f}")
    print(f"peak RSS after ours {mem_ours:.2f} GiB, after both {mem_all:.2f} GiB")


if __name__ == "__main__":
    main()
