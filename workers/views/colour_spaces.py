r"""Colour spaces: batched conversions of RGB images to the spaces whose channels CMC and InfoMin split.

CMC (Tian et al. 2019) and InfoMin (Tian et al. 2020, Fig. 4) convert an image to a colour
space and split its three channels between two views (L vs ab in Lab, Y vs DbDr in YDbDr, ...).
Their code converts with ``skimage.color``; these are the same formulas as tensor ops on
[..., 3, H, W] (channels third from last), so a batch converts on the device in a few kernels.
Input is sRGB in [0, 1]. ``COLOUR_SPACES[name]`` holds each space's ``from_rgb`` and its inverse
``to_rgb``; every ``from_rgb`` matches ``skimage.color`` within 1e-6 of the channel's range, and
``to_rgb`` undoes it within 2e-5 in float32 (``tests/test_colour_spaces.py``).

**Linear spaces**, :math:`y = M x + o` on gamma-encoded RGB :math:`x` with luma
:math:`Y = 0.299R + 0.587G + 0.114B` (ITU-R BT.601):

* ``ycbcr`` (BT.601, 8-bit studio range): :math:`Y = 16 + 65.481R + 128.553G + 24.966B`,
  :math:`C_b = 128 - 37.797R - 74.203G + 112B`, :math:`C_r = 128 + 112R - 93.786G - 18.214B`;
* ``ypbpr``: :math:`P_b = 0.5(B - Y)/(1 - 0.114)`, :math:`P_r = 0.5(R - Y)/(1 - 0.299)`;
* ``yuv``: :math:`U = 0.492111(B - Y)`, :math:`V = 0.877283(R - Y)`;
* ``yiq``: (I, Q) is (U, V) turned by 33°: :math:`I = V\cos 33° - U\sin 33°`,
  :math:`Q = U\cos 33° + V\sin 33°`;
* ``ydbdr`` (SECAM): :math:`D_b = -0.450R - 0.883G + 1.333B`, :math:`D_r = -1.333R + 1.116G + 0.217B`
  (:math:`1.505(B - Y)` and :math:`-1.902(R - Y)`, rounded as published).

Inverses use :math:`M^{-1}` (computed in float64).

**CIE spaces**, from linear light :math:`\ell(c) = ((c + 0.055)/1.055)^{2.4}` if
:math:`c > 0.04045`, else :math:`c/12.92`:

* ``xyz``: :math:`(X, Y, Z) = M_{XYZ}\,\ell(RGB)`, sRGB primaries with the D65 white;
* ``lab`` (CIE 1976 L*a*b*, D65 white :math:`(X_n, Y_n, Z_n) = (0.95047, 1, 1.08883)`):
  :math:`L = 116 f(Y/Y_n) - 16`, :math:`a = 500(f(X/X_n) - f(Y/Y_n))`,
  :math:`b = 200(f(Y/Y_n) - f(Z/Z_n))`, with :math:`f(t) = t^{1/3}` if :math:`t > 0.008856`,
  else :math:`7.787t + 16/116`;
* ``luv`` (CIE 1976 L*u*v*): :math:`L = 116 (Y/Y_n)^{1/3} - 16` if :math:`Y/Y_n > 0.008856`,
  else :math:`903.3\,Y/Y_n`; :math:`u = 13L(u' - u'_n)`, :math:`v = 13L(v' - v'_n)` with
  :math:`u' = 4X/(X + 15Y + 3Z)`, :math:`v' = 9Y/(X + 15Y + 3Z)` (of the white for :math:`u'_n, v'_n`).

Back to RGB, the encoding :math:`1.055c^{1/2.4} - 0.055` if :math:`c > 0.0031308`, else
:math:`12.92c`, clipped to [0, 1] as skimage does.

**HSV**: :math:`V = \max(R, G, B)`, chroma :math:`C = V - \min(R, G, B)`, :math:`S = C/V`
(0 when V = 0), hue in turns :math:`H = \frac16\,h \bmod 1` with :math:`h = (G - B)/C` if V = R,
:math:`(B - R)/C + 2` if V = G, else :math:`(R - G)/C + 4` (H = 0 for grey).

**Normalised channels** (``normalised``): the encoders read each channel mapped to [0, 1] by
its range over the RGB cube (``bounds``), :math:`(y - y_{\min})/(y_{\max} - y_{\min})`, as CMC
maps Lab's channels by their ranges over 8-bit RGB (L in [0, 100], a in [-86.2, 98.2], b in
[-107.9, 94.5]). The range is read off a grid of 33 levels per axis of the cube (corners
included): exact for the linear spaces and XYZ, whose extremes are at corners, and within 1e-5
for Lab's; Luv's lowest v lies on the blue-magenta edge, found within 1e-4 of 134. HSV's range is
[0, 1]³, and ``rgb`` normalised is the image itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Literal

import torch

Triple = tuple[float, float, float]
Rows = tuple[tuple[float, ...], ...]  # a 3×3 matrix, row by row
ColourSpaceName = Literal["rgb", "xyz", "lab", "luv", "hsv", "ycbcr", "ypbpr", "yuv", "yiq", "ydbdr"]
LUMA = (0.299, 0.587, 0.114)  # BT.601 luma: Y = 0.299 R + 0.587 G + 0.114 B
XYZ_FROM_RGB = ((0.412453, 0.357580, 0.180423), (0.212671, 0.715160, 0.072169), (0.019334, 0.119193, 0.950227))
WHITE_D65 = (0.95047, 1.0, 1.08883)  # (X_n, Y_n, Z_n): illuminant D65, 2° observer
LAB_EPSILON, LAB_SLOPE = 0.008856, 7.787  # f(t) = t^(1/3) above epsilon, slope·t + 16/116 below
LUV_SLOPE = 903.3  # L = 903.3·Y/Y_n below epsilon
BOUNDS_GRID_LEVELS = 33  # levels per axis of the RGB cube that channel ranges are read from


def _rows_minus_luma(scale: float, primary: int) -> tuple[float, float, float]:
    """The coefficients of scale·(primary − Y) on (R, G, B)."""
    return tuple(scale * ((index == primary) - LUMA[index]) for index in range(3))


def _yiq_rows() -> Rows:
    u, v = _rows_minus_luma(0.492111, 2), _rows_minus_luma(0.877283, 0)
    cos, sin = math.cos(math.radians(33)), math.sin(math.radians(33))
    pairs = list(zip(u, v, strict=True))
    return LUMA, tuple(v_ * cos - u_ * sin for u_, v_ in pairs), tuple(u_ * cos + v_ * sin for u_, v_ in pairs)


LINEAR: dict[str, tuple[Rows, Triple]] = {  # (M, o)
    "ycbcr": (((65.481, 128.553, 24.966), (-37.797, -74.203, 112.0), (112.0, -93.786, -18.214)), (16.0, 128.0, 128.0)),
    "ypbpr": ((LUMA, _rows_minus_luma(0.5 / (1 - LUMA[2]), 2), _rows_minus_luma(0.5 / (1 - LUMA[0]), 0)), (0, 0, 0)),
    "yuv": ((LUMA, _rows_minus_luma(0.492111, 2), _rows_minus_luma(0.877283, 0)), (0, 0, 0)),
    "yiq": (_yiq_rows(), (0, 0, 0)),
    "ydbdr": ((LUMA, (-0.450, -0.883, 1.333), (-1.333, 1.116, 0.217)), (0, 0, 0)),
}


@cache
def _inverse(rows: Rows) -> Rows:
    """M⁻¹ of a 3×3 matrix given by rows, computed in float64."""
    return tuple(tuple(row) for row in torch.linalg.inv(torch.tensor(rows, dtype=torch.float64)).tolist())


def _apply(rows: Rows, values: torch.Tensor, offset: Triple = (0.0, 0.0, 0.0)) -> torch.Tensor:
    """M·v + o for the 3-vector of every pixel of [..., 3, H, W].

    Python-number coefficients: no constant tensor is copied to the device, so a conversion
    never waits for it, and each product stays in the input's precision.
    """
    channels = values.unbind(-3)
    return torch.stack(
        [sum(m * c for m, c in zip(row, channels, strict=True)) + o for row, o in zip(rows, offset, strict=True)],
        dim=-3,
    )


def _per_channel(values: torch.Tensor, scale: Triple, shift: Triple = (0.0, 0.0, 0.0)) -> torch.Tensor:
    """(v_k − shift_k) / scale_k for each channel k of [..., 3, H, W]."""
    channels = values.unbind(-3)
    return torch.stack([(c - b) / a for c, a, b in zip(channels, scale, shift, strict=True)], dim=-3)


def _linear(name: str) -> tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]:
    rows, offset = LINEAR[name]

    def forward(rgb: torch.Tensor) -> torch.Tensor:
        return _apply(rows, rgb, offset)

    def inverse(values: torch.Tensor) -> torch.Tensor:
        return _apply(_inverse(rows), _per_channel(values, (1.0, 1.0, 1.0), offset))

    return forward, inverse


def linear_light(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB decoding ℓ(c): gamma-encoded [0, 1] to linear light."""
    return torch.where(rgb > 0.04045, ((rgb.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4, rgb / 12.92)


def gamma_encoded(linear: torch.Tensor) -> torch.Tensor:
    """sRGB encoding, the inverse of :func:`linear_light`, clipped to [0, 1]."""
    encoded = torch.where(linear > 0.0031308, 1.055 * linear.clamp_min(0.0031308) ** (1 / 2.4) - 0.055, 12.92 * linear)
    return encoded.clamp(0.0, 1.0)


def rgb_to_xyz(rgb: torch.Tensor) -> torch.Tensor:
    return _apply(XYZ_FROM_RGB, linear_light(rgb))


def xyz_to_rgb(xyz: torch.Tensor) -> torch.Tensor:
    return gamma_encoded(_apply(_inverse(XYZ_FROM_RGB), xyz))


def _lab_f(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > LAB_EPSILON, t.clamp_min(LAB_EPSILON) ** (1 / 3), LAB_SLOPE * t + 16 / 116)


def _lab_f_inverse(s: torch.Tensor) -> torch.Tensor:
    knee = LAB_EPSILON ** (1 / 3)  # 0.2069, where the two pieces of f meet
    return torch.where(s > knee, s**3, (s - 16 / 116) / LAB_SLOPE)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    xyz = _per_channel(rgb_to_xyz(rgb), WHITE_D65)
    fx, fy, fz = _lab_f(xyz).unbind(-3)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=-3)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    lightness, a, b = lab.unbind(-3)
    fy = (lightness + 16) / 116
    f = torch.stack([fy + a / 500, fy, (fy - b / 200).clamp_min(0)], dim=-3)  # skimage clips Z at 0
    return xyz_to_rgb(_per_channel(_lab_f_inverse(f), tuple(1 / w for w in WHITE_D65)))


def _white_uv() -> tuple[float, float]:
    x, y, z = WHITE_D65
    return 4 * x / (x + 15 * y + 3 * z), 9 * y / (x + 15 * y + 3 * z)


def rgb_to_luv(rgb: torch.Tensor) -> torch.Tensor:
    x, y, z = rgb_to_xyz(rgb).unbind(-3)
    relative = y / WHITE_D65[1]
    lightness = torch.where(
        relative > LAB_EPSILON, 116 * relative.clamp_min(LAB_EPSILON) ** (1 / 3) - 16, LUV_SLOPE * relative
    )
    denominator = x + 15 * y + 3 * z + torch.finfo(rgb.dtype).eps  # black: u' = v' = 0, as skimage
    u_n, v_n = _white_uv()
    u = 13 * lightness * (4 * x / denominator - u_n)
    v = 13 * lightness * (9 * y / denominator - v_n)
    return torch.stack([lightness, u, v], dim=-3)


def luv_to_rgb(luv: torch.Tensor) -> torch.Tensor:
    lightness, u, v = luv.unbind(-3)
    knee = 116 * LAB_EPSILON ** (1 / 3) - 16  # 8.0: where the two pieces of L meet
    y = torch.where(lightness > knee, ((lightness + 16) / 116) ** 3, lightness / LUV_SLOPE) * WHITE_D65[1]
    u_n, v_n = _white_uv()
    scale = torch.where(lightness > 0, 13 * lightness, 1.0)
    u_prime = torch.where(lightness > 0, u / scale + u_n, u_n)
    v_prime = torch.where(lightness > 0, v / scale + v_n, v_n)
    x = y * 9 * u_prime / (4 * v_prime)
    z = y * (12 - 3 * u_prime - 20 * v_prime) / (4 * v_prime)
    return xyz_to_rgb(torch.stack([x, y, z], dim=-3))


def rgb_to_hsv(rgb: torch.Tensor) -> torch.Tensor:
    red, green, blue = rgb.unbind(-3)
    value, minimum = rgb.amax(dim=-3), rgb.amin(dim=-3)
    chroma = value - minimum
    divisor = torch.where(chroma > 0, chroma, 1.0)
    from_green_or_blue = torch.where(value == green, (blue - red) / divisor + 2, (red - green) / divisor + 4)
    sextant = torch.where(value == red, (green - blue) / divisor, from_green_or_blue)
    hue = torch.where(chroma > 0, (sextant / 6).remainder(1.0), 0.0)
    saturation = chroma / torch.where(value > 0, value, 1.0)
    return torch.stack([hue, saturation, value], dim=-3)


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """Each channel is V − C·clip(min(k, 4 − k), 0, 1), k = (n + 6H) mod 6, n = 5, 3, 1 for R, G, B, C = V·S."""
    hue, saturation, value = hsv.unbind(-3)
    chroma = (value * saturation).unsqueeze(-3)
    k = torch.stack([6 * hue + n for n in (5, 3, 1)], dim=-3).remainder(6)
    return value.unsqueeze(-3) - chroma * torch.minimum(k, 4 - k).clamp(0, 1)


@dataclass(frozen=True)
class ColourSpace:
    """A colour space: its channel names, the conversion from RGB and back (each [..., 3, H, W])."""

    name: str
    channels: tuple[str, str, str]
    from_rgb: Callable[[torch.Tensor], torch.Tensor]
    to_rgb: Callable[[torch.Tensor], torch.Tensor]

    def bounds(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(lowest, highest) value of each channel over the RGB cube (module docstring)."""
        return _bounds(self.name)

    def normalised(self, rgb: torch.Tensor) -> torch.Tensor:
        """The image in this space, each channel mapped to [0, 1] by :meth:`bounds`."""
        low, high = self.bounds()
        span = tuple(top - bottom for bottom, top in zip(low, high, strict=True))
        return _per_channel(self.from_rgb(rgb), span, low)

    def index(self, channels: list[str] | tuple[str, ...]) -> list[int]:
        """Positions of the named ``channels`` (a ValueError names the space's channels)."""
        unknown = [name for name in channels if name not in self.channels]
        if unknown:
            allowed = ", ".join(self.channels)
            raise ValueError(f"{self.name} has no channel {', '.join(unknown)}; its channels: {allowed}")
        return [self.channels.index(name) for name in channels]


def _identity(images: torch.Tensor) -> torch.Tensor:
    return images


COLOUR_SPACES: dict[str, ColourSpace] = {
    "rgb": ColourSpace("rgb", ("R", "G", "B"), _identity, _identity),
    "xyz": ColourSpace("xyz", ("X", "Y", "Z"), rgb_to_xyz, xyz_to_rgb),
    "lab": ColourSpace("lab", ("L", "a", "b"), rgb_to_lab, lab_to_rgb),
    "luv": ColourSpace("luv", ("L", "u", "v"), rgb_to_luv, luv_to_rgb),
    "hsv": ColourSpace("hsv", ("H", "S", "V"), rgb_to_hsv, hsv_to_rgb),
    "ycbcr": ColourSpace("ycbcr", ("Y", "Cb", "Cr"), *_linear("ycbcr")),
    "ypbpr": ColourSpace("ypbpr", ("Y", "Pb", "Pr"), *_linear("ypbpr")),
    "yuv": ColourSpace("yuv", ("Y", "U", "V"), *_linear("yuv")),
    "yiq": ColourSpace("yiq", ("Y", "I", "Q"), *_linear("yiq")),
    "ydbdr": ColourSpace("ydbdr", ("Y", "Db", "Dr"), *_linear("ydbdr")),
}


@cache
def _bounds(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    if name == "hsv":
        return (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    levels = torch.linspace(0, 1, BOUNDS_GRID_LEVELS, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(levels, levels, levels, indexing="ij")).reshape(3, -1, 1)
    values = COLOUR_SPACES[name].from_rgb(grid).reshape(3, -1)
    return tuple(values.amin(1).tolist()), tuple(values.amax(1).tolist())
