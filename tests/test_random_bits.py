"""The random-bits experiment (Chen, Luo & Li 2021, §4) in the setting of its notebook, end to end."""

from __future__ import annotations

import math

import pytest
import yaml

from workers import TrialConfig, run_trial

# randbits_mnist.ipynb: conv3, head dense-BN-ReLU(256) → dense(64, no bias), cross-view NT-Xent,
# Adam with Keras l2 kernel regularisation, lr decayed linearly to 0, crops of area 0.5-1,
# an online linear classifier on sg(h). Here on scikit-learn's digits rendered at 28×28.
RANDOM_BITS = yaml.safe_load("""
data: {name: shared_bits, bits: 5, base: {name: classification, source: digits, size: 28}}
model: {backbone: conv3, head: {layers: 2, hidden: 256, dim: 64, bias: false}}
method: simclr
loss: {name: nt_xent, temperature: 0.1, negatives: cross_view}
views: {crop: {scale: [0.5, 1.0]}}  # aspect ratio 3/4-4/3: the default
optim: {name: adam_l2, lr: 0.001, weight_decay: 0.0002, schedule: linear}
train: {batch_size: 1000, epochs: 10}
eval: {online: {targets: [class]}, linear: {targets: [class]}}
""")


def test_the_notebooks_model_is_built():
    config = TrialConfig.model_validate(RANDOM_BITS)
    dataset = config.data.build("unused", "cpu")
    method = config.method.build(config, dataset)
    assert method.encoder.convolutions[0].in_channels == 1 + 5 and method.fixed_channels == 5
    first, _, _, last = method.head
    assert (first.in_features, first.out_features, first.bias) == (128, 256, None)
    assert (last.in_features, last.out_features, last.bias) == (256, 64, None)
    assert (method.online["class"].in_features, method.online["class"].out_features) == (128, 10)
    assert method.loss.negatives == "cross_view" and method.loss.temperature == 0.1


def test_random_bits_trial_runs_end_to_end(tmp_path):
    config = TrialConfig.model_validate(RANDOM_BITS | {"train": {"batch_size": 256, "epochs": 2}})
    epochs = []
    metrics = run_trial(config, data_root=tmp_path, device="cpu", on_epoch=lambda e, m: epochs.append(m))
    assert len(epochs) == 2 and all(0 <= m["online_acc/class"] <= 100 for m in epochs)
    assert all(math.isfinite(m["train/loss"]) for m in epochs)
    # 1347 digits / 256 = 5 steps an epoch; the 10th and last step runs at 0.001 · (1 - 9/10).
    assert epochs[-1]["train/lr"] == pytest.approx(1e-4)
    assert metrics["online_acc/class"] == epochs[-1]["online_acc/class"]
    assert 0 <= metrics["linear_acc/class"] <= 100


def random_bits_study(**report) -> dict:
    smoke = {"data.base.source": "digits", "data.base.size": 28, "train.batch_size": 256, "train.epochs": 1}
    return {
        "study": "random_bits",
        "reproduces": "Chen, Luo & Li 2021, Fig. 5a: shared bits suppress the digit",
        "base": RANDOM_BITS | {"data": {**RANDOM_BITS["data"], "base": {"name": "classification", "source": "mnist"}}},
        "sweep": {"grid": {"data.bits": [0, 5, 10]}, "variants": {"t01": {}}},
        "scales": {"small": {"train.epochs": 2}, "smoke": smoke},
        "report": report or {"table": {"rows": ["variant", "target"], "columns": "data.bits", "metric": "online_acc"}},
        "findings": [{"claim": "accuracy falls as bits are added",
                      "check": {"variant": "t01", "target": "class", "along": "data.bits", "metric": "online_acc",
                                "drop_at_least": 30}}],
    }


def test_a_study_can_report_online_accuracy(write_study):
    from orchestrator.spec import load_study

    study = load_study(write_study(random_bits_study()), scale="smoke")
    assert study.base.data.base.source == "digits" and study.spec.report.table.metric == "online_acc"


def test_a_bad_key_inside_the_base_dataset_is_named(write_study):
    from orchestrator.errors import StudyError
    from orchestrator.spec import load_study

    study = random_bits_study()
    study["base"]["data"]["base"]["sizes"] = 28
    with pytest.raises(StudyError, match=r"data\.base\.sizes: unknown key 'sizes'; allowed: name, source, size"):
        load_study(write_study(study))
