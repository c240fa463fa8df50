"""SVHN and CIFAR-100 through torchvision: tiny files in torchvision's format, and the offline error."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from pydantic import ValidationError
from torchvision import datasets

from workers.data.classification import ClassificationConfig
from workers.data.sources import DatasetUnavailable, load_images, prepare_source

CPU = torch.device("cpu")
CLOSED = "http://127.0.0.1:9/"  # a closed local port: any download attempt fails at once, as offline


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def offline(monkeypatch) -> None:
    """Every SVHN and CIFAR-100 URL pointed at the closed port (checksums as published)."""
    monkeypatch.setattr(datasets.CIFAR100, "url", CLOSED + "cifar-100-python.tar.gz")
    svhn = {split: [CLOSED + name, name, digest] for split, (_, name, digest) in datasets.SVHN.split_list.items()}
    monkeypatch.setattr(datasets.SVHN, "split_list", svhn)


@pytest.mark.parametrize(("source", "where"), [("svhn", "train_32x32.mat"), ("cifar100", "cifar-100-python")])
def test_missing_and_offline_is_one_line_naming_the_folder(tmp_path, monkeypatch, source, where):
    offline(monkeypatch)
    with pytest.raises(DatasetUnavailable) as caught:
        prepare_source(source, tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{source} is not under {tmp_path}") and where in message
    assert "--data-root" in message and "\n" not in message
    with pytest.raises(DatasetUnavailable):
        ClassificationConfig(name="classification", source=source).build(tmp_path, CPU)


def write_svhn(root: Path, split: str, count: int, monkeypatch, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A .mat as published: X uint8 [32, 32, 3, N], y [N, 1] with the digit 0 labelled 10."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (32, 32, 3, count), dtype=np.uint8)
    digits = rng.integers(1, 11, (count, 1)).astype(np.uint8)
    digits[0, 0] = 10
    name = f"{split}_32x32.mat"
    scipy.io.savemat(root / name, {"X": pixels, "y": digits})
    monkeypatch.setitem(datasets.SVHN.split_list, split, [CLOSED + name, name, md5(root / name)])
    return pixels, digits


def test_svhn_reads_torchvision_files_channels_first_with_zero_as_0(tmp_path, monkeypatch):
    offline(monkeypatch)
    pixels, digits = write_svhn(tmp_path, "train", 7, monkeypatch, seed=0)
    write_svhn(tmp_path, "test", 3, monkeypatch, seed=1)
    train = load_images("svhn", "train", tmp_path)
    assert train.images.shape == (7, 3, 32, 32) and train.images.dtype == torch.uint8
    for n in range(7):  # image n is X[:, :, :, n], rows × columns × RGB, put channels first
        assert torch.equal(train.images[n], torch.from_numpy(pixels[:, :, :, n]).permute(2, 0, 1))
    assert train.labels.tolist() == [0 if d == 10 else int(d) for d in digits[:, 0]] and train.labels[0] == 0
    dataset = ClassificationConfig(name="classification", source="svhn").build(tmp_path, CPU)
    assert (len(dataset.train), len(dataset.test), dataset.channels, dataset.image_size) == (7, 3, 3, 32)
    assert dataset.num_classes == {"class": 10}
    assert torch.equal(dataset.train.images(torch.tensor([2])), train.images[2:3].float() / 255)


def write_cifar100(root: Path, monkeypatch) -> dict[str, dict]:
    """The pickled batches as published: data uint8 [N, 3072] (1024 red, green, blue), fine_labels."""
    folder = root / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(2)
    batches, checksums = {}, {}
    for name, count in (("train", 6), ("test", 4)):
        batches[name] = {"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
                         "fine_labels": rng.integers(0, 100, count).tolist(), "coarse_labels": [0] * count}
    names = {"meta": {"fine_label_names": [f"class{i}" for i in range(100)], "coarse_label_names": ["all"]}}
    for name, content in {**batches, **names}.items():
        (folder / name).write_bytes(pickle.dumps(content))
        checksums[name] = md5(folder / name)
    monkeypatch.setattr(datasets.CIFAR100, "train_list", [["train", checksums["train"]]])
    monkeypatch.setattr(datasets.CIFAR100, "test_list", [["test", checksums["test"]]])
    monkeypatch.setattr(datasets.CIFAR100, "meta", {**datasets.CIFAR100.meta, "md5": checksums["meta"]})
    return batches


def test_cifar100_reads_torchvision_files_with_its_100_fine_classes(tmp_path, monkeypatch):
    offline(monkeypatch)
    batches = write_cifar100(tmp_path, monkeypatch)
    test = load_images("cifar100", "test", tmp_path)
    assert test.images.shape == (4, 3, 32, 32) and test.images.dtype == torch.uint8
    for n in range(4):  # the published layout, row by row: red plane, green plane, blue plane
        assert torch.equal(test.images[n].reshape(-1), torch.from_numpy(batches["test"]["data"][n]))
    assert test.labels.tolist() == batches["test"]["fine_labels"]
    dataset = ClassificationConfig(name="classification", source="cifar100", test_examples=2).build(tmp_path, CPU)
    assert dataset.num_classes == {"class": 100} and (len(dataset.train), len(dataset.test)) == (6, 2)
    assert dataset.train.labels["class"].tolist() == batches["train"]["fine_labels"]
    with pytest.raises(ValidationError, match="more than the 50000 cifar100 images"):
        ClassificationConfig(name="classification", source="cifar100", train_examples=50_001)
    svhn = ClassificationConfig(name="classification", source="svhn", size=16)
    assert (svhn.train_count(), svhn.image_size(), svhn.sources()) == (73_257, 16, ["svhn"])
