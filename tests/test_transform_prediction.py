"""Transformation prediction (SimCLR Table 3): the labelled sets, the MLP, and the measurement inside a trial."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_BASE

from workers import TrialConfig, run_trial
from workers.measures import MEASUREMENT_SEED_OFFSET, TransformPredictionConfig, train_mlp_classifier
from workers.measures.transform_prediction import TRANSFORM_METRICS, labelled_images, task_variants
from workers.trainer import TRIAL_METRICS

SETTINGS = TransformPredictionConfig()


def images(channels: int = 3, n: int = 5, side: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, channels, side, side, generator=torch.Generator().manual_seed(seed))


def labelled(task: str, x: torch.Tensor, fixed_channels: int = 0, seed: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    variants = task_variants(task, SETTINGS)
    return labelled_images(x, variants, torch.Generator().manual_seed(seed), fixed_channels)


def test_rotation_classes_are_torch_rot90_of_the_originals():
    x = images()
    made, labels = labelled("rotation", x)
    assert labels.tolist() == [k for k in range(4) for _ in range(5)]
    for k in range(4):
        assert torch.equal(made[labels == k], torch.rot90(x, k, dims=(2, 3)))  # counter-clockwise quarter turns


def test_colour_classes_are_the_originals_and_their_luma_in_every_channel():
    x = images()
    made, labels = labelled("colour", x)
    assert labels.tolist() == [0] * 5 + [1] * 5
    assert torch.equal(made[labels == 0], x)
    gray = made[labels == 1]
    assert torch.equal(gray[:, 0], gray[:, 1]) and torch.equal(gray[:, 1], gray[:, 2])
    luma = 0.2989 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]  # ITU-R 601-2, torchvision's weights
    torch.testing.assert_close(gray[:, 0], luma)


def test_colour_needs_rgb_images():
    with pytest.raises(ValueError, match="task colour needs RGB images, got 1 channel"):
        labelled("colour", images(channels=1))


def test_corrupted_class_is_the_original_plus_clipped_gaussian_noise():
    x = images(n=64, side=16)
    made, labels = labelled("corruption", x, seed=11)
    assert torch.equal(made[labels == 0], x)
    # The generator's first draw is one standard normal per pixel: x + 0.1 ε, clipped to [0, 1].
    epsilon = torch.randn(x.shape, generator=torch.Generator().manual_seed(11))
    torch.testing.assert_close(made[labels == 1], (x + 0.1 * epsilon).clamp(0, 1))
    inside = (made[labels == 1] > 0) & (made[labels == 1] < 1)
    difference = (made[labels == 1] - x)[inside]
    assert difference.std().item() == pytest.approx(0.1, rel=0.05)
    assert abs(difference.mean().item()) < 0.01


def test_sobel_class_is_the_gradient_magnitude_of_the_gray_image():
    x = images(n=3)
    made, labels = labelled("sobel", x)
    assert torch.equal(made[labels == 0], x)
    gray = (0.2989 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)
    padded = F.pad(gray, (1, 1, 1, 1), mode="replicate")
    kernel_x = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]) / 8
    gx = F.conv2d(padded, kernel_x.view(1, 1, 3, 3))
    gy = F.conv2d(padded, kernel_x.T.reshape(1, 1, 3, 3))
    expected = (gx**2 + gy**2).sqrt().expand(-1, 3, -1, -1)
    torch.testing.assert_close(made[labels == 1], expected)


def test_fixed_channels_stay_as_they_are():
    x = images(channels=4)
    made, labels = labelled("rotation", x, fixed_channels=1)
    for k in range(4):
        assert torch.equal(made[labels == k][:, 3], x[:, 3])
        assert torch.equal(made[labels == k][:, :3], torch.rot90(x[:, :3], k, dims=(2, 3)))


def test_tasks_are_named_once_each():
    with pytest.raises(ValueError, match="each task once"):
        TransformPredictionConfig(tasks=["sobel", "sobel"])
    with pytest.raises(ValueError):
        TransformPredictionConfig(tasks=["jpeg"])


def split_features(x: torch.Tensor, y: torch.Tensor, n_train: int):
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def test_the_mlp_separates_xor_which_no_linear_classifier_can():
    """Label = sign(x₀)·sign(x₁) > 0 (XOR of the signs): a linear classifier is at chance, one hidden layer is not."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1200, 6, generator=generator)
    y = ((x[:, 0] > 0) == (x[:, 1] > 0)).long()
    accuracy = train_mlp_classifier(*split_features(x, y, 1000), 2, torch.Generator().manual_seed(1),
                                    hidden=64, steps=400, batch_size=128, lr=1e-2)
    assert accuracy >= 95


def test_the_mlp_is_perfect_on_separable_features_and_at_chance_on_independent_ones():
    generator = torch.Generator().manual_seed(0)
    y = torch.arange(4).repeat(500)
    separable = F.one_hot(y, 4).float() * 4 + torch.randn(2000, 4, generator=generator)
    separable = torch.cat([separable, torch.randn(2000, 12, generator=generator)], dim=1)
    accuracy = train_mlp_classifier(*split_features(separable, y, 1000), 4, torch.Generator().manual_seed(1),
                                    hidden=32, steps=300)
    assert accuracy >= 99
    independent = torch.randn(4000, 16, generator=generator)
    labels = torch.randint(4, (4000,), generator=generator)
    accuracy = train_mlp_classifier(*split_features(independent, labels, 2000), 4, torch.Generator().manual_seed(1),
                                    hidden=32, steps=300)
    assert 25 - 4 < accuracy < 25 + 4  # chance 25 %; the standard error on 2000 test examples is about 1 %


OVERLAY = {"name": "digit_overlay", "image_source": "sample_photos", "digit_source": "digits", "pool_size": 16,
           "size": 16, "train_examples": 128, "test_examples": 64}
MEASURE = {"tasks": ["colour", "rotation", "corruption", "sobel"], "hidden": 16, "steps": 30, "examples": 48}


def overlay_trial(measure: dict | None, **changes) -> TrialConfig:
    base = {**TINY_BASE, "data": OVERLAY, "eval": {"linear": None}, "train": {"batch_size": 64, "epochs": 1}}
    if measure is not None:
        base["eval"] = {"linear": None, "transform_prediction": measure}
    return TrialConfig.model_validate({**base, **changes})


def test_a_trial_logs_every_task_beside_chance_and_trains_as_without(tmp_path):
    metrics = run_trial(overlay_trial(MEASURE), data_root=tmp_path, device="cpu")
    plain = run_trial(overlay_trial(None), data_root=tmp_path, device="cpu")
    assert metrics["train/loss"] == plain["train/loss"]  # its own generator: training is unchanged
    chance = {"colour": 50, "rotation": 25, "corruption": 50, "sobel": 50}
    for task, level in chance.items():
        assert metrics[f"transform_acc/{task}/chance"] == level
        for space in ("h", "z"):
            assert 0 <= metrics[f"transform_acc/{task}/{space}"] <= 100
    logged = {name for name in metrics if name.startswith("transform_acc/")}
    assert len(logged) == 12 and logged <= set(TRANSFORM_METRICS) <= set(TRIAL_METRICS)


def test_a_method_without_a_head_gets_h_only_and_the_digits_need_no_colour(tmp_path):
    trial = TrialConfig.model_validate(
        {**TINY_BASE, "method": "random_init",
         "eval": {"linear": None, "transform_prediction": {**MEASURE, "tasks": ["rotation", "sobel"]}}}
    )
    metrics = run_trial(trial, data_root=tmp_path, device="cpu")
    assert set(metrics) == {f"transform_acc/{t}/{c}" for t in ("rotation", "sobel") for c in ("h", "chance")}


def test_the_rotation_accuracy_re_derived_from_the_measurements_own_generator(tmp_path):
    """Which images (train split, then test split) and the MLP's draws: seed + MEASUREMENT_SEED_OFFSET."""
    trial = overlay_trial({**MEASURE, "tasks": ["rotation"]}, method="random_init")
    metrics = run_trial(trial, data_root=tmp_path, device="cpu")

    torch.manual_seed(trial.seed)
    dataset = trial.data.build(tmp_path, torch.device("cpu"))
    encoder = trial.method.build(trial, dataset).encoder.eval()
    generator = torch.Generator().manual_seed(trial.seed + MEASUREMENT_SEED_OFFSET)
    sets = []
    for split in (dataset.train, dataset.test):
        index = torch.randperm(len(split), generator=generator)[:48].sort().values
        x = split.images(index)
        with torch.no_grad():
            h = torch.cat([encoder(torch.rot90(x, k, dims=(2, 3))) for k in range(4)])
        sets += [h, torch.arange(4).repeat_interleave(48)]
    expected = train_mlp_classifier(*sets, 4, generator, hidden=16, steps=30)
    assert metrics["transform_acc/rotation/h"] == expected


def test_default_leaves_every_identity_as_it_was():
    plain = TrialConfig.model_validate(TINY_BASE)
    off = TrialConfig.model_validate({**TINY_BASE, "eval": {**TINY_BASE["eval"], "transform_prediction": None}})
    assert off.identity() == plain.identity()
    assert "transform_prediction" not in plain.identity()["eval"]
