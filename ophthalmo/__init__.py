"""ophthalmo: smartphone eye tests.

- :mod:`ophthalmo.retinoscopy`: a streak-retinoscopy video → refractive error of a meridian.
- :mod:`ophthalmo.keratoconus`: corneal topography, clinical indices and a dual-head CNN that
  screens curvature heatmaps for keratoconus.
"""
