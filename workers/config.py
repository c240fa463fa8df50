"""The complete configuration of one trial: plain data, validated, hashable.

Sections: ``data``, ``model`` (backbone + projection head), ``method``, ``loss``, ``views``,
``optim``, ``train``, ``eval`` and ``seed``. ``data``, ``model.backbone``, ``method`` and
``loss`` are registered components chosen by ``name`` (``workers.registry``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from workers import cmc, memory_bank, moco  # noqa: F401 - registers the methods
from workers.backbones import BACKBONES
from workers.data import classification, colorful_moving_mnist, digit_overlay, digit_pair, multidigit, shared_bits  # noqa: F401 - registers the datasets
from workers.data.base import DATASETS
from workers.heads import HeadConfig
from workers.linear_eval import EvalConfig
from workers.losses import LOSSES
from workers.methods import METHODS
from workers.optim import OptimConfig
from workers.registry import Section
from workers.views import ViewsConfig


class ModelConfig(Section):
    backbone: BACKBONES.union() = Field(default_factory=lambda: BACKBONES["small_cnn"](name="small_cnn"))
    head: HeadConfig = Field(default_factory=HeadConfig)


class TrainConfig(Section):
    batch_size: int = Field(256, ge=2)
    epochs: int = Field(10, ge=0)
    precision: Literal["float32", "bfloat16"] = Field(
        "float32", description="bfloat16: the forward pass under autocast (losses stay float32)"
    )
    compile: bool = Field(
        False, description="torch.compile the encoder (in place: checkpoints keep their keys); "
        "pays on a GPU for long runs, not on this 2-core CPU (benchmarks/README.md)"
    )


# Part of every trial hash. Bump it when an existing default changes value or the trainer starts
# computing something else for the same config: every earlier trial then counts as not run.
IDENTITY_VERSION = 2  # 2: digit_pair probes read each digit alone by default


class TrialConfig(Section):
    data: DATASETS.union()
    method: METHODS.union()
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LOSSES.union() = Field(default_factory=lambda: LOSSES["nt_xent"](name="nt_xent"))
    views: ViewsConfig = Field(default_factory=ViewsConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    seed: int = 0

    @model_validator(mode="after")
    def _sections_agree(self) -> TrialConfig:
        known = self.data.targets
        chosen = {"eval.linear.targets": self.eval.linear.targets if self.eval.linear else None}
        chosen["eval.online.targets"] = self.eval.online.targets if self.eval.online else None
        chosen["method.targets"] = getattr(self.method, "targets", None)
        chosen["eval.knn.targets"] = self.eval.knn.targets if self.eval.knn else None
        geometry = self.eval.geometry
        chosen["eval.geometry.target"] = [geometry.target] if geometry and geometry.target else None
        for path, targets in chosen.items():
            for target in targets or []:
                if target not in known:
                    raise config_error(
                        path, f"{target!r} is not a target of {self.data.name}; allowed: {', '.join(known)}"
                    )
                if target in self.data.regression_targets and path not in ("eval.linear.targets", "method.targets"):
                    raise config_error(path, f"{target!r} is a regression target; eval.linear and supervised fit it")
        examples = self.data.train_count()
        if "train" not in self.method.ignores and self.train.batch_size > examples:
            raise config_error(
                "train.batch_size", f"{self.train.batch_size} is more than the {examples} training examples"
            )
        for path, message in self.method.conflicts(self):
            raise config_error(path, message)
        smallest = self.model.backbone.min_input_size()
        if self.data.image_size() < smallest:
            raise config_error(
                "model.backbone",
                f"{self.model.backbone.name} needs images of at least {smallest} pixels; "
                f"the data are {self.data.image_size()}",
            )
        return self

    def identity(self) -> dict:
        """What makes this trial this trial: what its method reads, with defaults left out.

        Leaving defaults out keeps every finished trial's identity when a later version adds
        a field whose default reproduces the old behaviour (see ``IDENTITY_VERSION``).
        """
        return _without(self.model_dump(mode="json", exclude_defaults=True), self.method.ignores)

    def resolved(self) -> dict:
        """Every value the trial runs with, defaults filled in (what its method ignores left out)."""
        return _without(self.model_dump(mode="json"), self.method.ignores)


def _without(tree: dict, paths: frozenset[str]) -> dict:
    """``tree`` without the dotted ``paths`` (missing ones are fine)."""
    tree = {**tree}
    for path in paths:
        head, _, rest = path.partition(".")
        if head in tree:
            if rest and isinstance(tree[head], dict):
                tree[head] = _without(tree[head], frozenset({rest}))
            elif not rest:
                del tree[head]
    return tree


def config_error(path: str, message: str) -> PydanticCustomError:
    """A validation error that names the dotted ``path`` it is about."""
    return PydanticCustomError("config", "{message}", {"message": message, "path": path})
