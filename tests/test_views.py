"""Batched random resized crop: its geometry checked on images whose pixels encode their position."""

from __future__ import annotations

import torch

from workers.views import CropConfig, ViewsConfig, make_view


def ramp(batch: int = 8, size: int = 64) -> torch.Tensor:
    """Pixel value = its column's normalised x coordinate in [-1, 1] (pixel centres)."""
    x = (torch.arange(size) + 0.5) / size * 2 - 1
    return x.expand(batch, 1, size, size).clone()


def side_fraction(views: torch.Tensor) -> torch.Tensor:
    """A crop's width as a fraction of the image's, from the ramp's slope between interior pixels.

    A ramp rises 2/W per input pixel; a crop of side fraction w samples it every 2w/W. The
    outermost output pixels can sample past the outermost input centres (where the edge is
    repeated), so they are left out.
    """
    size = views.shape[-1]
    return (views[:, 0, 0, -2] - views[:, 0, 0, 1]) / (size - 3) / (2 / size)


def test_crop_at_the_border_repeats_the_edge_instead_of_fading():
    views = ViewsConfig(crop=CropConfig(scale=(0.9, 0.9), ratio=(1.0, 1.0)))
    out = make_view(torch.ones(64, 1, 16, 16), views, torch.Generator().manual_seed(0))
    assert torch.allclose(out, torch.ones_like(out), atol=1e-6)


def test_full_crop_is_the_identity():
    views = ViewsConfig(crop=CropConfig(scale=(1.0, 1.0), ratio=(1.0, 1.0)))
    images = torch.rand(4, 1, 16, 16)
    assert torch.allclose(make_view(images, views, torch.Generator().manual_seed(0)), images, atol=1e-5)


def test_crop_of_quarter_area_spans_half_the_width():
    # Area 1/4 with aspect ratio 1 is a square of half the side, so the ramp's slope halves
    # and the crop lies inside the image.
    views = ViewsConfig(crop=CropConfig(scale=(0.25, 0.25), ratio=(1.0, 1.0)))
    images = ramp()
    out = make_view(images, views, torch.Generator().manual_seed(1))
    assert torch.allclose(side_fraction(out), torch.full((len(out),), 0.5), atol=1e-4)
    assert out[:, 0, :, 0].std(dim=1).max() < 1e-6, "every row of a crop is the same ramp"
    assert out[:, 0, 0, 0].std() > 0.05, "crops of different images sit at different places"


def test_flip_mirrors_the_ramp():
    views = ViewsConfig(crop=None, flip=True)
    out = make_view(ramp(batch=64), views, torch.Generator().manual_seed(0))
    direction = torch.sign(out[:, 0, 0, -1] - out[:, 0, 0, 0])
    assert set(direction.tolist()) == {-1.0, 1.0}


def test_areas_follow_the_scale_range():
    views = ViewsConfig(crop=CropConfig(scale=(0.2, 0.6), ratio=(1.0, 1.0)))
    out = make_view(ramp(batch=2000, size=32), views, torch.Generator().manual_seed(2))
    area = side_fraction(out) ** 2
    assert area.min() > 0.19 and area.max() < 0.61
    assert abs(area.mean().item() - 0.4) < 0.01  # mean of U(0.2, 0.6)


def test_aspect_ratio_is_width_over_height():
    # area 1/4 at ratio w/h = 2: w = sqrt(1/4 · 2) ≈ 0.707, h = sqrt(1/4 / 2) ≈ 0.354
    views = ViewsConfig(crop=CropConfig(scale=(0.25, 0.25), ratio=(2.0, 2.0)))
    horizontal = make_view(ramp(), views, torch.Generator().manual_seed(3))
    vertical = make_view(ramp().transpose(2, 3), views, torch.Generator().manual_seed(3)).transpose(2, 3)
    assert torch.allclose(side_fraction(horizontal), torch.full((8,), 0.5**0.5), atol=1e-4)
    assert torch.allclose(side_fraction(vertical), torch.full((8,), 0.125**0.5), atol=1e-4)


def test_fixed_channels_are_appended_unchanged():
    views = ViewsConfig(crop=CropConfig(scale=(0.3, 0.6)), flip=True)
    images = torch.rand(16, 3, 12, 12)
    images[:, 1:] = torch.randint(0, 2, (16, 2, 1, 1)).float()  # two constant 0/1 planes
    out = make_view(images, views, torch.Generator().manual_seed(4), fixed_channels=2)
    assert out.shape == images.shape
    assert torch.equal(out[:, 1:], images[:, 1:])
    # The varied channels get exactly the view they would get on their own.
    alone = make_view(images[:, :1], views, torch.Generator().manual_seed(4))
    assert torch.equal(out[:, :1], alone) and not torch.equal(alone, images[:, :1])
