"""Image sources, loaded once as uint8 tensors.

``digits`` is scikit-learn's bundled 8×8 handwritten digits (1,797 images, no download; the
smoke scale of every study). ``mnist``, ``fashion_mnist``, ``cifar10``, ``cifar100`` (its 100
fine classes), ``svhn`` (house-number digits, 73,257 train and 26,032 test images; its label
10 of the digit 0 read as 0, as torchvision does) and ``stl10`` (its labelled splits: 5,000 train
and 8,000 test 96×96 images, 10 classes; the unlabelled 100,000 are not read) are read through
torchvision, which downloads them into ``data_root`` when they are missing; offline, each names
the folder its files go in.
The grey sources (``Source``) are the digits that canvases are composed of; ``ImageSource`` adds
colour ones.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

Source = Literal["digits", "mnist", "fashion_mnist"]
ImageSource = Literal["digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "svhn", "stl10"]
SplitName = Literal["train", "test"]

# scikit-learn's digits ship without a split; this fixed stratified one is part of the dataset: the
# rows of its train and test splits, in the order scikit-learn's train_test_split gives them (test
# size 0.25, seed 0, stratified by digit; tests/test_data.py checks it against scikit-learn).
DIGITS_SPLIT_FILE = Path(__file__).with_name("digits_split.json")
TRAIN_DIGITS = {"digits": 1797 - 450, "mnist": 60_000, "fashion_mnist": 60_000}  # train split sizes
TRAIN_IMAGES = {**TRAIN_DIGITS, "cifar10": 50_000, "cifar100": 50_000, "svhn": 73_257, "stl10": 5_000}
IMAGE_SHAPES = {  # (C, side)
    "digits": (1, 8), "mnist": (1, 28), "fashion_mnist": (1, 28), "cifar10": (3, 32), "cifar100": (3, 32),
    "svhn": (3, 32), "stl10": (3, 96),
}
NUM_CLASSES = {
    "digits": 10, "mnist": 10, "fashion_mnist": 10, "cifar10": 10, "cifar100": 100, "svhn": 10, "stl10": 10,
}
COLOUR_SOURCES = ("cifar10", "cifar100", "svhn", "stl10")


class DatasetUnavailable(RuntimeError):
    """A dataset is neither under ``data_root`` nor downloadable from here."""


@dataclass(frozen=True)
class DigitImages:
    """Grey-level digits: ``images`` uint8 [N, H, W] (0 = background), ``labels`` int64 [N]."""

    images: torch.Tensor
    labels: torch.Tensor

    def to(self, device: torch.device | str) -> DigitImages:
        return DigitImages(self.images.to(device), self.labels.to(device))


@dataclass(frozen=True)
class LabelledImages:
    """``images`` uint8 [N, C, H, W], ``labels`` int64 [N]."""

    images: torch.Tensor
    labels: torch.Tensor


def load_images(source: ImageSource, split: SplitName, data_root: Path | str) -> LabelledImages:
    """One split of any source on the CPU as [N, C, H, W] (grey sources get C = 1)."""
    if source not in COLOUR_SOURCES:
        digits = load_digit_images(source, split, data_root)
        return LabelledImages(digits.images.unsqueeze(1), digits.labels)
    dataset = _torchvision_dataset(source, split, Path(data_root), download=True)
    if source in ("svhn", "stl10"):  # torchvision already has them channels first, the labels as ``labels``
        return LabelledImages(torch.from_numpy(dataset.data).contiguous(), torch.from_numpy(dataset.labels).long())
    images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous()  # stored HWC
    return LabelledImages(images, torch.tensor(dataset.targets, dtype=torch.int64))


def load_digit_images(source: Source, split: SplitName, data_root: Path | str) -> DigitImages:
    """One split of ``source`` on the CPU, downloaded into ``data_root`` if it is not there."""
    if source == "digits":
        return _sklearn_digits(split)
    dataset = _torchvision_dataset(source, split, Path(data_root), download=True)
    return DigitImages(dataset.data.clone(), dataset.targets.clone().long())


def prepare_source(source: ImageSource, data_root: Path | str) -> None:
    """Make sure ``source`` is readable under ``data_root``, downloading it if needed.

    The orchestrator calls this once before any trial starts, so a missing dataset is one
    clear error up front rather than one per trial (and trials never race to download).
    """
    if source == "digits":
        return
    for split in ("train", "test"):
        _torchvision_dataset(source, split, Path(data_root), download=True)


def _sklearn_digits(split: SplitName) -> DigitImages:
    """scikit-learn's digits file read without importing scikit-learn (with scipy: ~1.3 s in every trial's process)."""
    table = np.loadtxt(_sklearn_folder() / "datasets" / "data" / "digits.csv.gz", delimiter=",")  # what load_digits reads
    # Pixel values are counts 0..16 of a 4×4 block; rescale to the 0..255 range of MNIST.
    images = np.rint(table[:, :-1].reshape(-1, 8, 8) * (255.0 / 16.0)).astype(np.uint8)
    index = np.array(json.loads(DIGITS_SPLIT_FILE.read_text())[split])
    return DigitImages(torch.from_numpy(images[index]), torch.from_numpy(table[index, -1].astype(np.int64)))


def _sklearn_folder() -> Path:
    spec = importlib.util.find_spec("sklearn")  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        raise DatasetUnavailable("the digits source ships with scikit-learn, which is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _torchvision_dataset(source: ImageSource, split: SplitName, data_root: Path, *, download: bool):
    from torchvision import datasets

    cls = {
        "mnist": datasets.MNIST, "fashion_mnist": datasets.FashionMNIST, "cifar10": datasets.CIFAR10,
        "cifar100": datasets.CIFAR100, "svhn": datasets.SVHN, "stl10": datasets.STL10,
    }[source]
    try:
        if source in ("svhn", "stl10"):
            return cls(str(data_root), split=split, download=download)
        return cls(str(data_root), train=split == "train", download=download)
    except (RuntimeError, OSError) as error:
        if source == "cifar10":
            folder, files = data_root / cls.base_folder, f"{cls.base_folder}/*_batch* files"
        elif source == "cifar100":
            folder, files = data_root / cls.base_folder, "train, test and meta files (cifar-100-python.tar.gz unpacked)"
        elif source == "svhn":
            folder, files = data_root, "train_32x32.mat and test_32x32.mat"
        elif source == "stl10":
            folder, files = data_root / cls.base_folder, "train_X.bin, train_y.bin, test_X.bin and test_y.bin"
        else:
            folder, files = data_root / cls.__name__ / "raw", f"{cls.__name__}/raw/*.gz files"
        raise DatasetUnavailable(
            f"{source} is not under {folder} and could not be downloaded "
            f"({_last_line(error)}); put torchvision's {files} there "
            f"or pass --data-root pointing at a folder that has them"
        ) from error


def _last_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__
