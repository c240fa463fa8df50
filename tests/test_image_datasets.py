"""The plain ``classification`` dataset and the ``shared_bits`` wrapper of the random-bits experiment."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from sklearn.datasets import load_digits

from workers import TrialConfig
from workers.data.classification import ClassificationConfig
from workers.data.shared_bits import SharedBitsConfig
from workers.data.sources import DatasetUnavailable, load_digit_images, load_images, prepare_source
from workers.views import CropConfig, ViewsConfig, make_view

CPU = torch.device("cpu")
CIFAR_ROOT = Path("/work/data")


def digits(**changes) -> ClassificationConfig:
    return ClassificationConfig(name="classification", source="digits", **changes)


def bits_over_digits(bits: int = 8, seed: int = 0, **changes) -> SharedBitsConfig:
    base = {"name": "classification", "source": "digits", **changes}
    return SharedBitsConfig.model_validate({"name": "shared_bits", "base": base, "bits": bits, "seed": seed})


def test_classification_digits_are_the_sklearn_images(tmp_path):
    dataset = digits().build(tmp_path, CPU)
    assert (len(dataset.train), len(dataset.test), dataset.channels, dataset.image_size) == (1347, 450, 1, 8)
    images = dataset.train.images(torch.arange(1347))
    assert images.shape == (1347, 1, 8, 8) and images.dtype == torch.float32
    # Every training image is one of scikit-learn's, 0..16 counts rescaled to [0, 1], with its label.
    bunch = load_digits()
    counts = np.rint(bunch.images * 255 / 16).astype(int).reshape(1797, -1)
    reference = {tuple(row): label for row, label in zip(counts, bunch.target, strict=True)}
    for image, label in zip(images[:50], dataset.train.labels["class"][:50], strict=True):
        key = tuple(int(v) for v in torch.round(image * 255).int().ravel())
        assert reference[key] == label.item()


def test_classification_resizes_and_subsets(tmp_path):
    dataset = digits(size=28, train_examples=100, test_examples=30).build(tmp_path, CPU)
    assert (len(dataset.train), len(dataset.test), dataset.image_size) == (100, 30, 28)
    assert torch.equal(dataset.train.labels["class"], load_digit_images("digits", "train", tmp_path).labels[:100])
    images = dataset.train.images(torch.arange(100))
    assert images.shape == (100, 1, 28, 28) and images.min() >= 0 and images.max() <= 1
    # Bilinear upsampling keeps each image's mean roughly where it was.
    small = digits(train_examples=100).build(tmp_path, CPU).train.images(torch.arange(100))
    assert torch.allclose(images.mean((1, 2, 3)), small.mean((1, 2, 3)), atol=0.03)
    with pytest.raises(ValidationError, match="more than the 1347"):
        digits(train_examples=2000)


def test_classification_reads_mnist_through_torchvision(tmp_path):
    from test_data import write_idx

    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "MNIST" / "raw", "train", raw, np.arange(6, dtype=np.uint8))
    write_idx(tmp_path / "MNIST" / "raw", "t10k", raw[:2], np.arange(2, dtype=np.uint8))
    dataset = ClassificationConfig(name="classification", source="mnist").build(tmp_path, CPU)
    assert torch.equal(dataset.train.images(torch.arange(6))[:, 0], torch.from_numpy(raw).float() / 255)
    assert dataset.test.labels["class"].tolist() == [0, 1]


def test_cifar10_offline_and_missing_fails_with_one_line(tmp_path, monkeypatch):
    from torchvision import datasets

    # torchvision's real download path, pointed at a closed local port (as offline).
    monkeypatch.setattr(datasets.CIFAR10, "url", "http://127.0.0.1:9/cifar-10-python.tar.gz")
    with pytest.raises(DatasetUnavailable) as caught:
        prepare_source("cifar10", tmp_path)
    message = str(caught.value)
    assert "cifar10 is not under" in message and "cifar-10-batches-py" in message and "--data-root" in message
    assert "\n" not in message


@pytest.mark.skipif(not (CIFAR_ROOT / "cifar-10-batches-py").is_dir(), reason="CIFAR-10 is not under /work/data")
def test_cifar10_images_are_channels_first():
    test = load_images("cifar10", "test", CIFAR_ROOT)
    assert test.images.shape == (10_000, 3, 32, 32) and test.images.dtype == torch.uint8
    with open(CIFAR_ROOT / "cifar-10-batches-py" / "test_batch", "rb") as file:
        batch = pickle.load(file, encoding="latin1")
    # The published layout: each row is 1024 red, then 1024 green, then 1024 blue values.
    assert torch.equal(test.images[7].reshape(-1), torch.from_numpy(batch["data"][7]))
    assert test.labels[:20].tolist() == batch["labels"][:20]


def test_shared_bits_are_the_hash_of_each_image(tmp_path):
    config = bits_over_digits(bits=12, seed=3)
    dataset = config.build(tmp_path, CPU)
    base = config.base.build(tmp_path, CPU)
    assert (dataset.channels, dataset.fixed_channels, config.targets) == (13, 12, ("class",))
    index = torch.arange(40)
    images = dataset.train.images(index)
    assert torch.equal(images[:, :1], base.train.images(index))  # base channels untouched
    for i in range(40):
        pixels = torch.round(base.train.images(index[i : i + 1]) * 255).to(torch.uint8).numpy()
        digest = hashlib.blake2b(pixels[0].tobytes(), digest_size=2, key=b"3").digest()
        expected = [(digest[j // 8] >> (7 - j % 8)) & 1 for j in range(12)]  # bit j, most significant first
        planes = images[i, 1:]
        assert torch.equal(planes, torch.tensor(expected).float()[:, None, None].expand(12, 8, 8))


def test_shared_bits_are_the_same_in_both_views_and_every_epoch(tmp_path):
    dataset = bits_over_digits(bits=6, size=16).build(tmp_path, CPU)
    views = ViewsConfig(crop=CropConfig(scale=(0.5, 1.0)), flip=True)
    generator = torch.Generator().manual_seed(0)
    index = torch.randperm(1347)[:64]
    epochs = [dataset.train.images(index) for _ in range(2)]
    assert torch.equal(epochs[0], epochs[1])
    first, second = (make_view(epochs[0], views, generator, dataset.fixed_channels) for _ in range(2))
    assert torch.equal(first[:, 1:], second[:, 1:]) and torch.equal(first[:, 1:], epochs[0][:, 1:])
    assert not torch.equal(first[:, :1], second[:, :1])  # the image itself is augmented
    # Test images carry their bits too.
    assert dataset.test.images(torch.arange(5)).shape == (5, 7, 16, 16)


def test_twenty_bits_tell_almost_every_digit_apart(tmp_path):
    dataset = bits_over_digits(bits=20).build(tmp_path, CPU)
    codes = set()
    for split in (dataset.train, dataset.test):
        planes = split.images(torch.arange(len(split)))[:, 1:, 0, 0]
        codes |= {tuple(row) for row in planes.int().tolist()}
    assert len(codes) >= 1790  # of 1797: 2^20 codes leave a collision or two by chance
    # And the bits carry no class: each bit is on for about half of every class.
    planes = dataset.train.images(torch.arange(1347))[:, 1:, 0, 0]
    labels = dataset.train.labels["class"]
    per_class = torch.stack([planes[labels == c].mean(0) for c in range(10)])
    assert per_class.min() > 0.3 and per_class.max() < 0.7


def test_shared_bits_seed_fixes_the_bits(tmp_path):
    index = torch.arange(100)
    a, b = (bits_over_digits(seed=1).build(tmp_path, CPU).train.images(index) for _ in range(2))
    other = bits_over_digits(seed=2).build(tmp_path, CPU).train.images(index)
    assert torch.equal(a, b) and not torch.equal(a[:, 1:], other[:, 1:])
    assert torch.equal(a[:, :1], other[:, :1])
    none = bits_over_digits(bits=0).build(tmp_path, CPU)
    assert none.channels == 1 and torch.equal(none.train.images(index), a[:, :1])


def test_shared_bits_over_digit_pairs_keep_each_examples_bits_in_probes(tmp_path):
    base = {"name": "digit_pair", "source": "digits", "canvas": 16, "first_size": 8, "second_size": 8,
            "train_examples": 20, "test_examples": 10}
    config = SharedBitsConfig.model_validate({"name": "shared_bits", "base": base, "bits": 4})
    assert config.targets == ("first_digit", "second_digit") and config.train_count() == 20
    split = config.build(tmp_path, CPU).train
    probe = split.probed_for("first_digit")
    index = torch.arange(20)
    assert probe is not split and torch.equal(probe.images(index)[:, 1:], split.images(index)[:, 1:])
    assert torch.equal(probe.images(index)[:, :1], split.base.probed_for("first_digit").images(index))


def test_shared_bits_config_is_checked_like_any_dataset():
    trial = {"data": {"name": "shared_bits", "bits": 5, "base": {"name": "classification", "source": "digits"}},
             "method": "simclr", "train": {"batch_size": 64}}
    with pytest.raises(ValidationError, match="conv3 needs images of at least 15"):
        TrialConfig.model_validate({**trial, "model": {"backbone": "conv3"}})
    with pytest.raises(ValidationError, match="'first_digit' is not a target of shared_bits"):
        TrialConfig.model_validate({**trial, "eval": {"online": {"targets": ["first_digit"]}}})
    with pytest.raises(ValidationError):  # bits on bits: a base is a plain dataset
        SharedBitsConfig.model_validate({"name": "shared_bits", "bits": 1, "base": trial["data"]})
