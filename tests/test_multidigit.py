"""MultiDigits (Table 3): N digits per training canvas, in grid slots or at random, probed one digit alone."""

from __future__ import annotations

import pytest
import torch
import yaml
from conftest import TINY_BASE
from pydantic import ValidationError

from workers import TrialConfig, run_trial
from workers.data.multidigit import MultiDigitConfig, grid_side
from workers.data.sources import DigitImages

CPU = torch.device("cpu")


def solid_squares(side: int = 4) -> DigitImages:
    """Ten 'digits', each a solid square whose grey level (label + 1)·20 names its class."""
    labels = torch.arange(10)
    return DigitImages(((labels + 1) * 20).to(torch.uint8)[:, None, None].expand(10, side, side).clone(), labels)


def build(monkeypatch, source: DigitImages, **fields):
    """The dataset built from ``source`` in place of the digits it names."""
    monkeypatch.setattr("workers.data.canvas.load_digit_images", lambda *args: source)
    config = MultiDigitConfig(name="multidigit", source="digits", **fields)
    return config.build("unused", CPU)


def by_hand(split, i: int, shown: int) -> torch.Tensor:
    """Canvas ``i`` composed from the layout one square at a time: values add, then saturate."""
    canvas = torch.zeros(split.canvas, split.canvas)
    size = split.digit_size
    for k in range(shown):
        value = (split.digits.labels[split.digit_index[i, k]].item() + 1) * 20 / 255
        r, c = split.corners[i, k].tolist()
        canvas[r : r + size, c : c + size] += value
    return canvas.clamp(max=1)


@pytest.mark.parametrize(("digits", "canvas"), [(4, 16), (5, 16), (9, 12), (16, 16)])
def test_grid_puts_each_digit_inside_its_own_slot(monkeypatch, digits, canvas):
    dataset = build(monkeypatch, solid_squares(), digits=digits, placement="grid", canvas=canvas, digit_size=4,
                    train_examples=40, test_examples=5)
    split = dataset.train
    side = grid_side(digits)
    slot = canvas // side
    images = split.images(torch.arange(40))
    assert images.shape == (40, 1, canvas, canvas)
    for i in range(40):
        corners = split.corners[i]
        slots = corners // slot  # the slot each digit's top-left pixel is in
        assert len({tuple(s) for s in slots.tolist()}) == digits  # one digit a slot
        assert (slots < side).all()
        assert ((corners + 4) <= (slots + 1) * slot).all()  # and the whole digit inside it
        assert torch.allclose(images[i, 0], by_hand(split, i, digits), atol=1e-6)
        # No overlap: every lit pixel holds one digit's own value, never a sum.
        assert (images[i, 0] > 0).sum() == digits * 16


def test_sixteen_digits_fill_the_papers_grid_exactly(monkeypatch):
    # The paper's sizes: 28-pixel digits, 16 on a 112 canvas: a 4×4 grid with no pixel to spare.
    digits = solid_squares(28)
    split = build(monkeypatch, digits, digits=16, placement="grid", train_examples=6, test_examples=2).train
    origins = {(r, c) for r in range(0, 112, 28) for c in range(0, 112, 28)}
    for i in range(6):
        assert {tuple(corner) for corner in split.corners[i].tolist()} == origins
    assert (split.images(torch.arange(6)) > 0).all()
    # At render_scale 1/4 the grid still fits (slots of 7 rendered pixels for 7-pixel digits).
    small = MultiDigitConfig(name="multidigit", digits=16, placement="grid", render_scale=0.25)
    assert (small.image_size(), small.pixels(small.digit_size)) == (28, 7)
    with pytest.raises(ValidationError, match=r"16 digits in a 4×4 grid leave slots of 25 rendered pixels"):
        MultiDigitConfig(name="multidigit", digits=16, placement="grid", canvas=100)
    MultiDigitConfig(name="multidigit", digits=16, placement="random", canvas=100)  # random has no slots


def test_random_placement_overlaps_add_and_saturate(monkeypatch):
    dataset = build(monkeypatch, solid_squares(), digits=8, placement="random", canvas=12, digit_size=4,
                    train_examples=30, test_examples=5)
    split = dataset.train
    images = split.images(torch.arange(30))
    for i in range(30):
        assert torch.allclose(images[i, 0], by_hand(split, i, 8), atol=1e-6)
    assert (split.corners >= 0).all() and (split.corners <= 12 - 4).all()
    assert images.max() == 1.0  # eight squares on a 12×12 canvas: some overlaps saturate


@pytest.mark.parametrize("placement", ["random", "grid"])
def test_probe_canvas_holds_only_the_designated_digit(monkeypatch, placement):
    dataset = build(monkeypatch, solid_squares(), digits=4, placement=placement, canvas=16, digit_size=4,
                    train_examples=30, test_examples=10)
    for split in (dataset.train, dataset.test):
        probe = split.probed_for("digit")
        index = torch.arange(len(split))
        alone = probe.images(index)
        assert probe.labels is split.labels
        assert torch.equal(split.labels["digit"], split.digits.labels[split.digit_index[:, 0]])
        for i in range(len(split)):
            assert (alone[i, 0] > 0).sum() == 16  # exactly one 4×4 digit
            r, c = split.corners[i, 0].tolist()
            value = (split.labels["digit"][i].item() + 1) * 20 / 255  # the square's level is its label
            assert torch.allclose(alone[i, 0, r : r + 4, c : c + 4], torch.full((4, 4), value))
        assert split.images(index).gt(0).sum() > alone.gt(0).sum()  # training canvases keep all four
    # Every source digit is a designated digit once before any repeats.
    assert sorted(dataset.train.digit_index[:10, 0].tolist()) == list(range(10))


def test_one_digit_is_its_own_probe(tmp_path):
    config = MultiDigitConfig(name="multidigit", source="digits", digits=1, canvas=32, digit_size=8,
                              train_examples=64, test_examples=16)
    for placement in ("random", "grid"):
        split = config.model_copy(update={"placement": placement}).build(tmp_path, CPU).train
        assert split.probed_for("digit") is split
        images = split.images(torch.arange(64))
        assert images.shape == (64, 1, 32, 32) and (images > 0).flatten(1).sum(1).le(64).all()


def test_same_seed_same_canvases(tmp_path):
    config = MultiDigitConfig(name="multidigit", source="digits", digits=6, canvas=32, digit_size=8,
                              train_examples=50, test_examples=20)
    index = torch.arange(50)
    a, b = (config.build(tmp_path, CPU).train.images(index) for _ in range(2))
    assert torch.equal(a, b)
    other = config.model_copy(update={"seed": 1}).build(tmp_path, CPU).train.images(index)
    assert not torch.equal(a, other)


def test_config_as_a_study_writes_it():
    text = """
    data: {name: multidigit, source: mnist, digits: 16, placement: grid, canvas: 112, digit_size: 28}
    method: simclr
    eval: {linear: {targets: [digit]}}
    """
    trial = TrialConfig.model_validate(yaml.safe_load(text))
    assert trial.data.image_size() == 112 and trial.data.train_count() == 60_000
    assert trial.data.sources() == ["mnist"]
    with pytest.raises(ValidationError, match="less than or equal to 16"):
        TrialConfig.model_validate({**yaml.safe_load(text), "data": {"name": "multidigit", "digits": 17}})
    with pytest.raises(ValidationError, match="'first_digit' is not a target of multidigit"):
        TrialConfig.model_validate({**yaml.safe_load(text), "eval": {"linear": {"targets": ["first_digit"]}}})


def test_tiny_trial_reports_the_digit_probe(tmp_path):
    data = {"name": "multidigit", "source": "digits", "digits": 4, "placement": "grid", "canvas": 32,
            "digit_size": 8, "train_examples": 128, "test_examples": 64}
    trial = TrialConfig.model_validate({**TINY_BASE, "data": data, "train": {"batch_size": 64, "epochs": 1},
                                        "eval": {"linear": {"steps": 20}}})
    metrics = run_trial(trial, data_root=tmp_path, device="cpu")
    assert 0 <= metrics["linear_acc/digit"] <= 100
    assert "train/loss" in metrics


def test_shared_bits_wrap_multidigit_and_keep_its_probe(tmp_path):
    from workers.data.shared_bits import SharedBitsConfig

    base = {"name": "multidigit", "source": "digits", "digits": 3, "canvas": 24, "digit_size": 8,
            "train_examples": 20, "test_examples": 10}
    split = SharedBitsConfig.model_validate({"name": "shared_bits", "base": base, "bits": 2}).build(tmp_path, CPU).train
    index = torch.arange(20)
    probe = split.probed_for("digit")
    assert torch.equal(probe.images(index)[:, :1], split.base.probed_for("digit").images(index))
    assert torch.equal(probe.images(index)[:, 1:], split.images(index)[:, 1:])
