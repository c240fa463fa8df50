"""Digits on natural images: a pool of P digits, one per image, tiled 3×3 and merged by pixel-wise max."""

from __future__ import annotations

import pytest
import torch
import yaml
from conftest import TINY_BASE
from pydantic import ValidationError
from sklearn.datasets import load_sample_images

from workers import TrialConfig, run_trial
from workers.data.digit_overlay import DigitOverlayConfig, overlay, sample_photo_patches, tile_digits
from workers.data.sources import load_digit_images

CPU = torch.device("cpu")


def smoke(**changes) -> DigitOverlayConfig:
    fields = {"name": "digit_overlay", "image_source": "sample_photos", "digit_source": "digits", **changes}
    return DigitOverlayConfig.model_validate(fields)


def test_overlay_is_the_pixelwise_max_in_every_channel():
    images = torch.tensor([[[[0.1, 0.9], [0.5, 0.0]], [[0.7, 0.2], [0.3, 1.0]], [[0.0, 0.4], [0.6, 0.8]]]])
    digits = torch.tensor([[[0.5, 0.0], [1.0, 0.25]]])
    expected = torch.tensor([[[[0.5, 0.9], [1.0, 0.25]], [[0.7, 0.2], [1.0, 1.0]], [[0.5, 0.4], [1.0, 0.8]]]])
    assert torch.equal(overlay(images, digits), expected)


@pytest.mark.parametrize(("size", "before"), [(12, 0), (13, 0), (14, 1)])
def test_tiles_repeat_the_digit_on_a_centred_three_by_three_grid(size, before):
    # 4×4 digits at tile side 4 are not resized, so every tile is the digit's exact pixels.
    digits = torch.randint(0, 256, (3, 4, 4), dtype=torch.uint8)
    plane = tile_digits(digits, size)
    assert plane.shape == (3, size, size)
    expected = torch.zeros(3, size, size)
    for row in range(3):
        for col in range(3):
            top, left = before + 4 * row, before + 4 * col
            expected[:, top : top + 4, left : left + 4] = digits.float() / 255
    assert torch.equal(plane, expected)


def test_tiles_resize_the_digit_to_a_third_of_the_image():
    digits = torch.full((2, 8, 8), 255, dtype=torch.uint8)
    plane = tile_digits(digits, 32)  # tiles of 10, one pixel of border on each side
    assert torch.allclose(plane[:, 1:31, 1:31], torch.ones(2, 30, 30))
    assert plane[:, 0].eq(0).all() and plane[:, 31].eq(0).all() and plane[:, :, 0].eq(0).all()


def test_each_image_is_its_photo_under_its_pool_digit(tmp_path):
    config = smoke(pool_size=7, train_examples=200, test_examples=50)
    dataset = config.build(tmp_path, CPU)
    source = load_digit_images("digits", "train", tmp_path)
    train, test = dataset.train, dataset.test
    pool = train.pool_source_index
    assert len(pool) == 7 and len(set(pool.tolist())) == 7  # P distinct digits of the train split
    assert torch.equal(test.pool_source_index, pool)  # test images draw from the same pool
    photos = sample_photo_patches("train")
    index = torch.arange(200)
    images = train.images(index)
    assert images.shape == (200, 3, 32, 32) and (dataset.channels, dataset.image_size) == (3, 32)
    for i in range(200):
        assert 0 <= train.drawn[i] < 7
        digit = source.images[pool[train.drawn[i]]]
        assert train.labels["digit"][i] == source.labels[pool[train.drawn[i]]]
        expected = torch.maximum(photos.images[i].float() / 255, tile_digits(digit[None], 32))
        assert torch.equal(images[i], expected)
    assert torch.equal(train.labels["image_class"], photos.labels[:200])
    assert set(train.drawn.tolist()) == set(range(7))  # 200 draws use all seven
    assert set(test.drawn.tolist()) <= set(range(7))
    assert dataset.num_classes == {"digit": 10, "image_class": 2}
    assert train.probed_for("digit") is train and train.probed_for("image_class") is train


def test_sample_photo_patches_are_cut_from_the_two_photos():
    train, test = sample_photo_patches("train"), sample_photo_patches("test")
    assert (len(train.labels), len(test.labels)) == (390, 130)
    assert train.images.dtype == torch.uint8 and train.images.shape[1:] == (3, 32, 32)
    assert train.labels.bincount().tolist() == [195, 195]
    photos = load_sample_images().images
    # Every patch is a 32×32 block of its photo on the 32-pixel lattice, and no patch is in both splits.
    keys = []
    for images, labels in ((train.images, train.labels), (test.images, test.labels)):
        for patch, label in zip(images[:40], labels[:40], strict=True):
            photo = torch.from_numpy(photos[label].copy()).permute(2, 0, 1)
            blocks = photo[:, : 13 * 32, : 20 * 32].unfold(1, 32, 32).unfold(2, 32, 32)  # [3, 13, 20, 32, 32]
            found = (blocks == patch[:, None, None]).flatten(3).all(3).all(0).nonzero()
            assert len(found) == 1
            keys.append((label.item(), *found[0].tolist()))
    assert len(set(keys)) == len(keys)


def test_same_seed_same_images(tmp_path):
    index = torch.arange(100)
    a, b = (smoke(pool_size=5).build(tmp_path, CPU).train.images(index) for _ in range(2))
    assert torch.equal(a, b)
    other = smoke(pool_size=5, seed=1).build(tmp_path, CPU).train
    assert not torch.equal(other.images(index), a)
    assert not torch.equal(other.pool_source_index, smoke(pool_size=5).build(tmp_path, CPU).train.pool_source_index)


def test_config_is_checked_and_names_its_downloads():
    text = """
    data: {name: digit_overlay, image_source: cifar10, digit_source: mnist, pool_size: 16}
    method: simclr
    eval: {linear: {targets: [digit, image_class]}}
    """
    trial = TrialConfig.model_validate(yaml.safe_load(text))
    assert trial.data.sources() == ["cifar10", "mnist"] and trial.data.train_count() == 50_000
    assert trial.data.image_size() == 32 and smoke().sources() == ["digits"]
    with pytest.raises(ValidationError, match="pool_size=2000 is more than the 1347 digits train digits"):
        smoke(pool_size=2000)
    with pytest.raises(ValidationError, match="train_examples=400 is more than the 390 sample_photos"):
        smoke(train_examples=400)


def test_tiny_trial_reports_digit_and_image_class(tmp_path):
    data = {"name": "digit_overlay", "image_source": "sample_photos", "digit_source": "digits", "pool_size": 16,
            "size": 24, "train_examples": 128, "test_examples": 64}
    trial = TrialConfig.model_validate({**TINY_BASE, "data": data, "train": {"batch_size": 64, "epochs": 1},
                                        "eval": {"linear": {"steps": 20}}})
    metrics = run_trial(trial, data_root=tmp_path, device="cpu")
    for target in ("digit", "image_class"):
        assert 0 <= metrics[f"linear_acc/{target}"] <= 100
