"""Views: the batched crop's geometry on images whose pixels encode their position, and the
config that switches and orders the other transforms (asymmetric pairs included)."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from workers.backbones import SmallCNN
from workers.methods import SimCLR
from workers.views import CropConfig, ViewsConfig, make_view
from workers.views.colour import random_colour_distortion
from workers.views.filters import random_sobel


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


# The transforms after crop and flip: switches, order, asymmetric pairs (each transform's own
# tests are in tests/test_augmentations.py).


def colour_images(batch: int = 8, size: int = 12) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(30))


def test_new_transforms_are_off_by_default_and_leave_the_identity_alone():
    # A trial's identity dumps its config without defaults: an existing views config dumps as before.
    assert ViewsConfig().model_dump(mode="json", exclude_defaults=True) == {}
    old = ViewsConfig(crop=CropConfig(scale=(0.5, 1.0)), flip=True)
    assert old.model_dump(mode="json", exclude_defaults=True) == {"crop": {"scale": [0.5, 1.0]}, "flip": True}
    assert ViewsConfig().transforms() == []


def test_true_switches_a_transform_on_with_its_defaults():
    views = ViewsConfig.model_validate({"sobel": True, "blur": True, "noise": False})
    assert views.sobel is not None and views.blur.sigma == (0.1, 2.0) and views.blur.probability == 0.5
    assert views.noise is None
    assert views.transforms() == ["blur", "sobel"]


def test_the_crop_is_drawn_first_exactly_as_without_the_new_transforms():
    views = ViewsConfig(crop=CropConfig(scale=(0.3, 0.8)), flip=True, colour=True)
    images = colour_images()
    generator = torch.Generator().manual_seed(31)
    cropped = make_view(images, ViewsConfig(crop=CropConfig(scale=(0.3, 0.8)), flip=True), generator)
    expected = random_colour_distortion(cropped, views.colour, generator)
    assert torch.equal(make_view(images, views, torch.Generator().manual_seed(31)), expected)


def test_order_decides_which_transform_comes_first():
    images = colour_images()
    colour_then_sobel = ViewsConfig(crop=None, colour={"probability": 1.0}, sobel=True)
    sobel_then_colour = colour_then_sobel.model_copy(update={"order": ("sobel", "colour")})
    generator = torch.Generator().manual_seed(32)
    filtered = random_sobel(images, sobel_then_colour.sobel, generator)
    expected = random_colour_distortion(filtered, sobel_then_colour.colour, generator)
    out = make_view(images, sobel_then_colour, torch.Generator().manual_seed(32))
    assert torch.equal(out, expected)
    assert not torch.allclose(out, make_view(images, colour_then_sobel, torch.Generator().manual_seed(32)))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"sobel": True, "order": ["sobel", "sobel"]}, "more than once"),
        ({"sobel": True, "blur": True, "order": ["sobel"]}, "missing: blur"),
        ({"order": ["sharpen"]}, "rotation"),
    ],
)
def test_bad_orders_are_rejected(settings, message):
    with pytest.raises(ValidationError, match=message):
        ViewsConfig.model_validate(settings)


def test_fixed_channels_stay_unchanged_under_every_transform():
    views = ViewsConfig(flip=True, rotation=True, blur={"probability": 1.0}, sobel=True, cutout=True, noise=True)
    images = torch.rand(16, 3, 12, 12)
    images[:, 1:] = torch.randint(0, 2, (16, 2, 1, 1)).float()
    out = make_view(images, views, torch.Generator().manual_seed(33), fixed_channels=2)
    assert torch.equal(out[:, 1:], images[:, 1:])
    assert torch.equal(out[:, :1], make_view(images[:, :1], views, torch.Generator().manual_seed(33)))


def test_views_stay_float32_under_bfloat16_autocast():
    views = ViewsConfig(crop=None, blur={"probability": 1.0}, sobel=True)
    images = colour_images()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = make_view(images, views, torch.Generator().manual_seed(34))
    assert mixed.dtype == torch.float32
    assert torch.equal(mixed, make_view(images, views, torch.Generator().manual_seed(34)))


def test_asymmetric_second_branch_is_crop_and_flip_only():
    views = ViewsConfig(crop=CropConfig(scale=(0.4, 1.0)), flip=True, colour=True, blur=True, asymmetric=True)
    assert views.second_branch() == ViewsConfig(crop=CropConfig(scale=(0.4, 1.0)), flip=True)
    symmetric = views.model_copy(update={"asymmetric": False})
    assert symmetric.second_branch() is symmetric


def test_simclr_applies_the_transforms_to_the_first_view_only_when_asymmetric():
    # Colour always grayscale: every first view is gray, every second view keeps its colours.
    always_gray = {"probability": 0.0, "grayscale": 1.0}
    views = ViewsConfig(crop=CropConfig(scale=(0.5, 1.0)), colour=always_gray, asymmetric=True)
    encoder = SmallCNN(3, 4, 1)
    method = SimCLR(encoder, nn.Identity(), lambda a, b, generator: (a - b).square().mean(), views)
    seen: list[torch.Tensor] = []
    encoder.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    images = colour_images()
    method.objective(images, {}, torch.Generator().manual_seed(35))
    first, second = seen[0].chunk(2)
    generator = torch.Generator().manual_seed(35)
    assert torch.equal(first, make_view(images, views, generator))
    assert torch.equal(second, make_view(images, ViewsConfig(crop=CropConfig(scale=(0.5, 1.0))), generator))
    assert (first == first[:, :1]).all() and not (second == second[:, :1]).all()
