"""SimCLR's augmentations, batched: each against torchvision's functional op, image by image.

Tolerances: 1e-6 for the blends (brightness, contrast, saturation, grayscale: the same float32
arithmetic, summed in another order at most), 1e-5 for hue (we shift the hue without building
HSV, so rounding differs) and for blur (a separable kernel against torchvision's 2-d one).
Rotation and Sobel are exact; cutout, noise and the probabilities are checked statistically,
with bounds many standard errors wide that still fail if a parameter is ignored.
"""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from workers.views import (
    BlurConfig,
    ColourConfig,
    CutoutConfig,
    NoiseConfig,
    RotationConfig,
    SobelConfig,
    ViewsConfig,
    make_view,
)
from workers.views.colour import (
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    colour_jitter,
    grayscale,
    random_colour_distortion,
)
from workers.views.filters import gaussian_blur, random_blur, random_noise, random_sobel, sobel
from workers.views.geometry import cutout, random_cutout, random_rotation, rotate_quarter_turns


def rgb(batch: int = 32, size: int = 9, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def per_image(op, images: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    return torch.stack([op(image, value.item()) for image, value in zip(images, values, strict=True)])


@pytest.mark.parametrize(
    ("ours", "theirs", "low", "high", "tolerance"),
    [
        (adjust_brightness, TF.adjust_brightness, 0.2, 1.8, 1e-6),
        (adjust_contrast, TF.adjust_contrast, 0.2, 1.8, 1e-6),
        (adjust_saturation, TF.adjust_saturation, 0.0, 1.8, 1e-6),
        (adjust_hue, TF.adjust_hue, -0.5, 0.5, 1e-5),
    ],
)
def test_each_colour_operation_is_torchvisions(ours, theirs, low, high, tolerance):
    images = rgb()
    values = torch.linspace(low, high, len(images))
    assert torch.allclose(ours(images, values), per_image(theirs, images, values), atol=tolerance, rtol=0)


def test_hue_of_pure_colours_moves_round_the_wheel():
    # Red shifted by a third of a turn is green, by two thirds blue; gray has no hue to shift.
    pixels = torch.tensor([[1.0, 0, 0], [1.0, 0, 0], [0.5, 0.5, 0.5]]).view(3, 3, 1, 1)
    out = adjust_hue(pixels, torch.tensor([1 / 3, -1 / 3, 0.25])).flatten(1)
    expected = torch.tensor([[0.0, 1, 0], [0.0, 0, 1], [0.5, 0.5, 0.5]])
    assert torch.allclose(out, expected, atol=1e-6)


def test_grayscale_is_torchvisions_and_one_channel_is_its_own():
    images = rgb()
    assert torch.allclose(grayscale(images), TF.rgb_to_grayscale(images), atol=1e-6, rtol=0)
    single = images[:, :1]
    assert torch.equal(grayscale(single), single)
    assert torch.equal(adjust_hue(single, torch.full((len(single),), 0.3)), single)


def test_jitter_in_a_random_order_per_image_is_torchvisions_ops_in_that_order():
    images = rgb(batch=24)
    generator = torch.Generator().manual_seed(1)
    factors = torch.rand(24, 4, generator=generator) * 1.6 + 0.2
    factors[:, 3] = torch.rand(24, generator=generator) * 0.4 - 0.2
    order = torch.rand(24, 4, generator=generator).argsort(dim=1)
    assert len({tuple(row) for row in order.tolist()}) > 10, "many different orders in one batch"
    ops = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue]
    expected = []
    for image, factor, steps in zip(images, factors, order, strict=True):
        for step in steps.tolist():
            image = ops[step](image, factor[step].item())
        expected.append(image)
    assert torch.allclose(colour_jitter(images, factors, order), torch.stack(expected), atol=1e-5, rtol=0)


def test_colour_distortion_is_the_official_recipe_image_by_image():
    # A naive loop over the same draws: factors in SimCLR's ranges for strength s, the jitter
    # with probability 0.8 in the image's own order, then grayscale with probability 0.2.
    config, batch = ColourConfig(strength=0.5), 64
    images = rgb(batch=batch)
    out = random_colour_distortion(images, config, torch.Generator().manual_seed(2))
    draws = torch.rand(batch, 10, generator=torch.Generator().manual_seed(2))
    ops = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue]
    expected = []
    for image, draw in zip(images, draws.tolist(), strict=True):
        factors = [0.6 + 0.8 * u for u in draw[:3]] + [-0.1 + 0.2 * draw[3]]  # [1 - 0.4, 1 + 0.4], ±0.1
        if draw[8] < 0.8:
            for step in sorted(range(4), key=lambda i: draw[4 + i]):
                image = ops[step](image, factors[step])
        if draw[9] < 0.2:
            image = TF.rgb_to_grayscale(image, num_output_channels=3)
        expected.append(image)
    assert torch.allclose(out, torch.stack(expected), atol=1e-5, rtol=0)


def test_grayscale_and_jitter_probabilities():
    images = rgb(batch=4000, size=2, seed=3)
    only_gray = random_colour_distortion(images, ColourConfig(probability=0.0), torch.Generator().manual_seed(4))
    gray = (only_gray == only_gray[:, :1]).flatten(1).all(dim=1)
    assert abs(gray.float().mean().item() - 0.2) < 0.03  # standard error 0.006
    assert torch.equal(only_gray[~gray], images[~gray]), "the others are left exactly as they were"
    only_jitter = random_colour_distortion(images, ColourConfig(grayscale=0.0), torch.Generator().manual_seed(5))
    changed = (only_jitter - images).abs().flatten(1).amax(dim=1) > 1e-6
    assert abs(changed.float().mean().item() - 0.8) < 0.03


def test_fixed_order_is_brightness_contrast_saturation_hue():
    images = rgb(batch=16)
    config = ColourConfig(probability=1.0, grayscale=0.0, random_order=False)
    out = random_colour_distortion(images, config, torch.Generator().manual_seed(6))
    draws = torch.rand(16, 10, generator=torch.Generator().manual_seed(6))
    factors = torch.cat([0.2 + 1.6 * draws[:, :3], -0.2 + 0.4 * draws[:, 3:4]], dim=1)
    expected = images
    ops = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue]
    for op, factor in zip(ops, factors.T, strict=True):
        expected = per_image(op, expected, factor)
    assert torch.allclose(out, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("side", "taps"), [(8, 1), (28, 3), (32, 3), (96, 9), (224, 23)])
def test_blur_kernel_is_a_tenth_of_the_side_made_odd(side, taps):
    assert BlurConfig().kernel_size(side) == taps  # the official 2·⌊⌊side/10⌋/2⌋ + 1


@pytest.mark.parametrize("taps", [3, 5, 9])
def test_blur_is_torchvisions_with_each_images_sigma(taps):
    images = rgb(batch=12, size=11)
    sigma = torch.linspace(0.1, 2.0, 12)
    expected = torch.stack(
        [TF.gaussian_blur(image, [taps, taps], [s.item()] * 2) for image, s in zip(images, sigma, strict=True)]
    )
    assert torch.allclose(gaussian_blur(images, sigma, taps), expected, atol=1e-5, rtol=0)


def test_blur_probability_and_sigma_range():
    # σ from 1 up, as σ near 0.1 leaves a 3-tap blur within float rounding of the image.
    images = rgb(batch=2000, size=32, seed=7)
    out = random_blur(images, BlurConfig(sigma=(1.0, 2.0)), torch.Generator().manual_seed(8))
    blurred = (out - images).abs().flatten(1).amax(dim=1) > 1e-6
    assert abs(blurred.float().mean().item() - 0.5) < 0.04  # standard error 0.011
    # The draws are σ then the coin; every blurred image is torchvision's blur at its σ.
    draws = torch.rand(2000, 2, generator=torch.Generator().manual_seed(8))
    sigma = 1.0 + draws[:, 0]
    for index in torch.nonzero(blurred).flatten()[:5].tolist():
        expected = TF.gaussian_blur(images[index], [3, 3], [sigma[index].item()] * 2)
        assert torch.allclose(out[index], expected, atol=1e-5, rtol=0)


def test_sobel_of_a_vertical_step_by_hand():
    # 0 left of column 4, h = 0.8 from it on. Gx = [[-1,0,1],[-2,0,2],[-1,0,1]]/8 sums (1+2+1)·h/8 = h/2
    # on columns 3 and 4, whose neighbourhoods straddle the step; Gy is 0 everywhere (columns are
    # constant, and the repeated border keeps them so), so the magnitude is h/2 there and 0 elsewhere.
    image = torch.zeros(1, 1, 6, 8)
    image[..., 4:] = 0.8
    expected = torch.zeros(1, 1, 6, 8)
    expected[..., 3:5] = 0.4
    assert torch.allclose(sobel(image), expected, atol=1e-7, rtol=0)


def test_sobel_of_a_diagonal_ramp_and_of_colour():
    # x = a·i + b·j: Gx = (1+2+1)·2b/8 = b, Gy = a inside (the repeated border halves them there).
    rows, columns = torch.meshgrid(torch.arange(7.0), torch.arange(7.0), indexing="ij")
    ramp = (0.03 * rows + 0.04 * columns).view(1, 1, 7, 7)
    assert torch.allclose(sobel(ramp)[..., 1:-1, 1:-1], torch.full((1, 1, 5, 5), 0.05), atol=1e-6)
    # Colour: the edges of gray(x), the same in every channel.
    images = rgb(batch=4)
    out = sobel(images)
    assert out.shape == images.shape
    assert torch.allclose(out, sobel(TF.rgb_to_grayscale(images)).expand_as(images), atol=1e-6)


def test_sobel_probability():
    images = rgb(batch=2000, size=4, seed=9)
    out = random_sobel(images, SobelConfig(probability=0.3), torch.Generator().manual_seed(10))
    filtered = (out - images).abs().flatten(1).amax(dim=1) > 1e-6
    assert abs(filtered.float().mean().item() - 0.3) < 0.04


def test_quarter_turn_of_a_known_image():
    # A 3×3 image numbered row by row, turned counter-clockwise: the top row comes from the right column.
    image = torch.arange(9.0).view(1, 1, 3, 3)
    turned = rotate_quarter_turns(image.expand(4, 1, 3, 3), torch.tensor([0, 1, 2, 3]))
    assert torch.equal(turned[1, 0], torch.tensor([[2.0, 5, 8], [1, 4, 7], [0, 3, 6]]))
    assert torch.equal(turned[2, 0], torch.tensor([[8.0, 7, 6], [5, 4, 3], [2, 1, 0]]))
    assert torch.equal(turned[3, 0], torch.tensor([[6.0, 3, 0], [7, 4, 1], [8, 5, 2]]))
    assert torch.equal(turned[0], image[0])


def test_rotation_is_torchvisions_and_draws_the_listed_angles():
    images = rgb(batch=4000, size=4, seed=11)
    out = random_rotation(images, RotationConfig(angles=(0, 90, 180, 270)), torch.Generator().manual_seed(12))
    turns = torch.full((4000,), -1)
    for k in range(4):
        candidates = torch.stack([TF.rotate(image, 90 * k) for image in images[:200]])
        turns[:200][(candidates == out[:200]).flatten(1).all(dim=1)] = k
    assert (turns[:200] >= 0).all(), "every view is torchvision's rotation by a multiple of 90°"
    drawn = torch.randint(4, (4000,), generator=torch.Generator().manual_seed(12))  # the angle is drawn first
    assert torch.equal(out, rotate_quarter_turns(images, drawn))
    shares = torch.bincount(turns[:200], minlength=4).float() / 200
    assert (shares > 0.12).all()  # each of the four angles about a quarter of the time
    never_still = random_rotation(images, RotationConfig(), torch.Generator().manual_seed(13))
    assert not (never_still == images).flatten(1).all(dim=1).any(), "default angles 90, 180, 270"


def test_rotation_needs_square_images():
    with pytest.raises(ValueError, match="square"):
        rotate_quarter_turns(torch.zeros(2, 1, 4, 5), torch.tensor([1, 1]))


def test_cutout_zeros_one_clipped_square():
    images = torch.ones(1, 1, 8, 8)
    out = cutout(images, torch.tensor([[0.0, 0.5]]), torch.tensor([0.5]))
    # Centre at the left edge, half-height: columns with centres within 0.25 of x = 0 (0, 1), rows 2..5.
    expected = torch.ones(1, 1, 8, 8)
    expected[..., 2:6, 0:2] = 0
    assert torch.equal(out, expected)


def test_cutout_mean_area_is_that_of_a_clipped_square():
    # A centre uniform in [0, 1] keeps s - s²/4 of a side of length s on average, per axis.
    images = torch.ones(4000, 1, 32, 32)
    out = random_cutout(images, CutoutConfig(size=0.5), torch.Generator().manual_seed(14))
    area = (out == 0).float().mean(dim=(1, 2, 3))
    assert abs(area.mean().item() - (0.5 - 0.25 / 4) ** 2) < 0.005  # 0.191; standard error 0.0015
    assert area.max() <= 0.25 + 1e-6
    assert ((out == 0) | (out == 1)).all()
    half = random_cutout(images, CutoutConfig(size=0.5, probability=0.5), torch.Generator().manual_seed(15))
    assert abs((half == 0).flatten(1).any(dim=1).float().mean().item() - 0.5) < 0.04


def test_noise_has_the_configured_std_and_is_clipped():
    images = torch.full((200, 3, 16, 16), 0.5)
    out = random_noise(images, NoiseConfig(std=0.05), torch.Generator().manual_seed(16))
    residual = out - images
    assert abs(residual.std().item() - 0.05) < 0.002 and abs(residual.mean().item()) < 0.002
    clipped = random_noise(torch.zeros(50, 1, 8, 8), NoiseConfig(std=0.3), torch.Generator().manual_seed(17))
    assert clipped.min() >= 0 and clipped.max() <= 1 and (clipped == 0).float().mean() > 0.4
    many = torch.full((4000, 1, 2, 2), 0.5)
    some = random_noise(many, NoiseConfig(std=0.05, probability=0.25), torch.Generator().manual_seed(18))
    noisy = (some != many).flatten(1).any(dim=1).float().mean().item()
    assert abs(noisy - 0.25) < 0.03  # standard error 0.007


EVERYTHING = ViewsConfig(
    flip=True, rotation=True, colour={"strength": 0.5}, blur={"probability": 1.0}, sobel={"probability": 0.5},
    cutout={"size": 0.3}, noise={"std": 0.05},
)


def test_a_view_is_determined_by_the_generator():
    images = rgb(batch=16, size=20)
    first = make_view(images, EVERYTHING, torch.Generator().manual_seed(19))
    again = make_view(images, EVERYTHING, torch.Generator().manual_seed(19))
    other = make_view(images, EVERYTHING, torch.Generator().manual_seed(20))
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)
    assert first.dtype == torch.float32 and first.shape == images.shape
    # Torch's global generator plays no part.
    torch.manual_seed(0)
    assert torch.equal(make_view(images, EVERYTHING, torch.Generator().manual_seed(19)), first)
