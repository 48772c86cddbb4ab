"""Four-spacecraft analysis: gradients, current density and the tetrahedron's shape (Paschmann & Daly (eds.),
*Analysis Methods for Multi-Spacecraft Data*, ISSI Scientific Report SR-001, 1998).

* :func:`reciprocal_vectors` (Chanteur, SR-001 chapter 14) and :func:`gradient`: the linear estimate of a
  field's spatial gradient from its values at four points; :func:`curl` and :func:`divergence` from it;
* :func:`curlometer` (Dunlop et al. 1988; Robert et al., SR-001 chapter 16): Ampère's law on the three faces of the
  tetrahedron that meet at the first spacecraft, giving the current density and ``|div B| / |curl B|``;
* :func:`tetrahedron_shape`: the volumetric tensor (Harvey, SR-001 chapter 12), its semiaxes, the elongation and
  planarity (Robert et al., SR-001 chapter 13) and the characteristic size;
* :func:`current_density`: all of it on a constellation dataset (:func:`heliohub.open_constellation`).

Arrays have the spacecraft on their first axis (four of them) and the vector components on their last (three).
Positions are in km and fields in nT, as the CSA gives them; currents come out in nA/m².
"""

from __future__ import annotations

import logging

import numpy as np
import xarray as xr

from ..errors import HeliohubError

log = logging.getLogger(__name__)

MU0 = 4e-7 * np.pi
"""The vacuum permeability in T m/A (the SI value before 2019, within 1e-9 of today's)."""
NANO_AMPERE_PER_M2 = 1e-12 / MU0 * 1e9
"""A curl of 1 nT/km as a current density in nA/m² (nT/km = 1e-12 T/m; A/m² = 1e9 nA/m²)."""
_OTHERS = [(1, 2, 3), (0, 2, 3), (0, 1, 3), (0, 1, 2)]


def _four(values: np.ndarray, what: str) -> np.ndarray:
    values = np.asarray(values, dtype="float64")
    if values.ndim < 2 or values.shape[0] != 4 or values.shape[-1] != 3:
        raise HeliohubError(f"{what}: expected the four spacecraft first and three components last, "
                            f"got shape {values.shape}")
    return values


def reciprocal_vectors(positions: np.ndarray) -> np.ndarray:
    """The tetrahedron's reciprocal vectors k_α, in 1/km: for each spacecraft α and the other
    three β, γ, λ, k_α = (r_βγ × r_βλ) / (r_βα · (r_βγ × r_βλ)). They add to zero and Σ k_α r_αᵀ is the identity."""
    r = _four(positions, "reciprocal_vectors")
    out = np.empty_like(r)
    for alpha, (beta, gamma, lam) in enumerate(_OTHERS):
        normal = np.cross(r[gamma] - r[beta], r[lam] - r[beta])
        out[alpha] = normal / np.einsum("...k,...k->...", r[alpha] - r[beta], normal)[..., None]
    return out


def gradient(field: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """The linear estimate of a vector field's gradient, ``G[..., i, j] = ∂B_j/∂x_i`` (field units per km), from
    its values at the four spacecraft (∂_i B_j = Σ_α k_αi B_αj, SR-001 chapter 14). Exact for a linear field."""
    return np.einsum("a...i,a...j->...ij", reciprocal_vectors(positions), _four(field, "gradient"))


def curl(grad: np.ndarray) -> np.ndarray:
    """The curl from a gradient ``G[..., i, j] = ∂B_j/∂x_i``."""
    return np.stack([grad[..., 1, 2] - grad[..., 2, 1], grad[..., 2, 0] - grad[..., 0, 2],
                     grad[..., 0, 1] - grad[..., 1, 0]], axis=-1)


def divergence(grad: np.ndarray) -> np.ndarray:
    """The divergence from a gradient ``G[..., i, j] = ∂B_j/∂x_i``."""
    return np.trace(grad, axis1=-2, axis2=-1)


def curlometer(field: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The current density (nA/m²) from B (nT) and positions (km) by Dunlop's curlometer: μ0 J·(Δr_i × Δr_j) =
    ΔB_i·Δr_j − ΔB_j·Δr_i on the three faces meeting at the first spacecraft (SR-001 chapter 16); and the
    estimate's quality ``|div B| / |curl B|``, div B from the same faces."""
    b, r = _four(field, "curlometer"), _four(positions, "curlometer")
    dr, db = r[1:] - r[0], b[1:] - b[0]
    faces = [(0, 1), (1, 2), (2, 0)]
    normals = np.stack([np.cross(dr[i], dr[j]) for i, j in faces], axis=-2)
    rhs = np.stack([np.einsum("...k,...k->...", db[i], dr[j]) - np.einsum("...k,...k->...", db[j], dr[i])
                    for i, j in faces], axis=-1)
    curl_b = np.linalg.solve(normals, rhs[..., None])[..., 0]
    volume = np.einsum("...k,...k->...", dr[0], np.cross(dr[1], dr[2]))
    div_b = (np.einsum("...k,...k->...", db[0], np.cross(dr[1], dr[2]))
             + np.einsum("...k,...k->...", db[1], np.cross(dr[2], dr[0]))
             + np.einsum("...k,...k->...", db[2], np.cross(dr[0], dr[1]))) / volume
    with np.errstate(invalid="ignore", divide="ignore"):
        quality = np.abs(div_b) / np.linalg.norm(curl_b, axis=-1)
    return curl_b * NANO_AMPERE_PER_M2, quality


def tetrahedron_shape(positions: np.ndarray) -> dict[str, np.ndarray]:
    """The tetrahedron's volumetric tensor R = ¼ Σ (r_α − r_b)(r_α − r_b)ᵀ (r_b the barycentre) and its shape
    (SR-001 chapters 12 and 13): semiaxes a ≥ b ≥ c (square roots of R's eigenvalues, km), elongation E = 1 − b/a,
    planarity P = 1 − c/b (both 0 for a regular tetrahedron) and the characteristic size L = 2a (km)."""
    r = _four(positions, "tetrahedron_shape")
    offsets = r - r.mean(axis=0)
    tensor = np.einsum("a...k,a...l->...kl", offsets, offsets) / 4
    semiaxes = np.sqrt(np.clip(np.linalg.eigvalsh(tensor), 0, None))[..., ::-1]
    a, b, c = semiaxes[..., 0], semiaxes[..., 1], semiaxes[..., 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"semiaxes": semiaxes, "elongation": 1 - b / a, "planarity": 1 - c / b, "size": 2 * a}


def current_density(ds: xr.Dataset, field: str = "B_vec_xyz_gse", position: str | None = None) -> xr.Dataset:
    """The current density of a four-spacecraft constellation dataset (``heliohub.open_constellation``), by the
    reciprocal vectors and checked against the curlometer, with the estimate's quality and the tetrahedron's shape.

    ``field`` (nT) and ``position`` (km; the dataset's position variable when omitted) have dimensions
    (spacecraft, time, component). Returns ``J`` (nA/m², in the field's frame), ``div_B_over_curl_B``,
    ``elongation``, ``planarity`` and ``size`` (km) on the dataset's time axis.
    """
    from ..missions import position_of

    if ds.sizes.get("spacecraft") != 4:
        raise HeliohubError("current_density needs four spacecraft (a 'spacecraft' dimension of 4): open them with "
                            "heliohub.open_constellation('C?_CP_FGM_SPIN', start, end, step='4s')")
    position = position or position_of(ds.isel(spacecraft=0))
    if position is None or field not in ds:
        raise HeliohubError(f"current_density: the dataset has no {field if field not in ds else 'position'} "
                            f"variable; it has {', '.join(map(str, ds.data_vars))}")
    b = ds[field].transpose("spacecraft", "time", ...).values
    r = ds[position].transpose("spacecraft", "time", ...).values
    j = curl(gradient(b, r)) * NANO_AMPERE_PER_M2
    dunlop, quality = curlometer(b, r)
    agree = np.isfinite(j).all(axis=-1) & np.isfinite(dunlop).all(axis=-1)
    if agree.any() and not np.allclose(j[agree], dunlop[agree], rtol=1e-6, atol=1e-9):
        raise HeliohubError("current_density: the reciprocal vectors and the curlometer disagree: the positions "
                            "may be coplanar")
    shape = tetrahedron_shape(r)
    component = f"{field}_component"
    frame = str(ds[field].attrs.get("COORDINATE_SYSTEM", "")).split(">")[0]
    return xr.Dataset(
        {"J": (("time", component), j, {"units": "nA/m^2", "long_name": f"current density {frame}".strip(),
                                        "method": "reciprocal vectors (ISSI SR-001 ch. 14), equal to the "
                                                  "curlometer (ch. 16)"}),
         "div_B_over_curl_B": ("time", quality, {"long_name": "|div B| / |curl B|"}),
         "elongation": ("time", shape["elongation"], {"long_name": "tetrahedron elongation 1 - b/a"}),
         "planarity": ("time", shape["planarity"], {"long_name": "tetrahedron planarity 1 - c/b"}),
         "size": ("time", shape["size"], {"units": "km", "long_name": "tetrahedron size 2a"})},
        coords={"time": ds["time"].values},
        attrs={"dataset_ids": ds.attrs.get("dataset_ids", []), "time_base": ds.attrs.get("time_base", "")})
