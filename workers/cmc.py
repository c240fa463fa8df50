r"""CMC (Tian, Krishnan & Isola 2019) as InfoMin uses it (Tian et al. 2020, Fig. 4): a colour space split in two.

One augmented view of each image (``views``: crop, flip, ...) is converted to a colour space
(``workers.views.colour_spaces``) and its channels are split between the pair's two views,
e.g. L against ab in Lab, Y against DbDr in YDbDr. Each view has its own encoder and head
(CMC's two networks, ``l_to_ab`` and ``ab_to_l`` in ``HobbitLong/CMC``), and the trial's
contrastive loss compares

.. math:: z_1 = g_1(f_1(v_1)),\qquad z_2 = g_2(f_2(v_2)),\qquad \mathcal{L} = \mathrm{loss}(z_1, z_2)

(NT-Xent: each anchor's positive is the other view of its image). The representation that is
evaluated is the concatenation of both encoders' features of the whole image,
:math:`h = [f_1(v_1), f_2(v_2)]` of dim(f₁) + dim(f₂) features, as CMC's linear probe
concatenates ``feat_l`` and ``feat_ab``. Which split shares how much is the study's axis: the
paper finds that splits with lower :math:`I_\mathrm{NCE}` give higher downstream accuracy.

Choices, and why:

* **Channels scaled to [0, 1]** by their range over the RGB cube (``ColourSpace.normalised``),
  as CMC maps each Lab channel by its range, so every space reaches the encoders on the scale
  RGB images have here.
* **One augmented view for both groups** (CMC augments an image once, then splits it): the two
  views share the crop and differ only in their channels, so the split alone sets what they
  share. ``independent_views: true`` takes each group from a view of its own (the second made
  with ``views.second_branch()``), to combine both kinds of view difference.
* **Each encoder is the trial's backbone**, built for its own number of channels, at full
  width (CMC halves a ResNet's width so that the two halves have one network's parameters:
  choose a narrower backbone for that).
* **Negatives** are whatever the trial's loss takes from the batch. CMC's NCE scores each view
  against the other view's samples only (from a memory bank): the closest batch loss is
  ``loss: {name: nt_xent, negatives: cross_view}``.

Example::

    method: {name: cmc, space: lab, first: [L], second: [a, b]}
    loss: {name: nt_xent, temperature: 0.07, negatives: cross_view}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from workers.backbones import Backbone
from workers.methods import METHODS, Method, MethodConfig, online_classes
from workers.views import ViewsConfig, make_pair
from workers.views.colour_spaces import COLOUR_SPACES, ColourSpace, ColourSpaceName

if TYPE_CHECKING:
    from workers.config import TrialConfig
    from workers.data.base import Dataset


class ChannelSplitEncoder(Backbone):
    """f(x) = [f₁(v₁), f₂(v₂)]: RGB images converted to ``space``, channels ``first`` to f₁, ``second`` to f₂."""

    def __init__(
        self, space: ColourSpace, first: list[int], second: list[int], first_encoder: Backbone, second_encoder: Backbone
    ) -> None:
        super().__init__()
        self.space, self.first_channels, self.second_channels = space, first, second
        self.first, self.second = first_encoder, second_encoder
        self.dim = first_encoder.dim + second_encoder.dim

    def split(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(v₁, v₂): the normalised channels of each group, [B, |group|, H, W] each."""
        if rgb.shape[1] != 3:
            raise ValueError(f"cmc converts RGB images, got {rgb.shape[1]} channels")
        # The conversion's matrix products would round to bfloat16 under autocast.
        with torch.autocast(rgb.device.type, enabled=False):
            converted = self.space.normalised(rgb.float())
        # Slices, not a list index (which would be copied to the device at every call).
        return tuple(torch.cat([converted[:, k : k + 1] for k in group], dim=1)
                     for group in (self.first_channels, self.second_channels))

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        first, second = self.split(x)
        return torch.cat([self.first.feature_map(first), self.second.feature_map(second)], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, second = self.split(x)
        return torch.cat([self.first(first), self.second(second)], dim=1)


class CMC(Method):
    """Two channel groups of one view, each through its own encoder and head; the trial's loss on (z₁, z₂)."""

    encoder: ChannelSplitEncoder

    def __init__(
        self,
        encoder: ChannelSplitEncoder,
        first_head: nn.Module,
        second_head: nn.Module,
        loss: nn.Module,
        views: ViewsConfig,
        independent_views: bool = False,
    ) -> None:
        super().__init__(encoder)
        self.first_head, self.second_head, self.loss, self.views = first_head, second_head, loss, views
        self.independent_views = independent_views

    def pair(self, images, views, generator, *, second_images=None):
        """(v₁, v₂): the channel groups of one view of ``images`` (of a view each with ``independent_views``)."""
        if second_images is not None:
            raise ValueError("cmc makes both views from one image; this data has its own second view")
        if self.independent_views:
            first, second = make_pair(images, views, generator)
            return self.encoder.split(first)[0], self.encoder.split(second)[1]
        return self.encoder.split(self.view(images, views, generator))

    def branch(self, index: int) -> tuple[nn.Module, nn.Module | None]:
        return (self.encoder.first, self.first_head) if index == 0 else (self.encoder.second, self.second_head)

    def objective(self, images, labels, generator):
        first, second = self.pair(images, self.views, generator, second_images=labels.get("second_view"))
        h1, h2 = self.encoder.first(first), self.encoder.second(second)
        z1, z2 = self.first_head(h1), self.second_head(h2)
        with torch.autocast(z1.device.type, enabled=False):  # similarities / τ need float32
            loss = self.loss(z1.float(), z2.float(), generator=generator)
        return loss, torch.cat([h1, h2], dim=1)


@METHODS.register
class CMCConfig(MethodConfig):
    name: Literal["cmc"]
    space: ColourSpaceName = Field("lab", description="the colour space whose channels are split")
    first: list[str] | None = Field(None, description="channels of view 1; default: the space's first (L of Lab)")
    second: list[str] | None = Field(None, description="channels of view 2; default: the others (a, b)")
    independent_views: bool = Field(False, description="each channel group from its own augmented view")
    ignores: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _channels_split(self) -> CMCConfig:
        space = COLOUR_SPACES[self.space]
        first, second = self.groups()
        for group in (first, second):
            space.index(group)  # names every unknown channel
        if not first or not second:
            raise ValueError("each view needs at least one channel")
        if shared := [name for name in first if name in second]:
            raise ValueError(f"channel {', '.join(shared)} is in both views")
        return self

    def groups(self) -> tuple[list[str], list[str]]:
        """The channel names of each view, defaults filled in."""
        channels = COLOUR_SPACES[self.space].channels
        first = list(self.first) if self.first is not None else [channels[0]]
        second = list(self.second) if self.second is not None else [c for c in channels if c not in first]
        return first, second

    def conflicts(self, trial: TrialConfig) -> list[tuple[str, str]]:
        if trial.views.pair is not None:
            return [("views.pair", "cmc splits the channels of one view; set views.pair: null")]
        return []

    def build(self, trial: TrialConfig, dataset: Dataset) -> Method:
        if dataset.channels != 3 or dataset.fixed_channels:
            raise ValueError(f"cmc converts RGB images; {trial.data.name} has {dataset.channels} channels")
        space = COLOUR_SPACES[self.space]
        first, second = (space.index(group) for group in self.groups())
        encoders = [trial.model.backbone.build(len(group), dataset.image_size) for group in (first, second)]
        encoder = ChannelSplitEncoder(space, first, second, *encoders)
        heads = [trial.model.head.build(part.dim) for part in encoders]
        method = CMC(encoder, *heads, trial.loss.build(), trial.views, self.independent_views)
        return method.with_online(online_classes(trial, dataset))
