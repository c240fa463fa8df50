"""Datasets: sources read what they should, canvases hold the digits their labels say."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from workers.data.digit_pair import DigitPairConfig, paste, resize_digits
from workers.data.sources import DatasetUnavailable, DigitImages, load_digit_images, prepare_source


def test_sklearn_digits_split_and_pixel_range():
    train, test = load_digit_images("digits", "train", "unused"), load_digit_images("digits", "test", "unused")
    assert len(train.labels) + len(test.labels) == 1797
    assert len(test.labels) == 450  # 25 %, stratified
    assert train.images.dtype == torch.uint8 and train.images.shape[1:] == (8, 8)
    # Pixels are 0..16 counts rescaled to 0..255: every value is round(k·255/16).
    allowed = {round(k * 255 / 16) for k in range(17)}
    assert set(torch.unique(train.images).tolist()) <= allowed
    # The same image as scikit-learn's, found by its exact pixels.
    bunch = load_digits()
    first = train.images[0].numpy().astype(float) * 16 / 255
    # Rounding to 0..255 moves a count by at most 0.5·16/255 ≈ 0.03, far less than 1 count.
    match = np.where(np.abs(bunch.images - first).reshape(1797, -1).max(1) < 0.05)[0]
    assert len(match) >= 1 and bunch.target[match[0]] == train.labels[0].item()


def test_digits_are_scikit_learns_stratified_split_read_without_importing_it():
    # The reference: what scikit-learn's own loader and splitter give (the split this project always used).
    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    train_x, test_x, train_y, test_y = train_test_split(
        images, bunch.target, test_size=0.25, random_state=0, stratify=bunch.target
    )
    for split, x, y in (("train", train_x, train_y), ("test", test_x, test_y)):
        digits = load_digit_images("digits", split, "unused")
        assert torch.equal(digits.images, torch.from_numpy(x)), split  # same images in the same order
        assert torch.equal(digits.labels, torch.from_numpy(y).long()) and digits.labels.dtype == torch.int64
    # A trial's process reads them without importing scikit-learn (and scipy with it).
    script = ("import sys; from workers.data.sources import load_digit_images as load; "
              "d = load('digits', 'test', 'unused'); print(len(d.labels), 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["450", "False"]


def write_idx(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    """MNIST's IDX format, as torchvision reads it (big-endian header, then uint8 data)."""
    folder.mkdir(parents=True, exist_ok=True)
    n, h, w = images.shape
    (folder / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, h, w) + images.tobytes())
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())


def test_mnist_is_read_through_torchvision(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    write_idx(tmp_path / "MNIST" / "raw", "train", images, labels)
    write_idx(tmp_path / "MNIST" / "raw", "t10k", images[:2], labels[:2])
    prepare_source("mnist", tmp_path)  # finds the files: no download
    train = load_digit_images("mnist", "train", tmp_path)
    assert torch.equal(train.images, torch.from_numpy(images))
    assert train.labels.tolist() == [3, 1, 4, 1, 5]
    assert load_digit_images("mnist", "test", tmp_path).labels.tolist() == [3, 1]


def test_missing_dataset_offline_fails_with_a_clear_message(tmp_path, monkeypatch):
    from torchvision import datasets

    # Keep torchvision's real download path, pointed at a closed local port (as offline).
    monkeypatch.setattr(datasets.FashionMNIST, "mirrors", ["http://127.0.0.1:9/"])
    with pytest.raises(DatasetUnavailable) as caught:
        prepare_source("fashion_mnist", tmp_path)
    message = str(caught.value)
    assert "fashion_mnist is not under" in message and "--data-root" in message
    assert "\n" not in message


def test_paste_adds_patches_at_their_corners():
    canvases = torch.zeros(2, 5, 5)
    patches = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]])
    paste(canvases, patches, torch.tensor([[0, 0], [3, 2]]))
    paste(canvases, torch.ones(2, 2, 2), torch.tensor([[1, 1], [3, 3]]))
    expected = torch.zeros(2, 5, 5)
    expected[0, 0:2, 0:2] = patches[0]
    expected[0, 1:3, 1:3] += 1
    expected[1, 3:5, 2:4] = patches[1]
    expected[1, 3:5, 3:5] += 1
    assert torch.equal(canvases, expected)


def test_resize_keeps_a_constant_image_constant():
    images = torch.full((3, 8, 8), 255, dtype=torch.uint8)
    assert torch.allclose(resize_digits(images, 5), torch.ones(3, 5, 5))
    assert resize_digits(images, 8).shape == (3, 8, 8)


def test_digit_pair_canvas_holds_its_two_digits(tmp_path, monkeypatch):
    # Digits that are solid squares of their class value make every canvas checkable by hand.
    labels = torch.arange(10)
    digits = DigitImages(((labels + 1) * 20).to(torch.uint8)[:, None, None].expand(10, 4, 4).clone(), labels)
    monkeypatch.setattr("workers.data.canvas.load_digit_images", lambda *args: digits)
    config = DigitPairConfig(name="digit_pair", source="digits", canvas=16, first_size=4, second_size=8,
                             train_examples=50, test_examples=7)
    dataset = config.build(tmp_path, torch.device("cpu"))
    split = dataset.train
    assert len(split) == 50 and len(dataset.test) == 7 and dataset.image_size == 16
    images = split.images(torch.arange(50))
    assert images.shape == (50, 1, 16, 16)
    for i in range(50):
        expected = torch.zeros(16, 16)
        for target, size, corner in (("first_digit", 4, split.first_corner[i]),
                                     ("second_digit", 8, split.second_corner[i])):
            value = (split.labels[target][i].item() + 1) * 20 / 255
            r, c = corner.tolist()
            expected[r:r + size, c:c + size] += value
        assert torch.allclose(images[i, 0], expected.clamp(max=1), atol=1e-6)
    # Every digit is a first digit once before any repeats.
    assert sorted(split.first[:10].tolist()) == list(range(10))


def test_digit_pair_layout_is_fixed_by_the_dataset_seed(tmp_path):
    config = DigitPairConfig(name="digit_pair", source="digits", canvas=32, first_size=8, second_size=16)
    a = config.build(tmp_path, torch.device("cpu")).train
    b = config.build(tmp_path, torch.device("cpu")).train
    assert torch.equal(a.images(torch.arange(10)), b.images(torch.arange(10)))
    other = config.model_copy(update={"seed": 1}).build(tmp_path, torch.device("cpu")).train
    assert not torch.equal(a.second, other.second)


def test_render_scale_keeps_paper_sizes():
    config = DigitPairConfig(name="digit_pair", canvas=112, first_size=20, second_size=80, render_scale=0.25)
    assert (config.pixels(config.canvas), config.pixels(config.first_size), config.pixels(80)) == (28, 5, 20)
    with pytest.raises(ValueError, match="does not fit"):
        DigitPairConfig(name="digit_pair", canvas=50, second_size=60)


def test_digit_pair_probes_read_each_digit_alone(tmp_path, monkeypatch):
    labels = torch.arange(10)
    digits = DigitImages(((labels + 1) * 20).to(torch.uint8)[:, None, None].expand(10, 4, 4).clone(), labels)
    monkeypatch.setattr("workers.data.canvas.load_digit_images", lambda *args: digits)
    config = DigitPairConfig(name="digit_pair", source="digits", canvas=16, first_size=4, second_size=8,
                             train_examples=20, test_examples=5)
    split = config.build(tmp_path, torch.device("cpu")).train
    index = torch.arange(20)
    both = split.images(index)
    first, second = (split.probed_for(t).images(index) for t in ("first_digit", "second_digit"))
    for i in range(20):
        for alone, target, size, corner in ((first, "first_digit", 4, split.first_corner[i]),
                                            (second, "second_digit", 8, split.second_corner[i])):
            expected = torch.zeros(16, 16)
            r, c = corner.tolist()
            expected[r:r + size, c:c + size] = (split.labels[target][i].item() + 1) * 20 / 255
            assert torch.allclose(alone[i, 0], expected, atol=1e-6)
    # The probe keeps the labels, and training canvases still hold both digits.
    assert split.probed_for("first_digit").labels is split.labels
    assert torch.equal(split.images(index), both) and not torch.equal(both, first)
    two = config.model_copy(update={"evaluation": "both_digits"}).build(tmp_path, torch.device("cpu")).train
    assert two.probed_for("first_digit") is two
