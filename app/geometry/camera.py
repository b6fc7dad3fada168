"""Pinhole cameras, lens distortion and rigid transforms.

Conventions: OpenCV camera frame (x right, y down, z forward), metres, pixels with pixel centres at integer
coordinates. ``K`` is the (3, 3) intrinsic matrix in pixels; ``dist`` holds OpenCV distortion coefficients in
OpenCV order (k1 k2 p1 p2 [k3 [k4 k5 k6]]). ``T_b_a`` is a (4, 4) rigid transform mapping points from frame a
into frame b. The left camera is the reference frame of the rig.

Every public function takes numpy arrays or torch tensors (see :func:`numpy_or_torch`): torch in gives torch
out with autograd intact; numpy in gives numpy out. Leading batch dimensions broadcast.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

_N_DIST = 8  # k1 k2 p1 p2 k3 k4 k5 k6: the radial-tangential-rational model


def _torch_args(args, kwargs):
    """Convert ndarray arguments to tensors of one dtype/device. Returns (args, kwargs, was_numpy)."""
    values = list(args) + list(kwargs.values())
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    if tensors:
        dtype = functools.reduce(torch.promote_types, [t.dtype for t in tensors if t.is_floating_point()],
                                 torch.float32)
        device = tensors[0].device
    else:
        arrays = [v for v in values if isinstance(v, np.ndarray)]
        dtype, device = torch.from_numpy(np.zeros(0, np.result_type(np.float32, *arrays))).dtype, None

    def conv(v):
        if isinstance(v, np.ndarray):
            return torch.from_numpy(np.ascontiguousarray(v)).to(dtype=dtype, device=device)
        if isinstance(v, torch.Tensor):
            return v.to(dtype=dtype, device=device)
        return v

    return [conv(a) for a in args], {k: conv(v) for k, v in kwargs.items()}, not tensors


def _to_numpy(out):
    if isinstance(out, torch.Tensor):
        return out.detach().cpu().numpy()
    if isinstance(out, tuple):
        return tuple(_to_numpy(o) for o in out)
    return out


def numpy_or_torch(fn):
    """Decorator: run a torch implementation on numpy or torch inputs.

    Array arguments (ndarray or Tensor) are cast to one floating dtype: with any tensor argument, the promoted
    floating dtype of the tensors (at least float32) on the first tensor's device (other arrays and tensors
    are moved there), and the result stays torch;
    otherwise the promoted numpy dtype (at least float32), and the result is converted back to numpy.
    Non-array arguments (ints, floats, strings) pass through unchanged.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        targs, tkwargs, was_numpy = _torch_args(args, kwargs)
        out = fn(*targs, **tkwargs)
        return _to_numpy(out) if was_numpy else out

    return wrapper


def _apply_K(xy: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Normalised image coordinates (..., 2) -> pixels (..., 2): u = fx x + skew y + cx, v = fy y + cy."""
    return (K[..., :2, :2] @ xy[..., None])[..., 0] + K[..., :2, 2]


def _remove_K(px: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Pixels (..., 2) -> normalised image coordinates (..., 2); inverse of :func:`_apply_K`."""
    y = (px[..., 1] - K[..., 1, 2]) / K[..., 1, 1]
    x = (px[..., 0] - K[..., 0, 2] - K[..., 0, 1] * y) / K[..., 0, 0]
    return torch.stack([x, y], dim=-1)


@numpy_or_torch
def project(points_cam_m, K):
    """Pinhole projection without distortion.

    points_cam_m: (..., 3) metres, camera frame (OpenCV axes); Z must be > 0 for a meaningful result
        (no clipping: Z = 0 gives inf/NaN).
    K: (3, 3) pixels, or (..., 3, 3) broadcasting against the points' leading dims (for per-batch K with
        points (B, N, 3) pass K as (B, 1, 3, 3)).
    Returns (..., 2) pixels: u = fx X/Z + skew Y/Z + cx, v = fy Y/Z + cy. Differentiable in both inputs.
    """
    xy = points_cam_m[..., :2] / points_cam_m[..., 2:3]
    return _apply_K(xy, K)


def _dist_coeffs(dist: torch.Tensor) -> torch.Tensor:
    """OpenCV distortion vector (0, 4, 5 or 8 values; more if the extras are 0) -> (8,) k1 k2 p1 p2 k3..k6."""
    d = dist.reshape(-1)
    if d.numel() > _N_DIST:
        if torch.any(d[_N_DIST:] != 0):
            raise ValueError(f"dist: got {d.numel()} coefficients with non-zero thin-prism/tilt terms "
                             "(index >= 8), which are not supported; recalibrate without "
                             "CALIB_THIN_PRISM_MODEL/CALIB_TILTED_MODEL")
        d = d[:_N_DIST]
    if d.numel() not in (0, 4, 5, 8):
        raise ValueError(f"dist: expected 0, 4, 5 or 8 OpenCV coefficients (k1 k2 p1 p2 k3 ...), "
                         f"got {d.numel()}")
    return torch.cat([d, d.new_zeros(_N_DIST - d.numel())])


def _radial_and_tangential(xy: torch.Tensor, k: torch.Tensor):
    """Normalised points (..., 2) -> (radial factor (...), tangential offset (..., 2)), OpenCV model."""
    x, y = xy[..., 0], xy[..., 1]
    r2 = x * x + y * y
    num = 1 + r2 * (k[0] + r2 * (k[1] + r2 * k[4]))
    den = 1 + r2 * (k[5] + r2 * (k[6] + r2 * k[7]))
    dx = 2 * k[2] * x * y + k[3] * (r2 + 2 * x * x)
    dy = k[2] * (r2 + 2 * y * y) + 2 * k[3] * x * y
    return num / den, torch.stack([dx, dy], dim=-1)


@numpy_or_torch
def project_distorted(points_cam_m, K, dist):
    """Projection with OpenCV lens distortion; matches ``cv2.projectPoints`` with rvec = tvec = 0.

    points_cam_m: (..., 3) metres, camera frame. K: (3, 3) pixels. dist: (4,), (5,) or (8,) OpenCV order
    (k1 k2 p1 p2 [k3 [k4 k5 k6]]).
    Returns (..., 2) pixels. x' = X/Z, r^2 = x'^2 + y'^2,
    x'' = x' (1 + k1 r^2 + k2 r^4 + k3 r^6) / (1 + k4 r^2 + k5 r^4 + k6 r^6) + 2 p1 x'y' + p2 (r^2 + 2 x'^2),
    y'' likewise with p1 (r^2 + 2 y'^2) + 2 p2 x'y'; then u = K applied to (x'', y'').
    """
    k = _dist_coeffs(dist)
    xy = points_cam_m[..., :2] / points_cam_m[..., 2:3]
    radial, tangential = _radial_and_tangential(xy, k)
    return _apply_K(xy * radial[..., None] + tangential, K)


@numpy_or_torch
def undistort_points(pixels, K, dist, output: str = "normalized", iterations: int = 20, tol: float = 1e-15):
    """Remove lens distortion from pixel coordinates by fixed-point iteration (OpenCV's scheme).

    pixels: (..., 2) distorted pixels. K: (3, 3). dist: OpenCV coefficients as in :func:`project_distorted`.
    output: "normalized" for ideal normalised coordinates (X/Z, Y/Z), as ``cv2.undistortPoints(px, K, dist)``,
        or "pixels" for ideal pixels, as ``cv2.undistortPoints(px, K, dist, P=K)``.
    iterations: at most this many updates x <- (x0 - tangential(x)) / radial(x); stops early once no point
        moves more than ``tol`` (normalised units). ``iterations=5, tol=0`` reproduces cv2's default exactly.
    Returns (..., 2). Where the radial factor turns negative (far outside the calibrated field) the point is
    left un-corrected, as OpenCV does.
    """
    if output not in ("normalized", "pixels"):
        raise ValueError(f"undistort_points: output must be 'normalized' or 'pixels', got {output!r}")
    k = _dist_coeffs(dist)
    xy0 = _remove_K(pixels, K)
    xy, frozen = xy0, torch.zeros_like(xy0[..., 0], dtype=torch.bool)
    for _ in range(iterations):
        radial, tangential = _radial_and_tangential(xy, k)
        frozen = frozen | (radial < 0)
        new = torch.where(frozen[..., None], xy0, (xy0 - tangential) / radial[..., None])
        step = (new - xy).abs().max() if new.numel() else new.new_zeros(())
        xy = new
        if step <= tol:
            break
    return xy if output == "normalized" else _apply_K(xy, K)


@numpy_or_torch
def unproject(pixels, depth_m, K):
    """Back-project pixels to 3D points at a given depth.

    pixels: (..., 2) undistorted pixels. depth_m: (...) metres, the Z coordinate (not the ray length).
    K: (3, 3). Returns (..., 3) metres in the camera frame, X = Z K^-1 [u, v, 1].
    """
    xy = _remove_K(pixels, K)
    z = torch.as_tensor(depth_m, dtype=xy.dtype, device=xy.device)[..., None]
    return torch.cat([xy * z, z.expand_as(xy[..., :1])], dim=-1)


@numpy_or_torch
def transform_points(T_b_a, points_a):
    """Apply a rigid (or any affine) transform. T_b_a: (4, 4) or (..., 4, 4), maps frame a into frame b.

    points_a: (..., 3) in frame a (metres). Returns (..., 3) in frame b: R p + t. Batch dims of T broadcast
    against the points' leading dims (per-batch T with points (B, N, 3): pass T as (B, 1, 4, 4)).
    """
    return (T_b_a[..., :3, :3] @ points_a[..., None])[..., 0] + T_b_a[..., :3, 3]


@numpy_or_torch
def invert_transform(T):
    """Rigid inverse of T: (..., 4, 4) [R t; 0 1] -> [R^T -R^T t; 0 1]. Assumes R orthonormal."""
    Rt = T[..., :3, :3].transpose(-1, -2)
    top = torch.cat([Rt, -Rt @ T[..., :3, 3:]], dim=-1)
    return torch.cat([top, T[..., 3:, :]], dim=-2)
