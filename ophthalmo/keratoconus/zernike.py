"""Zernike polynomials as exact x–y polynomials: basis, least-squares fit and derivatives.

Corneal topographers (and SmartKC) smooth their sparse ring samples of elevation with a
Zernike fit, then take curvature from the fitted surface. Each Zernike polynomial here is
expanded once into monomial coefficients ``C[a, b]`` of ``x**a * y**b`` (x, y normalised by the
fit radius), so that the fitted surface and its first and second derivatives are plain
polynomials: exact derivatives, no finite differences, and a fast Horner evaluation.

Conventions: OSA/ANSI single index ``j = (n (n + 2) + m) / 2``, orthonormal normalisation
(``sqrt(2 (n + 1))`` for ``m != 0``, ``sqrt(n + 1)`` for ``m == 0``), ``m > 0`` the cosine
terms and ``m < 0`` the sine terms, θ counter-clockwise from +x (the examiner's right).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from math import comb, factorial

import numpy as np
from numpy.polynomial import polynomial as npoly

__all__ = [
    "MAX_DEGREE",
    "ZernikeFit",
    "fit_zernike",
    "level_fit",
    "mirror_x",
    "n_terms",
    "zernike_basis",
    "zernike_index",
    "zernike_monomials",
]

#: Highest radial degree supported (the monomial expansion stays well conditioned up to here).
MAX_DEGREE = 14


def n_terms(degree: int) -> int:
    """Number of Zernike terms up to and including radial degree ``degree``."""
    return (degree + 1) * (degree + 2) // 2


def zernike_index(j: int) -> tuple[int, int]:
    """OSA/ANSI single index ``j`` → (n, m)."""
    if j < 0:
        raise ValueError(f"Zernike index must be >= 0, got {j}")
    n = int((np.sqrt(8 * j + 1) - 1) // 2)
    while n_terms(n) <= j:
        n += 1
    while n > 0 and n_terms(n - 1) > j:
        n -= 1
    m = 2 * j - n * (n + 2)
    return n, m


def _check_degree(degree: int) -> int:
    if not isinstance(degree, int | np.integer) or not 0 <= degree <= MAX_DEGREE:
        raise ValueError(f"Zernike degree must be an integer in 0..{MAX_DEGREE}, got {degree!r}")
    return int(degree)


def _polymul2d(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.zeros((a.shape[0] + b.shape[0] - 1, a.shape[1] + b.shape[1] - 1))
    for (i, k), value in np.ndenumerate(a):
        if value:
            out[i : i + b.shape[0], k : k + b.shape[1]] += value * b
    return out


@lru_cache(maxsize=8)
def zernike_monomials(degree: int) -> np.ndarray:
    """Monomial coefficients of every term: array (n_terms, degree + 1, degree + 1).

    ``out[j, a, b]`` multiplies ``x**a * y**b`` (unit-disk coordinates) in term ``j``.
    """
    degree = _check_degree(degree)
    size = degree + 1
    out = np.zeros((n_terms(degree), size, size))
    for j in range(n_terms(degree)):
        n, m = zernike_index(j)
        am = abs(m)
        # Re / Im of (x + i y)**|m| give rho**|m| cos(|m| θ) and rho**|m| sin(|m| θ).
        angular = np.zeros((am + 1, am + 1))
        for k in range(am + 1):
            if (m >= 0 and k % 2 == 0) or (m < 0 and k % 2 == 1):
                sign = (-1) ** (k // 2)
                angular[am - k, k] = sign * comb(am, k)
        term = np.zeros((size, size))
        for s in range((n - am) // 2 + 1):
            c = (-1) ** s * factorial(n - s)
            c /= factorial(s) * factorial((n + am) // 2 - s) * factorial((n - am) // 2 - s)
            p = (n - 2 * s - am) // 2  # power of (x**2 + y**2)
            radial = np.zeros((2 * p + 1, 2 * p + 1))
            for q in range(p + 1):
                radial[2 * q, 2 * (p - q)] = comb(p, q)
            prod = _polymul2d(radial, angular)
            term[: prod.shape[0], : prod.shape[1]] += c * prod
        norm = np.sqrt(2 * (n + 1)) if m != 0 else np.sqrt(n + 1)
        out[j] = norm * term
    out.setflags(write=False)
    return out


def _powers(u: np.ndarray, degree: int) -> np.ndarray:
    out = np.empty((u.size, degree + 1))
    out[:, 0] = 1.0
    for k in range(1, degree + 1):  # repeated products: far faster than u ** k
        out[:, k] = out[:, k - 1] * u
    return out


@lru_cache(maxsize=8)
def _basis_matrix(degree: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exponents (a, b) with a + b <= degree and the matching rows of every term's expansion."""
    a, b = np.nonzero(np.add.outer(np.arange(degree + 1), np.arange(degree + 1)) <= degree)
    coefs = np.ascontiguousarray(zernike_monomials(degree)[:, a, b].T)  # (n_mono, n_terms)
    return a, b, coefs


def zernike_basis(x: np.ndarray, y: np.ndarray, *, degree: int, radius: float) -> np.ndarray:
    """Zernike terms evaluated at points: array (N, n_terms(degree)).

    ``x``, ``y`` in mm; ``radius`` (mm) normalises them onto the unit disk.
    """
    degree = _check_degree(degree)
    if not radius > 0:
        raise ValueError(f"Zernike radius must be > 0 mm, got {radius!r}")
    u = np.asarray(x, dtype=float).ravel() / radius
    v = np.asarray(y, dtype=float).ravel() / radius
    a, b, coefs = _basis_matrix(degree)
    mono = _powers(u, degree)[:, a] * _powers(v, degree)[:, b]
    return mono @ coefs


def mirror_x(coefficients: np.ndarray) -> np.ndarray:
    """Coefficients of the surface mirrored left–right (x → −x), e.g. the fellow eye.

    Cosine terms with odd m and sine terms with even |m| change sign.
    """
    coefs = np.asarray(coefficients, dtype=float).copy()
    for j in range(coefs.size):
        _, m = zernike_index(j)
        if (m > 0 and m % 2 == 1) or (m < 0 and m % 2 == 0):
            coefs[j] = -coefs[j]
    return coefs


@dataclass(frozen=True)
class ZernikeFit:
    """A fitted Zernike surface ``z(x, y)`` in mm on a disk of ``radius`` mm.

    Attributes
    ----------
    coefficients : ndarray
        OSA/ANSI coefficients (mm), length ``n_terms(degree)``.
    degree : int
        Highest radial degree.
    radius : float
        Normalisation radius (mm); evaluating beyond it extrapolates.
    rms_residual_mm : float
        Root-mean-square residual of the fit at the samples.
    n_points : int
        Number of samples fitted.
    """

    coefficients: np.ndarray
    degree: int
    radius: float
    rms_residual_mm: float = float("nan")
    n_points: int = 0

    def _poly(self) -> np.ndarray:
        mono = zernike_monomials(self.degree)
        return np.tensordot(np.asarray(self.coefficients, dtype=float), mono, axes=1)

    def sag(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Surface height (mm) at points (mm)."""
        u = np.asarray(x, dtype=float) / self.radius
        v = np.asarray(y, dtype=float) / self.radius
        return npoly.polyval2d(u, v, self._poly())

    def derivatives(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
        """``(z, z_x, z_y, z_xx, z_xy, z_yy)`` at points (mm; derivatives per mm)."""
        u = np.asarray(x, dtype=float) / self.radius
        v = np.asarray(y, dtype=float) / self.radius
        p = self._poly()
        r = self.radius
        px = npoly.polyder(p, axis=0)
        py = npoly.polyder(p, axis=1)
        pxx = npoly.polyder(px, axis=0)
        pxy = npoly.polyder(px, axis=1)
        pyy = npoly.polyder(py, axis=1)
        return (
            npoly.polyval2d(u, v, p),
            npoly.polyval2d(u, v, px) / r,
            npoly.polyval2d(u, v, py) / r,
            npoly.polyval2d(u, v, pxx) / r**2,
            npoly.polyval2d(u, v, pxy) / r**2,
            npoly.polyval2d(u, v, pyy) / r**2,
        )


def fit_zernike(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    *,
    degree: int = 8,
    radius: float | None = None,
) -> ZernikeFit:
    """Least-squares Zernike fit of scattered elevation samples.

    Parameters
    ----------
    x, y, z : array_like
        Sample positions and heights (mm). Non-finite samples are dropped.
    degree : int
        Highest radial degree (8 as in SmartKC; at most :data:`MAX_DEGREE`).
    radius : float, optional
        Normalisation radius (mm); default: the largest sample radius.

    Returns
    -------
    ZernikeFit
    """
    degree = _check_degree(degree)
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    z = np.asarray(z, dtype=float).ravel()
    if not x.size == y.size == z.size:
        raise ValueError(f"x, y, z must have the same length, got {x.size}, {y.size}, {z.size}")
    keep = np.isfinite(x) & np.isfinite(y) & np.isfinite(z)
    x, y, z = x[keep], y[keep], z[keep]
    n_coef = n_terms(degree)
    if x.size < 2 * n_coef:
        raise ValueError(
            f"a degree-{degree} Zernike fit needs at least {2 * n_coef} finite samples "
            f"({n_coef} terms), got {x.size}"
        )
    if radius is None:
        radius = float(np.max(np.hypot(x, y)))
    if not radius > 0:
        raise ValueError("the samples span no radius (all at the origin)")
    basis = zernike_basis(x, y, degree=degree, radius=radius)
    # Normal equations: Zernike terms are near-orthogonal on a well-covered disk, so this is
    # well conditioned and several times faster than an SVD; fall back to lstsq otherwise.
    gram = basis.T @ basis
    if np.linalg.cond(gram) < 1e8:
        coefs = np.linalg.solve(gram, basis.T @ z)
    else:
        coefs, *_ = np.linalg.lstsq(basis, z, rcond=None)
    resid = z - basis @ coefs
    return ZernikeFit(
        coefficients=coefs,
        degree=degree,
        radius=float(radius),
        rms_residual_mm=float(np.sqrt(np.mean(resid**2))),
        n_points=int(x.size),
    )


def level_fit(fit: ZernikeFit) -> ZernikeFit:
    """The fit with its tilt at the origin removed (normal at the vertex along the axis).

    A Placido topographer centres on the corneal reflex, where the surface normal is the
    instrument axis; a fitted surface with residual slope at the origin makes axial power
    diverge there (``z_s / s`` with ``z_s(0) != 0``). Only the two tilt terms change
    (``Z_1 = 2 y / r``, ``Z_2 = 2 x / r``); piston is set so that z(0, 0) = 0.
    """
    if fit.degree < 1:
        return fit
    z0, zx, zy, *_ = fit.derivatives(np.zeros(1), np.zeros(1))
    coefs = np.asarray(fit.coefficients, dtype=float).copy()
    coefs[1] -= float(zy[0]) * fit.radius / 2.0
    coefs[2] -= float(zx[0]) * fit.radius / 2.0
    coefs[0] -= float(z0[0])
    return ZernikeFit(
        coefficients=coefs,
        degree=fit.degree,
        radius=fit.radius,
        rms_residual_mm=fit.rms_residual_mm,
        n_points=fit.n_points,
    )
