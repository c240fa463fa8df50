"""The online linear classifier: trained beside the method on sg(h), evaluated every epoch."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY_BASE

from workers import TrialConfig, run_trial
from workers.data.sources import LabelledImages

CPU = torch.device("cpu")


def trial(**changes) -> TrialConfig:
    return TrialConfig.model_validate({**TINY_BASE, **changes})


@pytest.mark.parametrize("method", ["simclr", "supervised"])
def test_online_classifier_gradient_never_reaches_the_encoder(tmp_path, method):
    config = trial(method=method, eval={"online": {"targets": ["second_digit"]}})
    dataset = config.data.build(tmp_path, CPU)
    model = config.method.build(config, dataset)
    assert list(model.online) == ["second_digit"]
    index = torch.arange(16)
    labels = {t: v[index] for t, v in dataset.train.labels.items()}
    loss, online = model.training_loss(dataset.train.images(index), labels, torch.Generator().manual_seed(0))
    encoder = list(model.encoder.parameters())
    assert all(g is None for g in torch.autograd.grad(online, encoder, retain_graph=True, allow_unused=True))
    classifier = list(model.online.parameters())
    assert all(g is not None and g.abs().sum() > 0 for g in torch.autograd.grad(online, classifier, retain_graph=True))
    # The classifier learns nothing from the method's loss either.
    assert all(g is None for g in torch.autograd.grad(loss, classifier, allow_unused=True))


def test_online_classifier_is_exempt_from_weight_decay(tmp_path):
    config = trial(eval={"online": {}, "linear": None})
    model = config.method.build(config, config.data.build(tmp_path, CPU))
    optimizer, _ = config.optim.build(model, 1, 1, model.online.parameters())
    decayed = {id(p) for p in optimizer.param_groups[0]["params"]}
    assert set(model.online) == {"first_digit", "second_digit"}  # default: every target
    assert all(id(p) not in decayed for p in model.online.parameters())
    assert id(model.encoder.layers[0].weight) in decayed


def separable_images(count: int, generator: torch.Generator) -> LabelledImages:
    """Class 0 is faint noise, class 1 bright noise (a pooled encoder cannot miss it)."""
    labels = torch.arange(count) % 2
    images = torch.randint(0, 60, (count, 1, 16, 16), generator=generator, dtype=torch.uint8)
    images[labels == 1] += 190
    return LabelledImages(images, labels)


def test_online_accuracy_on_a_separable_dataset_reaches_100(tmp_path, monkeypatch):
    generator = torch.Generator().manual_seed(0)
    data = {"train": separable_images(512, generator), "test": separable_images(100, generator)}
    monkeypatch.setattr("workers.data.classification.load_images", lambda source, split, root: data[split])
    config = trial(
        data={"name": "classification", "source": "digits"},
        model={"backbone": {"name": "small_cnn", "width": 4, "stages": 2}, "head": {"layers": 2, "dim": 8}},
        optim={"name": "adam_l2", "lr": 0.01, "schedule": "constant"},
        train={"batch_size": 32, "epochs": 3},
        eval={"online": {"targets": ["class"]}, "linear": None},
    )
    # Evaluation reads h in eval mode: batch norm's running statistics need a few dozen steps
    # (momentum 0.1) before they match the batches the classifier was trained on.
    epochs = []
    final = run_trial(config, data_root=tmp_path, device="cpu", on_epoch=lambda e, m: epochs.append(m))
    assert all("online_acc/class" in m for m in epochs)
    assert final["online_acc/class"] == epochs[-1]["online_acc/class"] == pytest.approx(100.0)
    assert "linear_acc/class" not in final


def test_online_evaluation_leaves_existing_identities_alone():
    plain = trial()
    assert "online" not in plain.identity()["eval"]
    online = trial(eval={**TINY_BASE["eval"], "online": {}})
    assert online.identity()["eval"]["online"] == {}
    # The untrained baseline has nothing to train an online classifier with: not part of it.
    untrained = trial(method="random_init", eval={**TINY_BASE["eval"], "online": {}})
    assert "online" not in untrained.identity()["eval"]
