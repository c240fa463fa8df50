"""Colorful-Moving-MNIST: the shared factors, the frames, the position target and its linear regressor."""

from __future__ import annotations

import hashlib
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from sklearn.linear_model import Ridge
from torchvision import datasets

from workers import TrialConfig, run_trial
from workers.data.colorful_moving_mnist import FACTORS, ColorfulMovingMnistConfig, MovingDigitSplit, fold
from workers.data.sources import DatasetUnavailable, DigitImages, LabelledImages, load_images, prepare_source
from workers.linear_eval import linear_regression_error
from workers.methods import Method, SimCLR, Supervised
from workers.trainer import train
from workers.views import ViewsConfig

CPU = torch.device("cpu")
CANVAS, DIGIT, FRAMES = 20, 6, 3
EVERY_SHARED_SET = [s for n in (1, 2, 3) for s in itertools.combinations(FACTORS, n)]  # Table 4's seven rows


def made_split(shared, *, count=120, digits=None, backgrounds=None, scale=1.0, speed=2.5, seed=0) -> MovingDigitSplit:
    """A split of test-made digits and backgrounds already at their rendered sizes (nothing resized)."""
    rng = torch.Generator().manual_seed(123)
    if digits is None:
        digits = DigitImages(torch.randint(0, 256, (40, DIGIT, DIGIT), generator=rng, dtype=torch.uint8),
                             torch.arange(40) % 10)
    if backgrounds is None:
        backgrounds = LabelledImages(torch.randint(0, 256, (15, 3, CANVAS, CANVAS), generator=rng, dtype=torch.uint8),
                                     torch.arange(15) % 3)
    return MovingDigitSplit(digits, backgrounds, count, canvas=CANVAS, digit_size=DIGIT, frames=FRAMES, speed=speed,
                            shared=shared, generator=torch.Generator().manual_seed(seed), scale=scale)


def naive_frame(split: MovingDigitSplit, digit: int, background: int, corner) -> torch.Tensor:
    """One frame by slicing: 1 − (1 − b)(1 − d) over the digit's square, the background elsewhere."""
    frame = split.backgrounds.images[background].float() / 255
    d = split.digits.images[digit].float() / 255
    row, col = int(corner[0]), int(corner[1])
    region = frame[:, row : row + DIGIT, col : col + DIGIT]
    frame[:, row : row + DIGIT, col : col + DIGIT] = 1 - (1 - region) * (1 - d)
    return frame


@pytest.mark.parametrize("shared", EVERY_SHARED_SET, ids="+".join)
def test_the_second_view_shares_exactly_the_factors_asked_for(shared):
    split = made_split(shared)
    last = split.corners[:, FRAMES]
    same = {
        "digit": split.second_digit == split.digit,
        "background": split.second_background == split.background,
        "position": (split.second_corner == last).all(dim=1),
    }
    for factor in FACTORS:  # for every example of the split: equal when shared, different when not
        assert same[factor].all() if factor in shared else (~same[factor]).all(), factor
    index = torch.arange(len(split))
    first, second, frame = split.images(index), split.second_view(index), split.second_frame(index)
    assert first.shape == second.shape == (len(split), 3 * FRAMES, CANVAS, CANVAS)
    assert torch.equal(second, frame.repeat(1, FRAMES, 1, 1))  # a still video of v₂'s frame
    for i in range(0, len(split), 7):
        for k in range(FRAMES):
            expected = naive_frame(split, split.digit[i], split.background[i], split.corners[i, k])
            assert torch.allclose(first[i, 3 * k : 3 * k + 3], expected, atol=1e-6)
        expected = naive_frame(split, split.second_digit[i], split.second_background[i], split.second_corner[i])
        assert torch.allclose(frame[i], expected, atol=1e-6)


def test_sharing_everything_makes_the_second_view_the_next_frame():
    split = made_split(FACTORS)
    frame = split.second_frame(torch.arange(len(split)))
    for i in range(0, len(split), 11):
        next_frame = naive_frame(split, split.digit[i], split.background[i], split.corners[i, FRAMES])
        assert torch.allclose(frame[i], next_frame, atol=1e-6)


def test_the_videos_and_their_labels_do_not_depend_on_what_is_shared():
    splits = [made_split(shared) for shared in EVERY_SHARED_SET]
    index = torch.arange(len(splits[0]))
    for split in splits[1:]:
        assert torch.equal(split.images(index), splits[0].images(index))
        for target in ("digit", "background", "position"):
            assert torch.equal(split.labels[target], splits[0].labels[target])
    assert not torch.equal(made_split(("digit",), seed=1).corners, splits[0].corners)


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_the_position_target_is_the_centre_of_the_digit_in_the_next_frame(scale):
    # White squares on black: the digit is exactly the pixels that are not black.
    digits = DigitImages(torch.full((12, DIGIT, DIGIT), 255, dtype=torch.uint8), torch.arange(12) % 10)
    backgrounds = LabelledImages(torch.zeros(5, 3, CANVAS, CANVAS, dtype=torch.uint8), torch.arange(5) % 2)
    split = made_split(("position",), digits=digits, backgrounds=backgrounds, scale=scale)
    frame = split.second_frame(torch.arange(len(split)))  # drawn where the digit is in x_t
    position = split.labels["position"]
    assert position.dtype == torch.float32 and position.shape == (len(split), 2)
    for i in range(len(split)):
        rows, cols = frame[i].amax(0).nonzero(as_tuple=True)
        assert rows.max() - rows.min() + 1 == DIGIT and cols.max() - cols.min() + 1 == DIGIT
        # Bounding box [min, max + 1) in rendered pixels, its centre in the paper's pixels, as (x, y).
        centre = ((cols.min().item() + cols.max().item() + 1) / 2 / scale,
                  (rows.min().item() + rows.max().item() + 1) / 2 / scale)
        assert position[i].tolist() == pytest.approx(centre, abs=1e-5)


def test_the_digit_bounces_off_the_borders_like_a_step_by_step_simulation():
    travel, speed = 14.0, 3.7
    rng = np.random.default_rng(0)
    for _ in range(50):
        start, angle = rng.uniform(0, travel, 2), rng.uniform(0, 2 * math.pi)
        velocity = speed * np.array([math.sin(angle), math.cos(angle)])
        position, moving = start.copy(), velocity.copy()
        for step in range(1, 25):
            position = position + moving
            for axis in range(2):  # reflect at 0 and at travel
                if position[axis] < 0:
                    position[axis], moving[axis] = -position[axis], -moving[axis]
                elif position[axis] > travel:
                    position[axis], moving[axis] = 2 * travel - position[axis], -moving[axis]
            folded = fold(torch.tensor(start + step * velocity, dtype=torch.float64), travel)
            assert folded.tolist() == pytest.approx(position.tolist(), abs=1e-9)


def test_the_regressor_recovers_a_linear_map_of_the_position():
    generator = torch.Generator().manual_seed(0)
    position = torch.rand(600, 2, generator=generator) * 40
    mixing = torch.randn(2, 8, generator=generator)
    features = position @ mixing + 5 + 1e-3 * torch.randn(600, 8, generator=generator)
    error = linear_regression_error(features[:400], {"position": position[:400]}, features[400:],
                                    {"position": position[400:]}, weight_decay=0.0)["position"]
    assert error < 0.01


def test_the_regression_error_is_the_mean_euclidean_distance():
    # Train features are the position itself and λ = 0: the fitted map is the identity, so each
    # test prediction is the test feature, and each error is the offset given to its target.
    train = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0], [5.0, 3.0]])
    test = torch.tensor([[1.0, 2.0], [4.0, 4.0]])
    truth = test + torch.tensor([[3.0, 4.0], [-6.0, 8.0]])  # 5 and 10 pixels away
    error = linear_regression_error(train, {"position": train}, test, {"position": truth}, weight_decay=0.0)
    assert error["position"] == pytest.approx(7.5, abs=1e-9)


def test_the_regressor_with_weight_decay_is_ridge_regression():
    generator = torch.Generator().manual_seed(1)
    x, y = torch.randn(300, 6, generator=generator), torch.randn(300, 2, generator=generator) * 9
    weight_decay = 0.3
    ours = linear_regression_error(x[:200], {"t": y[:200]}, x[200:], {"t": y[200:]}, weight_decay=weight_decay)["t"]
    # (1/2n)‖XW + b − Y‖² + λ/2 ‖W‖² on standardised features ⇔ scikit-learn's Ridge with α = nλ.
    mean, std = x[:200].mean(0), x[:200].std(0, correction=0)
    ridge = Ridge(alpha=200 * weight_decay).fit(((x[:200] - mean) / std).numpy(), y[:200].numpy())
    predicted = ridge.predict(((x[200:] - mean) / std).numpy())
    expected = np.linalg.norm(predicted - y[200:].numpy(), axis=1).mean()
    assert ours == pytest.approx(expected, rel=1e-5)


def smoke(**changes) -> dict:
    data = {"name": "colorful_moving_mnist", "source": "digits", "background": "sample_photos", "canvas": 24,
            "digit_size": 10, "train_examples": 128, "test_examples": 64, **changes}
    return {
        "data": data,
        "model": {"backbone": {"name": "small_cnn", "width": 4, "stages": 2}, "head": {"layers": 2, "dim": 8}},
        "method": "simclr",
        "views": {"crop": None},
        "optim": {"name": "adam", "lr": 0.002},
        "train": {"batch_size": 32, "epochs": 1},
        "eval": {"linear": {"steps": 10}},
    }


def test_config_defaults_sources_and_checks():
    paper = ColorfulMovingMnistConfig(name="colorful_moving_mnist")
    assert (paper.canvas, paper.digit_size, paper.frames, paper.shared) == (64, 28, 3, FACTORS)
    assert paper.sources() == ["mnist", "stl10"] and paper.train_count() == 60_000
    assert ColorfulMovingMnistConfig.model_validate(smoke()["data"]).sources() == []
    swapped = TrialConfig.model_validate(smoke(shared=["background", "digit"]))
    assert swapped.identity() == TrialConfig.model_validate(smoke(shared=["digit", "background"])).identity()
    assert swapped.data.shared == ("digit", "background")
    for bad in ({"shared": []}, {"shared": ["digit", "digit"]}, {"shared": ["colour"]}, {"digit_size": 24}):
        with pytest.raises(ValidationError):
            ColorfulMovingMnistConfig.model_validate(smoke(**bad)["data"])
    TrialConfig.model_validate(smoke() | {"eval": {"linear": {"targets": ["position"]}}})
    with pytest.raises(ValidationError, match="regression target"):
        TrialConfig.model_validate(smoke() | {"eval": {"knn": {"targets": ["position"]}}})


def test_dataset_built_from_the_config(tmp_path):
    dataset = ColorfulMovingMnistConfig.model_validate(smoke(shared=["digit"])["data"]).build(tmp_path, CPU)
    assert (dataset.channels, dataset.image_size) == (9, 24)
    assert dataset.num_classes == {"digit": 10, "background": 2} and dataset.regression == {"position": 2}
    train = dataset.train
    assert (len(train), len(dataset.test)) == (128, 64)
    assert train.labels["digit"].dtype == torch.int64 and train.labels["position"].shape == (128, 2)
    assert (train.second_digit == train.digit).all() and (train.second_background != train.background).all()
    images = train.images(torch.arange(8))
    assert images.shape == (8, 9, 24, 24) and images.min() >= 0 and images.max() <= 1
    # Position in [digit_size / 2, canvas − digit_size / 2] on both axes.
    assert train.labels["position"].min() >= 5 and train.labels["position"].max() <= 19


def test_simclr_contrasts_the_sequence_with_the_given_second_view():
    torch.manual_seed(0)
    encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6 * 4 * 4, 5))
    encoder.dim = 5
    head = torch.nn.Linear(5, 3)
    loss = torch.nn.Module()
    loss.forward = lambda z1, z2, generator=None: (z1 - z2).pow(2).sum()  # a stand-in with a known value
    method = SimCLR(encoder, head, loss, ViewsConfig(crop=None))
    first, second = torch.rand(4, 6, 4, 4), torch.rand(4, 6, 4, 4)
    value, h = method.objective(first, {"second_view": second}, torch.Generator())
    expected = (head(encoder(first)) - head(encoder(second))).pow(2).sum()
    assert torch.allclose(value, expected) and torch.allclose(h, encoder(first))


class Recording(Method):
    """Records what each training step is handed; its loss is any differentiable function of h."""

    def __init__(self) -> None:
        encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * FRAMES * CANVAS * CANVAS, 2))
        encoder.dim = 2
        super().__init__(encoder)
        self.seen = []

    def objective(self, images, labels, generator):
        self.seen.append((images, labels["second_view"], labels["index"]))
        h = self.encoder(images)
        return h.pow(2).mean(), h


def test_the_trainer_hands_each_batch_its_second_view():
    split = made_split(("digit",), count=40)
    config = TrialConfig.model_validate(smoke() | {"train": {"batch_size": 8, "epochs": 2}})
    method = Recording()
    train(method, split, config, torch.Generator().manual_seed(0))
    assert len(method.seen) == 10
    for images, second, index in method.seen:
        assert torch.equal(images, split.images(index)) and torch.equal(second, split.second_view(index))


def test_supervised_fits_classes_by_cross_entropy_and_the_position_by_standardised_squares():
    torch.manual_seed(0)
    encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 4))
    encoder.dim = 4
    train_position = torch.tensor([[2.0, 4.0], [6.0, 8.0], [4.0, 0.0]])
    method = Supervised(encoder, {"digit": 10}, ViewsConfig(crop=None), regression={"position": train_position})
    images = torch.rand(5, 3, 2, 2)
    labels = {"digit": torch.tensor([1, 2, 3, 4, 5]), "position": torch.rand(5, 2) * 8}
    value, h = method.objective(images, labels, torch.Generator())
    mean, std = train_position.mean(0), train_position.std(0)  # (4, 4) and (2, 4)
    standardised = (labels["position"] - mean) / std
    squares = (method.regressors["position"](h) - standardised).pow(2).mean()
    expected = (F.cross_entropy(method.classifiers["digit"](h), labels["digit"]) + squares) / 2
    assert torch.allclose(value, expected)


@pytest.mark.parametrize("method", ["simclr", "supervised"])
def test_one_epoch_at_smoke_size(tmp_path, method):
    metrics = run_trial(TrialConfig.model_validate(smoke(shared=["digit", "position"]) | {"method": method}),
                        data_root=tmp_path, device="cpu")
    for name in ("linear_acc/digit", "linear_acc/background", "linear_error/position", "train/loss"):
        assert math.isfinite(metrics[name]), name
    assert 0 <= metrics["linear_acc/digit"] <= 100 and 0 < metrics["linear_error/position"] < 24
    assert "linear_acc/position" not in metrics


def test_stl10_reads_torchvision_files_and_names_its_folder_offline(tmp_path, monkeypatch):
    closed = "http://127.0.0.1:9/stl10_binary.tar.gz"  # a closed local port: any download fails at once
    monkeypatch.setattr(datasets.STL10, "url", closed)
    with pytest.raises(DatasetUnavailable) as caught:
        prepare_source("stl10", tmp_path)
    message = str(caught.value)
    assert message.startswith(f"stl10 is not under {tmp_path / 'stl10_binary'}") and "train_X.bin" in message
    assert "--data-root" in message and "\n" not in message
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    rng = np.random.default_rng(0)
    images = {"train": rng.integers(0, 256, (2, 3, 96, 96), dtype=np.uint8),
              "test": rng.integers(0, 256, (1, 3, 96, 96), dtype=np.uint8)}
    labels = {"train": np.array([1, 10], dtype=np.uint8), "test": np.array([4], dtype=np.uint8)}  # 1..10 on disk
    lists = {}
    for split in ("train", "test"):
        # Stored as published: each channel column-major (its transpose, row-major).
        (folder / f"{split}_X.bin").write_bytes(np.ascontiguousarray(images[split].transpose(0, 1, 3, 2)).tobytes())
        (folder / f"{split}_y.bin").write_bytes(labels[split].tobytes())
        lists[split] = [[f"{split}_{part}.bin", md5(folder / f"{split}_{part}.bin")] for part in ("X", "y")]
    (folder / "unlabeled_X.bin").write_bytes(b"")
    unlabelled = ["unlabeled_X.bin", md5(folder / "unlabeled_X.bin")]
    monkeypatch.setattr(datasets.STL10, "train_list", [*lists["train"], unlabelled])
    monkeypatch.setattr(datasets.STL10, "test_list", lists["test"])
    train, test = load_images("stl10", "train", tmp_path), load_images("stl10", "test", tmp_path)
    assert torch.equal(train.images, torch.from_numpy(images["train"])) and train.labels.tolist() == [0, 9]
    assert torch.equal(test.images, torch.from_numpy(images["test"])) and test.labels.tolist() == [3]


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()
