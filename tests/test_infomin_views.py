"""InfoMin's views with a controlled amount of shared information: patches at an offset, CMC's channel splits.

Offsets are read back from a ramp image (pixel values = their own coordinates), on which
bilinear sampling is exact, so every patch's corner, and the distance between a pair's
corners, is known to float precision.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from skimage import color
from torchvision.transforms.v2 import functional as TF

from workers.backbones import SmallCNN
from workers.cmc import CMC, ChannelSplitEncoder
from workers.config import TrialConfig
from workers.trainer import run_trial
from workers.views import PatchOffsetConfig, ViewsConfig, make_pair, make_view
from workers.views.pairs import PatchEncoder, offset_corners, read_patches

CPU = torch.device("cpu")
TINY = {
    "model": {"backbone": {"name": "small_cnn", "width": 4, "stages": 2}, "head": {"layers": 2, "dim": 8}},
    "optim": {"name": "adam", "lr": 0.002},
    "train": {"batch_size": 32, "epochs": 1},
    "eval": {"linear": {"steps": 10}, "online": {}},
}
DIGITS = {"name": "classification", "source": "digits", "size": 16, "train_examples": 64, "test_examples": 32}
PHOTOS = {"name": "digit_overlay", "image_source": "sample_photos", "digit_source": "digits",
          "train_examples": 64, "test_examples": 32}


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def ramp(batch: int, height: int, width: int) -> torch.Tensor:
    """[B, 2, H, W]: channel 0 the x of each pixel's centre (j + ½), channel 1 its y (i + ½)."""
    ys, xs = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width) + 0.5, indexing="ij")
    return torch.stack([xs, ys]).float().expand(batch, 2, height, width).contiguous()


def corners_of(patches: torch.Tensor) -> torch.Tensor:
    """Top-left corners (x, y) [B, 2] of patches cut from a ramp: pixel (0, 0) reads the corner + ½."""
    return patches[:, :, 0, 0] - 0.5


def check_read_from_ramp(patches: torch.Tensor, size: int) -> torch.Tensor:
    """Every pixel (i, j) of each patch reads its corner + (j + ½, i + ½): a size×size patch, read exactly.

    Returns the corners.
    """
    corners = corners_of(patches)
    steps = torch.arange(size, dtype=torch.float32) + 0.5
    assert torch.allclose(patches[:, 0], corners[:, :1, None] + steps.view(1, 1, size), atol=1e-4)
    assert torch.allclose(patches[:, 1], corners[:, 1:, None] + steps.view(1, size, 1), atol=1e-4)
    return corners


@pytest.mark.parametrize(("height", "width", "size", "offset"), [(20, 24, 8, 9.5), (16, 16, 6, 3.0), (16, 16, 6, 0.0)])
def test_patches_are_the_offset_apart_inside_the_image(height, width, size, offset):
    images = ramp(256, height, width)
    pair = PatchOffsetConfig(name="patch_offset", size=size, offset=offset)
    first, second = pair.cut(images, generator())
    assert first.shape == second.shape == (256, 2, size, size)
    one, two = check_read_from_ramp(first, size), check_read_from_ramp(second, size)
    distance = (two - one).norm(dim=1)
    assert torch.allclose(distance, torch.full_like(distance, offset), atol=1e-4)  # every image of the batch
    for corner in (one, two):
        assert (corner >= -1e-4).all()
        assert (corner[:, 0] + size <= width + 1e-4).all() and (corner[:, 1] + size <= height + 1e-4).all()


def test_directions_are_random_and_cover_every_quadrant():
    first, second = PatchOffsetConfig(name="patch_offset", size=8, offset=5.0).cut(ramp(512, 24, 24), generator(1))
    step = corners_of(second) - corners_of(first)
    angle = torch.atan2(step[:, 1], step[:, 0])
    quadrant = ((angle + math.pi) // (math.pi / 2)).long().clamp(max=3)
    counts = torch.bincount(quadrant, minlength=4)
    assert (counts > 512 / 4 * 0.7).all(), counts  # uniform: about 128 each
    assert len(torch.unique((angle * 100).round())) > 300  # continuous directions, not a few fixed ones


def test_long_offsets_keep_to_the_diagonals_and_the_longest_is_the_diagonal():
    room = 16 - 6  # a 6-pixel patch moves at most 10 pixels along each axis of a 16-pixel image
    first, second = PatchOffsetConfig(name="patch_offset", size=6, offset=12.0).cut(ramp(256, 16, 16), generator(2))
    step = corners_of(second) - corners_of(first)
    assert (step.abs() <= room + 1e-4).all() and torch.allclose(step.norm(dim=1), torch.tensor(12.0), atol=1e-4)
    assert (step.abs().min(dim=1).values >= math.sqrt(12.0**2 - room**2) - 1e-3).all()
    diagonal = math.sqrt(2) * room
    first, second = PatchOffsetConfig(name="patch_offset", size=6, offset=diagonal).cut(ramp(64, 16, 16), generator(3))
    step = corners_of(second) - corners_of(first)
    assert torch.allclose(step.abs(), torch.tensor(float(room)), atol=1e-3)  # corner to corner, both ways
    with pytest.raises(ValueError, match="do not fit"):
        offset_corners(4, (16, 16), 6, diagonal + 0.01, generator())


def test_whole_pixel_corners_read_the_pixels_themselves():
    images = torch.rand(2, 3, 12, 10, generator=generator(4))
    corners = torch.tensor([[3.0, 5.0], [0.0, 8.0]])  # (x, y)
    patches = read_patches(images, corners, 4)
    assert torch.allclose(patches[0], images[0, :, 5:9, 3:7], atol=1e-6)
    assert torch.allclose(patches[1], images[1, :, 8:12, 0:4], atol=1e-6)


def test_pairs_come_from_the_trials_generator():
    images = torch.rand(8, 3, 16, 16, generator=generator(5))
    views = ViewsConfig(crop=None, pair={"name": "patch_offset", "size": 8, "offset": 4})
    again = [make_pair(images, views, generator(7)) for _ in range(2)]
    assert all(torch.equal(a, b) for a, b in zip(again[0], again[1], strict=True))
    other = make_pair(images, views, generator(8))
    assert not torch.equal(again[0][0], other[0])


def test_each_patch_then_gets_the_views_transforms():
    images = ramp(64, 16, 16)
    views = ViewsConfig(crop=None, flip=True, pair={"name": "patch_offset", "size": 8, "offset": 0.0})
    corners = []
    for view in make_pair(images, views, generator(9)):
        mirrored = view[:, 0, 0, 0] > view[:, 0, 0, -1]  # a flipped ramp patch runs right to left
        assert view.shape == (64, 2, 8, 8) and 0 < int(mirrored.sum()) < 64  # flipped per image
        corners.append(check_read_from_ramp(torch.where(mirrored.view(-1, 1, 1, 1), view.flip(-1), view), 8))
    assert torch.allclose(corners[0], corners[1], atol=1e-4)  # offset 0: one patch, flipped independently


def test_without_a_pair_make_pair_draws_what_two_views_drew():
    images = torch.rand(8, 3, 16, 16, generator=generator(10))
    views = ViewsConfig(flip=True, colour={"strength": 0.5}, asymmetric=True)
    first, second = make_pair(images, views, generator(11))
    reference = generator(11)
    assert torch.equal(first, make_view(images, views, reference))
    assert torch.equal(second, make_view(images, views.second_branch(), reference))


def test_make_view_refuses_a_pair_and_defaults_leave_the_identity():
    views = ViewsConfig(pair={"name": "patch_offset", "size": 8, "offset": 2})
    with pytest.raises(ValueError, match="make_pair"):
        make_view(torch.rand(2, 3, 16, 16), views, generator())
    trial = TrialConfig.model_validate({**TINY, "data": DIGITS, "method": "simclr"})
    assert "pair" not in trial.identity().get("views", {}) and trial.views.pair is None


def test_the_encoder_reads_whole_images_resized_or_their_centre():
    torch.manual_seed(0)
    backbone = SmallCNN(3, 4, 2).eval()
    images = torch.rand(4, 3, 16, 16, generator=generator(12))
    resized = TF.resize(images, [6, 6], antialias=True)  # torchvision's resize, bilinear with antialiasing
    assert torch.allclose(PatchEncoder(backbone, 6)(images), backbone(resized), atol=1e-5)
    assert torch.allclose(PatchEncoder(backbone, 6, "centre")(images), backbone(images[..., 5:11, 5:11]))
    patches = images[..., :6, :6]
    assert torch.equal(PatchEncoder(backbone, 6)(patches), backbone(patches))  # training's patches pass as they are


def test_patch_offset_trains_and_evaluates_one_epoch_with_simclr_and_moco():
    views = {"crop": None, "pair": {"name": "patch_offset", "size": 10, "offset": 4}}
    for method in ("simclr", {"name": "moco", "queue_size": 64}):
        trial = TrialConfig.model_validate({**TINY, "data": DIGITS, "method": method, "views": views})
        metrics = run_trial(trial, device=CPU)
        assert math.isfinite(metrics["train/loss"]) and 0 <= metrics["linear_acc/class"] <= 100


@pytest.mark.parametrize(("change", "path", "message"), [
    ({"views": {"pair": {"name": "patch_offset", "size": 20, "offset": 1}}}, "views.pair.size", "does not fit"),
    ({"views": {"pair": {"name": "patch_offset", "size": 6, "offset": 14.2}}}, "views.pair.offset", "14.14"),
    ({"views": {"pair": {"name": "patch_offset", "size": 3, "offset": 1}}}, "views.pair.size", "at least 4"),
    ({"method": "supervised", "views": {"pair": {"name": "patch_offset", "size": 8, "offset": 1}}}, "views.pair",
     "supervised"),
    ({"method": {"name": "cmc"}, "views": {"pair": {"name": "patch_offset", "size": 8, "offset": 1}}}, "views.pair",
     "cmc"),
])
def test_pairs_that_cannot_work_are_refused_before_a_run(change, path, message):
    with pytest.raises(ValidationError) as caught:
        TrialConfig.model_validate({**TINY, "data": DIGITS, "method": "simclr", **change})
    error = caught.value.errors()[0]
    assert error["ctx"]["path"] == path and message in error["msg"]


def cmc_trial(**method) -> TrialConfig:
    return TrialConfig.model_validate({**TINY, "data": PHOTOS, "method": {"name": "cmc", **method},
                                       "views": {"crop": None}, "loss": {"name": "nt_xent", "temperature": 0.5,
                                                                         "negatives": "cross_view"}})


def lab_views_by_hand(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """skimage's Lab, each channel mapped by CMC's ranges (over 8-bit RGB) to [0, 1]: (L, ab)."""
    lab = color.rgb2lab(images.double().permute(0, 2, 3, 1).numpy())
    low, high = np.array([0.0, -86.183, -107.857]), np.array([100.0, 98.233, 94.478])
    scaled = torch.from_numpy((lab - low) / (high - low)).permute(0, 3, 1, 2).float()
    return scaled[:, :1], scaled[:, 1:]


def test_cmc_splits_lab_into_l_and_ab_and_concatenates_both_encoders():
    torch.manual_seed(0)
    trial = cmc_trial()
    dataset = trial.data.build(None, CPU)
    method = trial.method.build(trial, dataset)
    assert isinstance(method, CMC) and isinstance(method.encoder, ChannelSplitEncoder)
    images = dataset.test.images(torch.arange(6))
    l_view, ab_view = method.encoder.split(images)
    expected_l, expected_ab = lab_views_by_hand(images)
    assert torch.allclose(l_view, expected_l, atol=1e-5) and torch.allclose(ab_view, expected_ab, atol=1e-5)
    method.eval()
    h = method.encoder(images)
    first, second = method.branch(0)[0], method.branch(1)[0]
    assert first.layers[0].in_channels == 1 and second.layers[0].in_channels == 2
    assert method.encoder.dim == first.dim + second.dim == h.shape[1]
    assert torch.allclose(h, torch.cat([first(l_view), second(ab_view)], dim=1), atol=1e-5)


def naive_cross_view_nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> float:
    """Mean over both directions of −log softmax of each anchor's own pair among the other view's N."""
    z1, z2 = F.normalize(z1.detach().double(), dim=1), F.normalize(z2.detach().double(), dim=1)
    total = 0.0
    for anchors, candidates in ((z1, z2), (z2, z1)):
        for i in range(len(anchors)):
            scores = [math.exp(float(anchors[i] @ candidates[k]) / temperature) for k in range(len(candidates))]
            total += -math.log(scores[i] / sum(scores))
    return total / (2 * len(z1))


def test_cmc_loss_compares_each_views_own_encoder_and_head():
    torch.manual_seed(0)
    trial = cmc_trial(space="ydbdr")
    dataset = trial.data.build(None, CPU)
    method = trial.method.build(trial, dataset).eval()  # eval: batch norm as a fixed function
    images = dataset.train.images(torch.arange(8))
    loss, h = method.objective(images, {}, generator())  # views: no crop, so both views are deterministic
    y_view, dbdr_view = method.encoder.split(images)
    assert y_view.shape[1] == 1 and dbdr_view.shape[1] == 2
    (f1, g1), (f2, g2) = method.branch(0), method.branch(1)
    expected = naive_cross_view_nt_xent(g1(f1(y_view)), g2(f2(dbdr_view)), 0.5)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert torch.allclose(h, method.encoder(images), atol=1e-5)  # the online classifiers read the concatenation


@pytest.mark.parametrize("method", [{"space": "hsv"}, {"space": "lab", "first": ["a"], "second": ["L", "b"]},
                                    {"space": "ycbcr", "independent_views": True}])
def test_cmc_trains_and_evaluates_one_epoch(method):
    metrics = run_trial(cmc_trial(**method), device=CPU)
    assert math.isfinite(metrics["train/loss"])
    assert 0 <= metrics["linear_acc/digit"] <= 100 and 0 <= metrics["linear_acc/image_class"] <= 100


def test_cmc_needs_rgb_images():
    trial = TrialConfig.model_validate({**TINY, "data": DIGITS, "method": {"name": "cmc"}})
    with pytest.raises(ValueError, match="cmc converts RGB images; classification has 1 channels"):
        run_trial(trial, device=CPU)
