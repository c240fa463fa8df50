"""Filters: Gaussian blur, Sobel filtering, Gaussian noise (SimCLR Fig. 4 and Appendix A)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from workers.registry import Section
from workers.views.colour import grayscale


class BlurConfig(Section):
    """Gaussian blur with σ ~ U(``sigma``) per image, with probability ``probability``.

    SimCLR (Appendix A): σ in [0.1, 2.0], a kernel of about 10% of the side, probability 0.5.
    The kernel has 2·⌊⌊side·fraction⌋/2⌋ + 1 taps, the official code's rule (23 at 224 pixels,
    3 at 32, and 1, no blur, below 20 pixels).
    """

    sigma: tuple[float, float] = (0.1, 2.0)
    kernel_fraction: float = Field(0.1, gt=0, le=1)
    probability: float = Field(0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> BlurConfig:
        if not 0 < self.sigma[0] <= self.sigma[1]:
            raise ValueError(f"sigma must satisfy 0 < low <= high, got {list(self.sigma)}")
        return self

    def kernel_size(self, side: int) -> int:
        # The small epsilon keeps e.g. 30 × 0.1 = 3.0000000000000004 and 0.7 × 10 = 6.999… on the intended side.
        return 2 * (int(side * self.kernel_fraction + 1e-9) // 2) + 1


class SobelConfig(Section):
    """Sobel filtering with probability ``probability``: the gradient magnitude of gray(x) in every channel."""

    probability: float = Field(1.0, ge=0, le=1)


class NoiseConfig(Section):
    """x + ε with ε ~ N(0, ``std``²) per pixel, clipped to [0, 1], with probability ``probability``."""

    std: float = Field(0.1, gt=0)
    probability: float = Field(1.0, ge=0, le=1)


def gaussian_kernels(sigma: torch.Tensor, size: int) -> torch.Tensor:
    """[B, size] normalised 1-d kernels, w_j ∝ exp(-j²/(2σ²)) for j = -r..r (torchvision's)."""
    taps = torch.arange(size, device=sigma.device, dtype=sigma.dtype) - size // 2
    weights = torch.exp(-(taps**2) / (2 * sigma.view(-1, 1) ** 2))
    return weights / weights.sum(dim=1, keepdim=True)


def gaussian_blur(images: torch.Tensor, sigma: torch.Tensor, size: int) -> torch.Tensor:
    """Each image blurred with its own σ: two passes of a separable kernel, borders reflected.

    One grouped convolution per pass: the batch's B·C planes are the groups, each with its
    image's kernel, so the whole batch is two kernels whatever the σs.
    """
    if size == 1:
        return images
    batch, channels, height, width = images.shape
    radius = size // 2
    kernels = gaussian_kernels(sigma.to(images.dtype), size).repeat_interleave(channels, dim=0)
    planes = F.pad(images, (radius,) * 4, mode="reflect").view(1, batch * channels, height + 2 * radius, -1)
    planes = F.conv2d(planes, kernels.view(-1, 1, 1, size), groups=batch * channels)
    planes = F.conv2d(planes, kernels.view(-1, 1, size, 1), groups=batch * channels)
    return planes.view(batch, channels, height, width)


def random_blur(images: torch.Tensor, config: BlurConfig, generator: torch.Generator) -> torch.Tensor:
    """Draws, in order: σ and whether to blur, per image."""
    size = config.kernel_size(min(images.shape[-2:]))
    draws = torch.rand(len(images), 2, device=images.device, generator=generator)
    sigma = config.sigma[0] + (config.sigma[1] - config.sigma[0]) * draws[:, 0]
    blurred = gaussian_blur(images, sigma, size)
    return torch.where((draws[:, 1] < config.probability).view(-1, 1, 1, 1), blurred, images)


def sobel(images: torch.Tensor) -> torch.Tensor:
    """√(Gx² + Gy²) of gray(x), in every channel; Gx = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]] / 8, Gy = Gxᵀ.

    Borders are repeated (a flat border gives 0). The 1/8 (kornia's ``normalized``) keeps the
    response within [0, 1/√2]: a step of height h gives h/2 on the two pixels either side of it.
    Each kernel is separable, a central difference [-1, 0, 1] then a [1, 2, 1] smoothing across
    it, done here with shifted slices: several times faster than a one-channel ``conv2d`` on a CPU.
    """
    padded = F.pad(grayscale(images), (1, 1, 1, 1), mode="replicate")
    across = padded[..., 2:] - padded[..., :-2]  # [B, 1, H + 2, W]
    down = padded[..., 2:, :] - padded[..., :-2, :]  # [B, 1, H, W + 2]
    gradient_x = across[..., :-2, :] + 2 * across[..., 1:-1, :] + across[..., 2:, :]
    gradient_y = down[..., :-2] + 2 * down[..., 1:-1] + down[..., 2:]
    return ((gradient_x.square() + gradient_y.square()).sqrt() / 8).expand_as(images)


def random_sobel(images: torch.Tensor, config: SobelConfig, generator: torch.Generator) -> torch.Tensor:
    """Draws whether to filter, per image."""
    applied = torch.rand(len(images), device=images.device, generator=generator) < config.probability
    return torch.where(applied.view(-1, 1, 1, 1), sobel(images), images)


def random_noise(images: torch.Tensor, config: NoiseConfig, generator: torch.Generator) -> torch.Tensor:
    """Draws, in order: the noise (one normal per pixel) and whether to add it, per image."""
    noise = torch.randn(images.shape, device=images.device, generator=generator, dtype=images.dtype)
    applied = torch.rand(len(images), device=images.device, generator=generator) < config.probability
    return torch.where(applied.view(-1, 1, 1, 1), (images + config.std * noise).clamp(0, 1), images)
