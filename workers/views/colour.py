"""Colour distortion (SimCLR, Chen et al. 2020, Appendix A; ``data_util.py`` of google-research/simclr).

Of strength s: with probability 0.8, brightness, contrast and saturation factors drawn from
U[max(0, 1 - 0.8·s), 1 + 0.8·s] and a hue shift from U[-0.2·s, 0.2·s] (in turns), applied in a
random order (per image here; the official code draws one order per image too), each followed
by clipping to [0, 1]; then, with probability 0.2, grayscale (kept at 3 channels). The four
operations are torchvision's (``transforms.v2.functional.adjust_*``), with x in [0, 1]:

* brightness f:  clip(f·x)
* contrast f:    clip(f·x + (1 - f)·mean(gray(x)))   (mean over the whole image)
* saturation f:  clip(f·x + (1 - f)·gray(x))
* hue δ:         HSV(x) with H → (H + δ) mod 1, back to RGB
* gray(x) = 0.2989·R + 0.587·G + 0.114·B (ITU-R 601-2, as TensorFlow and torchvision)

TensorFlow's contrast subtracts each channel's own mean and its saturation scales S in HSV;
these are torchvision's blends instead, the ones most PyTorch reproductions run. On one-channel
images, saturation, hue and grayscale leave the image as it is (as torchvision does).

Brightness, contrast and saturation are one blend f·x + (1 - f)·t with t = 0, mean(gray(x)) or
gray(x), so each of the four steps of a per-image random order is one blend with a per-image
(f, t) plus one hue shift that only the images whose step it is keep.
"""

from __future__ import annotations

import torch
from pydantic import Field

from workers.registry import Section

LUMA = (0.2989, 0.587, 0.114)
BRIGHTNESS, CONTRAST, SATURATION, HUE = range(4)


class ColourConfig(Section):
    """Colour jitter of ``strength`` s with probability ``probability``, then grayscale with ``grayscale``."""

    strength: float = Field(1.0, gt=0, le=2.5, description="s; the hue shift 0.2·s must stay within half a turn")
    probability: float = Field(0.8, ge=0, le=1, description="of the jitter (brightness, contrast, saturation, hue)")
    grayscale: float = Field(0.2, ge=0, le=1, description="probability of grayscale after the jitter")
    random_order: bool = Field(True, description="a random order of the four jitter steps per image; else B, C, S, H")


def grayscale(images: torch.Tensor) -> torch.Tensor:
    """gray(x) [B, 1, H, W] of RGB images; one-channel images are their own grayscale."""
    channels = images.shape[1]
    if channels == 1:
        return images
    if channels != 3:
        raise ValueError(f"colour operations need 1 or 3 channels, got {channels}")
    red, green, blue = images.unbind(1)
    return (red * LUMA[0] + green * LUMA[1] + blue * LUMA[2]).unsqueeze(1)


def _blend(images: torch.Tensor, target: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    factor = factor.view(-1, 1, 1, 1)
    return (factor * images + (1 - factor) * target).clamp(0, 1)


def adjust_brightness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """clip(f·x), one factor per image."""
    return _blend(images, torch.zeros((), device=images.device), factor)


def adjust_contrast(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """clip(f·x + (1 - f)·mean(gray(x))), one factor per image."""
    return _blend(images, grayscale(images).mean(dim=(1, 2, 3), keepdim=True), factor)


def adjust_saturation(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """clip(f·x + (1 - f)·gray(x)), one factor per image."""
    return _blend(images, grayscale(images), factor)


def adjust_hue(images: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Hue H → (H + δ) mod 1 in HSV, one δ (in turns) per image, without building HSV.

    With V = max(R, G, B) and chroma C = V - min(R, G, B), the hue in sextants is
    (G - B)/C if V = R, (B - R)/C + 2 if V = G, else (R - G)/C + 4; after the shift each channel
    is V - C·clip(min(k, 4 - k), 0, 1) with k = (n + 6H) mod 6 and n = 5, 3, 1 for R, G, B.
    """
    if images.shape[1] == 1:
        return images
    red, green, blue = images.unbind(1)
    value, minimum = images.amax(dim=1), images.amin(dim=1)
    chroma = value - minimum
    divisor = torch.where(chroma > 0, chroma, 1.0)
    from_green_or_blue = torch.where(value == green, (blue - red) / divisor + 2, (red - green) / divisor + 4)
    sextant = torch.where(value == red, (green - blue) / divisor, from_green_or_blue)
    hue = sextant + 6 * shift.view(-1, 1, 1)
    k = torch.stack([hue + 5, hue + 3, hue + 1], dim=1).remainder(6)
    return value.unsqueeze(1) - chroma.unsqueeze(1) * torch.minimum(k, 4 - k).clamp(0, 1)


def colour_jitter(images: torch.Tensor, factors: torch.Tensor, order: torch.Tensor | None = None) -> torch.Tensor:
    """The four jitter steps, image b taking step ``order[b, k]`` at position k.

    ``factors`` [B, 4]: brightness, contrast and saturation factors and the hue shift;
    ``order`` [B, 4]: a permutation of (BRIGHTNESS, CONTRAST, SATURATION, HUE) per image, or
    None for that order in every image. A per-image order computes the hue shift at all four
    positions (each image keeps it at its own), so it costs about four fixed-order hue shifts.
    """
    if order is None:
        images = adjust_brightness(images, factors[:, BRIGHTNESS])
        images = adjust_contrast(images, factors[:, CONTRAST])
        images = adjust_saturation(images, factors[:, SATURATION])
        return adjust_hue(images, factors[:, HUE])
    for position in range(4):
        step = order[:, position]
        # A hue step's blend is the identity: f = 1 keeps x exactly, whatever t is.
        factor = torch.where(step == HUE, 1.0, factors.gather(1, step.clamp(max=SATURATION).unsqueeze(1)).squeeze(1))
        gray = grayscale(images)
        mean = gray.mean(dim=(1, 2, 3), keepdim=True)
        step_ = step.view(-1, 1, 1, 1)
        target = torch.where(step_ == SATURATION, gray, torch.where(step_ == CONTRAST, mean, 0.0))
        images = _blend(images, target, factor)
        if images.shape[1] == 3:
            shifted = adjust_hue(images, torch.where(step == HUE, factors[:, HUE], 0.0))
            images = torch.where(step_ == HUE, shifted, images)
    return images


def random_colour_distortion(images: torch.Tensor, config: ColourConfig, generator: torch.Generator) -> torch.Tensor:
    """Jitter with probability p, then grayscale with probability q, drawn per image.

    Draws one [B, 10] uniform block: the four factors, four keys whose ranks give the order,
    whether to jitter, whether to gray.
    """
    s = config.strength
    draws = torch.rand(len(images), 10, device=images.device, generator=generator)
    # Python-number bounds: no host-to-device copy, so nothing here waits for the device.
    low, high = max(0.0, 1 - 0.8 * s), 1 + 0.8 * s
    factors = torch.cat([low + (high - low) * draws[:, :3], 0.2 * s * (2 * draws[:, 3:4] - 1)], dim=1)
    jittered = colour_jitter(images, factors, draws[:, 4:8].argsort(dim=1) if config.random_order else None)
    images = torch.where((draws[:, 8] < config.probability).view(-1, 1, 1, 1), jittered, images)
    gray = (draws[:, 9] < config.grayscale).view(-1, 1, 1, 1)
    return torch.where(gray, grayscale(images).expand_as(images), images)
