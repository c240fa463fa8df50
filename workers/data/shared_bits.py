"""Shared random bits: the feature-suppression probe of Chen, Luo & Li (2021, §4, Fig. 4).

Every image of a ``base`` dataset gets ``bits`` extra channels, each the constant 0 or 1 over
the whole image. An image's k bits are fixed (a hash of its pixels), so they are the same in
both views and every epoch, and they are never augmented: a view is made from the base
channels and the bit channels are appended to it unchanged (``Dataset.fixed_channels``,
honoured by ``workers.views.make_view``). With k bits, 2^k codes tell almost every image
apart, so the contrastive task can be solved from the bits alone; the paper's finding is that
the encoder then stops representing the image (linear accuracy falls towards chance as k
grows), an easy feature suppressing a harder one.

As in the paper's notebook (``randbits_mnist.ipynb``, which hashes each image's JPEG bytes),
the bits are a hash of the image: here BLAKE2b of the base image rendered and quantised to
uint8, keyed by ``seed``; bit j is bit j of the digest. Identical images get identical bits;
the bits carry no information about the class. Test images carry their bits too, so the
linear probes see the same kind of input the encoder was trained on.

A base is any dataset imported above the class below (its field's union is taken when the
class is defined, so a new dataset that should be wrappable is imported here).
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field

from workers.data import classification, digit_pair  # noqa: F401 - registered before the base's union
from workers.data.base import DATASETS, Dataset, DatasetConfig, Split

MAX_BITS = 512  # the longest BLAKE2b digest
HASH_BATCH = 4096  # base images rendered at a time while hashing: does not change the bits


@DATASETS.register
class SharedBitsConfig(DatasetConfig):
    name: Literal["shared_bits"]
    base: DATASETS.union() = Field(description="the dataset whose images get the bits")
    bits: int = Field(ge=0, le=MAX_BITS, description="constant 0/1 channels appended to every image")
    seed: int = Field(0, description="key of the hash that draws each image's bits")

    @property
    def targets(self) -> tuple[str, ...]:
        """The base's targets (a property here: they depend on the base this instance wraps)."""
        return self.base.targets

    def sources(self) -> list[str]:
        return self.base.sources()

    def image_size(self) -> int:
        return self.base.image_size()

    def train_count(self) -> int:
        return self.base.train_count()

    def build(self, data_root: Path, device: torch.device) -> Dataset:
        base = self.base.build(data_root, device)
        return Dataset(
            train=SharedBitsSplit(base.train, image_bits(base.train, self.bits, self.seed)),
            test=SharedBitsSplit(base.test, image_bits(base.test, self.bits, self.seed)),
            num_classes=base.num_classes,
            channels=base.channels + self.bits,
            image_size=base.image_size,
            fixed_channels=base.fixed_channels + self.bits,
        )


class SharedBitsSplit(Split):
    """The ``base`` split's images with ``bits`` [N, k] (float 0/1) appended as constant channels."""

    def __init__(self, base: Split, bits: torch.Tensor) -> None:
        self.base = base
        self.bits = bits
        self.labels = base.labels

    def images(self, index: torch.Tensor) -> torch.Tensor:
        images = self.base.images(index)
        batch, _, height, width = images.shape
        planes = self.bits[index][:, :, None, None].expand(batch, self.bits.shape[1], height, width)
        return torch.cat([images, planes], dim=1)

    def probed_for(self, target: str) -> Split:
        """The base's probe images, each with its example's bits."""
        probed = self.base.probed_for(target)
        if probed is self.base:
            return self
        wrapped = copy.copy(self)
        wrapped.base = probed
        return wrapped


def image_bits(split: Split, bits: int, seed: int) -> torch.Tensor:
    """float32 [N, ``bits``] of 0/1 on the split's device: the BLAKE2b hash, keyed by ``seed``,
    of each image rendered by ``split`` and quantised to uint8."""
    device = next(iter(split.labels.values())).device
    if bits == 0:
        return torch.zeros(len(split), 0, device=device)
    key = str(seed).encode()
    digests = []
    for chunk in torch.arange(len(split), device=device).split(HASH_BATCH):
        pixels = split.images(chunk).mul(255.0).round_().to(torch.uint8).cpu().numpy()
        digests += [hashlib.blake2b(image.tobytes(), digest_size=(bits + 7) // 8, key=key).digest() for image in pixels]
    packed = np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(len(digests), -1)
    unpacked = np.unpackbits(packed, axis=1)[:, :bits]
    return torch.from_numpy(unpacked.astype(np.float32)).to(device)
