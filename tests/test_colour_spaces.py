"""Colour spaces (workers.views.colour_spaces) against scikit-image, closed forms, and their own inverses.

Tolerances: against ``skimage.color`` in float64, 1e-6 of each channel's range over the RGB
cube (YPbPr's published coefficients are rounded to 6 digits, ours derived from 0.5/(1 − 0.114));
round trips RGB → space → RGB within 1e-9 in float64 and 2e-5 in float32.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import color

from workers.views.colour_spaces import COLOUR_SPACES

SKIMAGE = {
    "xyz": color.rgb2xyz, "lab": color.rgb2lab, "luv": color.rgb2luv, "hsv": color.rgb2hsv,
    "ycbcr": color.rgb2ycbcr, "ypbpr": color.rgb2ypbpr, "yuv": color.rgb2yuv, "yiq": color.rgb2yiq,
    "ydbdr": color.rgb2ydbdr,
}
CORNERS = [[r, g, b] for r in (0.0, 1.0) for g in (0.0, 1.0) for b in (0.0, 1.0)]


def rgb_image(seed: int = 0, side: int = 12) -> np.ndarray:
    """Random colours [3, side, side] in [0, 1], the cube's 8 corners and some greys among them."""
    image = np.random.default_rng(seed).random((3, side, side))
    image[:, 0, :8] = np.array(CORNERS).T
    image[:, 1, :3] = np.array([[0.5] * 3, [0.2] * 3, [0.9] * 3]).T
    return image


@pytest.mark.parametrize("name", sorted(SKIMAGE))
def test_each_space_matches_skimage(name):
    image = rgb_image()
    ours = COLOUR_SPACES[name].from_rgb(torch.from_numpy(image)).numpy()
    reference = SKIMAGE[name](image.transpose(1, 2, 0)).transpose(2, 0, 1)
    low, high = COLOUR_SPACES[name].bounds()
    tolerance = 1e-6 * (np.array(high) - np.array(low)).reshape(3, 1, 1)
    assert (np.abs(ours - reference) <= tolerance).all()


@pytest.mark.parametrize("name", sorted(COLOUR_SPACES))
@pytest.mark.parametrize(("dtype", "tolerance"), [(torch.float64, 1e-9), (torch.float32, 2e-5)])
def test_round_trip_through_each_space(name, dtype, tolerance):
    images = torch.from_numpy(np.stack([rgb_image(1), rgb_image(2)])).to(dtype)  # a batch [2, 3, H, W]
    space = COLOUR_SPACES[name]
    values = space.from_rgb(images)
    assert values.shape == images.shape and values.dtype == dtype
    assert (space.to_rgb(values) - images).abs().max() <= tolerance


def test_closed_forms_of_pure_colours():
    white, black = torch.ones(3, 1, 1, dtype=torch.float64), torch.zeros(3, 1, 1, dtype=torch.float64)
    lab = COLOUR_SPACES["lab"].from_rgb
    # White: L = 100, a = b = 0 up to the XYZ matrix's rows summing to the D65 white to 4 digits.
    assert torch.allclose(lab(white).flatten(), torch.tensor([100.0, 0.0, 0.0], dtype=torch.float64), atol=1e-2)
    assert torch.allclose(lab(black).flatten(), torch.zeros(3, dtype=torch.float64))
    ycbcr = COLOUR_SPACES["ycbcr"].from_rgb
    assert torch.allclose(ycbcr(white).flatten(), torch.tensor([235.0, 128.0, 128.0], dtype=torch.float64))
    assert torch.allclose(ycbcr(black).flatten(), torch.tensor([16.0, 128.0, 128.0], dtype=torch.float64))
    # YDbDr of pure blue: Y = 0.114, Db = 1.505·(1 − 0.114) ≈ 1.333, Dr = −1.902·(0 − 0.114) ≈ 0.217.
    blue = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64).view(3, 1, 1)
    assert torch.allclose(COLOUR_SPACES["ydbdr"].from_rgb(blue).flatten(),
                          torch.tensor([0.114, 1.505 * 0.886, 1.902 * 0.114], dtype=torch.float64), atol=2e-3)
    # Orange (1, 0.5, 0): hue 30° = 1/12 of a turn, fully saturated, full value.
    orange = torch.tensor([1.0, 0.5, 0.0], dtype=torch.float64).view(3, 1, 1)
    assert torch.allclose(COLOUR_SPACES["hsv"].from_rgb(orange).flatten(),
                          torch.tensor([1 / 12, 1.0, 1.0], dtype=torch.float64))
    grey = torch.full((3, 1, 1), 0.4, dtype=torch.float64)
    assert torch.allclose(COLOUR_SPACES["hsv"].from_rgb(grey).flatten(),
                          torch.tensor([0.0, 0.0, 0.4], dtype=torch.float64))


def test_lab_range_is_cmcs():
    """CMC normalises Lab by its range over 8-bit RGB: L in [0, 100], a in [-86.183, 98.233], b in [-107.857, 94.478]"""
    low, high = COLOUR_SPACES["lab"].bounds()
    assert np.allclose(low, [0.0, -86.183, -107.857], atol=1e-3)
    assert np.allclose(high, [100.0, 98.233, 94.478], atol=1e-3)


@pytest.mark.parametrize("name", sorted(COLOUR_SPACES))
def test_normalised_channels_fill_the_unit_interval_over_the_rgb_cube(name):
    """On a 49-level grid of the cube (finer than, and off, the 33-level grid bounds are read from),
    every normalised channel stays in [0, 1] within 1e-4 and reaches both ends within 1e-2."""
    levels = torch.linspace(0, 1, 49, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(levels, levels, levels, indexing="ij")).reshape(3, -1, 1)
    values = COLOUR_SPACES[name].normalised(grid).reshape(3, -1)
    assert values.min() >= -1e-4 and values.max() <= 1 + 1e-4
    assert (values.amin(1) <= 1e-2).all() and (values.amax(1) >= 1 - 1e-2).all()


def test_rgb_normalised_is_the_image():
    images = torch.rand(2, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(COLOUR_SPACES["rgb"].normalised(images), images)


def test_channel_names_are_checked():
    assert COLOUR_SPACES["ydbdr"].index(["Db", "Dr"]) == [1, 2]
    with pytest.raises(ValueError, match="lab has no channel Y; its channels: L, a, b"):
        COLOUR_SPACES["lab"].index(["Y"])
