"""Motion for temporal smoothing: optical flow on luminance (OpenCV DIS, CPU) and warping (torch, any device).

Flow convention: ``flow(a, b)`` returns ``F`` with ``a(x) ~ b(x + F(x))``: for every pixel of ``a`` it points
at where that content sits in ``b``. So ``warp(b, flow(a, b))`` brings ``b`` onto ``a``'s pixel grid.
DIS is chosen because it is cheap (well under a millisecond at half render size) and good enough for
chroma, which is smooth; the confidence maps below catch where it is wrong.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

FLOW_METHODS = ("dis", "dis-fast", "dis-medium", "none")


def luma_u8(L: torch.Tensor) -> np.ndarray:
    """Lab L ``[..., h, w]`` (0..100, any device) -> ``[h, w]`` uint8 on the CPU (0..255), what DIS reads."""
    x = L.reshape(L.shape[-2:]).float().mul(2.55).round_().clamp_(0, 255)
    return np.ascontiguousarray(x.to(torch.uint8).cpu().numpy())


class FlowEstimator:
    """Dense optical flow between two uint8 frames; ``method`` is one of :data:`FLOW_METHODS`.

    ``none`` returns zero motion: a pure-tensor fallback for locked-off shots and for tests.
    The OpenCV object is made on first use, so constructing this costs nothing.
    """

    def __init__(self, method: str = "dis") -> None:
        if method not in FLOW_METHODS:
            raise ValueError(f"flow must be one of {FLOW_METHODS}, got {method!r}")
        self.method = method
        self._dis = None

    def _make(self):
        import cv2

        preset = {"dis": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "dis-fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                  "dis-medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}[self.method]
        dis = cv2.DISOpticalFlow_create(preset)
        return dis

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Flow ``[h, w, 2]`` float32 (x, y in pixels) from ``a`` to ``b`` (see the module docstring)."""
        h, w = a.shape
        if self.method == "none" or min(h, w) < 16:  # DIS needs a few patches to work with
            return np.zeros((h, w, 2), np.float32)
        if self._dis is None:
            self._dis = self._make()
        return self._dis.calc(a, b, None)


def flow_tensor(flow: np.ndarray, device: torch.device) -> torch.Tensor:
    """``[h, w, 2]`` numpy flow -> ``[1, 2, h, w]`` contiguous float32 tensor on ``device``.

    Contiguous, not the permuted view of the numpy array: every later op on a channels-last view ran 2-8x
    slower on a CPU (the mean flow length took 2.3 ms instead of 0.3 at render size)."""
    return torch.from_numpy(flow).permute(2, 0, 1).unsqueeze(0).contiguous().to(device=device, dtype=torch.float32)


class Warper:
    """Backward warping with ``grid_sample``; caches the sampling grid per size and device."""

    def __init__(self) -> None:
        self._grids: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
        self._maps: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}   # CPU: pixel x, y per size

    def _base(self, h: int, w: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """(identity grid ``[1, h, w, 2]`` in grid_sample's [-1, 1] units, pixels -> units scale ``[2]``)."""
        key = (h, w, device, dtype)
        if key not in self._grids:
            scale = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], device=device, dtype=dtype)
            ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=dtype),
                                    torch.arange(w, device=device, dtype=dtype), indexing="ij")
            self._grids[key] = (torch.stack((xs, ys), -1).unsqueeze(0) * scale - 1.0, scale)
        return self._grids[key]

    def __call__(self, x: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample ``x`` ``[N, C, h, w]`` at ``p + flow(p)`` (``flow`` ``[N, 2, h, w]`` in pixels); returns
        (warped, inside ``[N, 1, h, w]`` as 0/1 float). Outside the frame the border value is read and
        ``inside`` is 0 there, so callers can drop it."""
        h, w = x.shape[-2:]
        if x.device.type == "cpu" and x.dtype == torch.float32 and flow.device.type == "cpu":
            return self._remap(x, flow.to(torch.float32))
        base, scale = self._base(h, w, flow.device, flow.dtype)
        grid = torch.addcmul(base, flow.permute(0, 2, 3, 1), scale)
        out = F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="border", align_corners=True)
        eps = 1e-6  # exact border positions count as inside despite rounding
        inside = (grid.abs() <= 1.0 + eps).all(-1).unsqueeze(1).to(x.dtype)
        return out, inside

    def _remap(self, x: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The CPU path: OpenCV ``remap`` per plane, 2x faster than ``grid_sample`` at render size.

        Same sampling (bilinear at pixel centres, replicated border); the values agree with
        ``grid_sample`` to float rounding (``tests/temporal/test_temporal.py``)."""
        import cv2

        n, c, h, w = x.shape
        if (h, w) not in self._maps:
            ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
            self._maps[(h, w)] = (xs, ys)
        xs, ys = self._maps[(h, w)]
        src = x.detach().contiguous().numpy()
        out = np.empty((n, c, h, w), np.float32)
        inside = np.empty((n, 1, h, w), np.float32)
        eps = 1e-4  # exact border positions count as inside despite rounding
        for i in range(n):
            f = flow[i].detach().contiguous().numpy()
            mx, my = xs + f[0], ys + f[1]
            for j in range(c):
                cv2.remap(src[i, j], mx, my, cv2.INTER_LINEAR, dst=out[i, j], borderMode=cv2.BORDER_REPLICATE)
            inside[i, 0] = (mx >= -eps) & (mx <= w - 1 + eps) & (my >= -eps) & (my <= h - 1 + eps)
        return torch.from_numpy(out), torch.from_numpy(inside)


def fb_confidence(flow: torch.Tensor, back_warped: torch.Tensor, sigma2: float = 1.0) -> torch.Tensor:
    """Soft forward/backward consistency ``[N, 1, h, w]`` in (0, 1].

    ``flow`` goes from this frame to the other; ``back_warped`` is the other frame's flow back, sampled
    along ``flow``. They should cancel; the tolerance grows with the motion (Sundaram et al. 2010):
    confidence 1 while ``|f + b|^2 <= 0.01 (|f|^2 + |b|^2) + 0.5`` px^2, then a Gaussian fall-off.
    """
    err = _norm2(flow + back_warped)
    tol = _norm2(flow).add_(_norm2(back_warped)).mul_(0.01).add_(0.5)
    return torch.exp_(err.sub_(tol).clamp_(min=0).mul_(-1.0 / sigma2))


def _norm2(v: torch.Tensor) -> torch.Tensor:
    """Squared length ``[N,1,h,w]`` of a 2-vector field ``[N,2,h,w]`` (4x cheaper on a CPU than square().sum(1))."""
    x, y = v[:, 0:1], v[:, 1:2]
    return torch.addcmul(x * x, y, y)


def luma_confidence(warped_L: torch.Tensor, L: torch.Tensor, inside: torch.Tensor, sigma: float = 5.0) -> torch.Tensor:
    """Luminance agreement ``[N, 1, h, w]``: exp(-e / sigma^2), e = 3x3 mean of the squared difference between
    the warped and the current L (Lab units).

    The mean difference over the valid area is removed first, so a global exposure change (a fade, film
    flicker) does not switch smoothing off. The 3x3 mean makes a misaligned neighbourhood count, not just
    a pixel that happens to match: on the fast handheld sample clips it cut the colour error that smoothing
    adds (measured without flicker) by a fifth to a third, for little less flicker removal.
    """
    d = warped_L - L
    n = inside.sum((-1, -2), keepdim=True).clamp_(min=1.0)
    offset = (d * inside).sum((-1, -2), keepdim=True) / n
    return torch.exp(-box3(d.sub_(offset).square_()) / (sigma * sigma))


def box3(x: torch.Tensor) -> torch.Tensor:
    """3x3 mean with replicated borders, as separable shifted sums (8x cheaper than avg_pool2d on a CPU)."""
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    r = p[..., :, :-2] + p[..., :, 1:-1] + p[..., :, 2:]
    return (r[..., :-2, :] + r[..., 1:-1, :] + r[..., 2:, :]) * (1.0 / 9.0)


def compose(flow_ab: torch.Tensor, flow_bc: torch.Tensor, conf_ab: torch.Tensor, conf_bc: torch.Tensor,
            warper: Warper) -> tuple[torch.Tensor, torch.Tensor]:
    """Chain a->b and b->c into a->c: ``F_ac(x) = F_ab(x) + F_bc(x + F_ab(x))``; confidences multiply."""
    x = torch.cat((flow_bc, conf_bc), 1)
    y, inside = warper(x, flow_ab)
    return flow_ab + y[:, :2], conf_ab * y[:, 2:3] * inside


def scaled_size(h: int, w: int, scale: float, min_side: int = 64) -> tuple[int, int]:
    """Working size: ``(h, w) * scale`` rounded, or the full size when that would make the short side < ``min_side``."""
    if scale >= 1.0 or min(h, w) * scale < min_side:
        return h, w
    return max(1, int(math.floor(h * scale + 0.5))), max(1, int(math.floor(w * scale + 0.5)))


def resize_flow(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Flow ``[N,2,h,w]`` in pixels -> the same motion at ``size`` (resampled, vectors scaled)."""
    h, w = flow.shape[-2:]
    if (h, w) == tuple(size):
        return flow
    out = resize(flow.to(torch.float32).contiguous(), size, "area" if size[0] <= h else "bilinear")
    return out * torch.tensor([size[1] / w, size[0] / h], device=out.device, dtype=out.dtype).view(1, 2, 1, 1)


def resize(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """Resize ``[N,C,h,w]`` ("area" to shrink, "bilinear" to enlarge, half-pixel centres).

    On the CPU this goes through OpenCV: torch's pooling kernels split two small planes over threads and,
    on a busy machine, wait milliseconds for them; cv2 does the same sums in tens of microseconds.
    """
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if x.device.type == "cpu" and x.dtype == torch.float32:
        import cv2

        interp = cv2.INTER_AREA if mode == "area" else cv2.INTER_LINEAR
        n, c = x.shape[:2]
        src = x.reshape(n * c, *x.shape[-2:])
        planes = [cv2.resize(np.ascontiguousarray(p.numpy()), (size[1], size[0]), interpolation=interp) for p in src]
        return torch.from_numpy(np.stack(planes)).reshape(n, c, *size)
    if mode == "area":
        return F.interpolate(x, size=size, mode="area")
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
