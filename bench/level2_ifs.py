"""Benchmark: IFS PCA-ASDI (single pass), ours vs vip-hci's ``pca(adimsdi='single')``.

Synthetic IFS-like master cube: 39 channels (YJ, 0.957-1.329 um) x ``--frames``
frames x ``--size`` px, whose speckles scale with wavelength (the same
aberrations seen at lambda/D = 3.46 px x wavelength / 0.957 um, the IFS
sampling), with photon-like noise and eight fake companions of contrast
``CONTRAST`` at 20 to 55 px. Both run the same model on the same cube and the
same number of components (`reduction.level2.psfsub.default_ncomp_asdi`
unless ``--ncomp``):

- ours: `reduction.level2.asdi.pca_asdi` (separable cubic-convolution
  rescaling, Gram-matrix PCA, skimage biquintic derotation);
- vip-hci defaults: ``vip_hci.psfsub.pca(cube, angle_list, scale_list,
  ncomp, adimsdi='single')`` with its default interpolations (FFT rescaling
  ``imlib2='vip-fft'``, FFT rotation ``imlib='vip-fft'``) and
  ``crop_ifs=False`` so that the long-wavelength field is kept as ours;
- vip-hci fast: the same with skimage biquintic rotation (its FFT rescaling
  has no faster alternative: ``imlib2='ndimage'`` is slower still, and
  opencv is not installed).

S/N: `reduction.level2.snr.snr_map` of each image at the companions, on the
field our image covers (radius ``(size // 2) x 0.957 / 1.329``).

Run: ``python bench/level2_ifs.py [--frames 20] [--size 201] [--ncomp N]``.
"""
import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SEP_PX = np.array([20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0, 55.0])
PA_DEG = np.arange(SEP_PX.size) * 137.5 % 360.0
CONTRAST = 2e-4
WAVELENGTHS_UM = np.linspace(0.957, 1.329, 39)


def make_cube(n_frames, size, rng):
    """(39, time, size, size) float32 speckles scaling with wavelength, with noise."""
    from reduction.level2 import synthetic

    angles = np.linspace(-15.0, 15.0, n_frames)  # little rotation: ASDI's use case
    lod = 3.46 * WAVELENGTHS_UM / WAVELENGTHS_UM[0]
    seed = int(rng.integers(1 << 31))
    # the same seed in every channel: the same aberrations at another wavelength
    cube = np.stack([synthetic.speckle_cube(n_frames, size, angles, lambda_over_d_px=v,
                                            drift=0.1, noise_level=2e-6, rng=seed)
                     for v in lod])
    psf = np.stack([synthetic.airy_psf(31, lambda_over_d_px=v) for v in lod])
    return cube, angles, psf


def snr_at_companions(image, fwhm_px):
    from reduction.level2 import geometry, snr

    m = snr.snr_map(image, fwhm_px)
    xs, ys = geometry.sep_pa_to_xy(SEP_PX, PA_DEG, image.shape)
    return np.array([m[int(round(y)) - 1:int(round(y)) + 2,
                       int(round(x)) - 1:int(round(x)) + 2].max() for x, y in zip(xs, ys)])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--size", type=int, default=201)
    parser.add_argument("--ncomp", type=int)
    args = parser.parse_args()

    import vip_hci

    from reduction.level2 import asdi, contrast, geometry, psfsub
    from reduction.level2.psf import normalize_psf

    rng = np.random.default_rng(0)
    cube, angles, psf = make_cube(args.frames, args.size | 1, rng)
    psf_norm, star_flux, fwhm = normalize_psf(psf)
    fwhm_px = float(np.mean(fwhm))
    flux = CONTRAST * star_flux[None, :] * np.ones((SEP_PX.size, 1))
    cube = contrast.inject_companions(cube, psf_norm, angles, SEP_PX, PA_DEG, flux)
    ncomp = args.ncomp or psfsub.default_ncomp_asdi(cube.shape[0], cube.shape[1])
    mem_cube = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    r = asdi.valid_radius_px(cube.shape[-1], asdi.scale_factors(WAVELENGTHS_UM))
    scale_list = WAVELENGTHS_UM.max() / WAVELENGTHS_UM

    t0 = time.perf_counter()
    ours = asdi.pca_asdi(cube, angles, WAVELENGTHS_UM, ncomp)
    t_ours = time.perf_counter() - t0
    mem_ours = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20

    runs = {}
    for name, rot in (("vip-hci defaults", {}),
                      ("vip-hci skimage", {"imlib": "skimage", "interpolation": "biquintic"})):
        t0 = time.perf_counter()
        image = vip_hci.psfsub.pca(cube=cube, angle_list=angles, scale_list=scale_list,
                                   ncomp=ncomp, adimsdi="single", crop_ifs=False,
                                   verbose=False, **rot)
        runs[name] = (time.perf_counter() - t0,
                      geometry.crop_center(np.nan_to_num(image).astype(np.float32), r))
    mem_all = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20

    s_ours = snr_at_companions(ours, fwhm_px)
    print(f"cube 39 x {cube.shape[1]} x {cube.shape[-1]}^2 float32, ncomp {ncomp}, "
          f"FWHM {fwhm_px:.2f} px, image {ours.shape[-1]}^2")
    print(f"{'':18s}{'time_s':>8s}  S/N of the companions ({SEP_PX[0]:.0f}..{SEP_PX[-1]:.0f} px)")
    print(f"{'ours':18s}{t_ours:8.2f}  {np.array2string(s_ours, precision=1)}")
    for name, (t, image) in runs.items():
        s = snr_at_companions(image, fwhm_px)
        ring = np.hypot(*(np.indices(ours.shape) - r)) > 2 * fwhm_px
        corr = np.corrcoef(ours[ring], image[ring])[0, 1]
        print(f"{name:18s}{t:8.2f}  {np.array2string(s, precision=1)}  speed-up "
              f"{t / t_ours:.1f}x, S/N ratio ours/vip median {np.median(s_ours / s):.3f} "
              f"(range {np.min(s_ours / s):.3f}..{np.max(s_ours / s):.3f}), "
              f"image correlation {corr:.3f}")
    print(f"peak RSS: cube built {mem_cube:.2f} GiB, after ours {mem_ours:.2f} GiB, "
          f"after vip-hci {mem_all:.2f} GiB")


if __name__ == "__main__":
    main()
