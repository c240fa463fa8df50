"""What the papers measure on a trained encoder, beside linear accuracy; one family per module.

Each is switched on by its own optional field of ``eval`` (``workers.linear_eval.EvalConfig``),
off (null) by default, so a trial without them keeps its identity and its results:

* ``eval.contrast`` (``contrast``): per epoch, the NT-Xent softmax entropy, the contrastive
  accuracy (SimCLR's ℓ2-norm × τ table) and I_NCE (Tian et al.) on held-out pairs:
  ``contrast/entropy``, ``contrast/accuracy``, ``i_nce``; methods with a projection head.
* ``eval.geometry`` (``geometry``): per trial, ``uniformity``, ``tolerance``, ``alignment``
  (Wang & Liu; Wang & Isola) on the test split.
* ``eval.knn`` (``knn``): per trial and target, ``knn_acc/<target>`` (InstDisc's weighted kNN)
  on the linear probe's cached features.
* ``eval.similarities`` (``similarities``): per trial, ``similarities.npz`` in the trial's
  artifact folder: each held-out anchor's similarity to its positive and its 10 hardest negatives;
  their means and gap as ``similarities/positive``, ``similarities/negatives``, ``similarities/gap``.
* ``eval.transform_prediction`` (``transform_prediction``): per trial and task, an MLP on frozen
  h and on frozen g(h) predicts which transformation was applied (SimCLR Table 3):
  ``transform_acc/<task>/h``, ``transform_acc/<task>/z``, ``transform_acc/<task>/chance``.

Random draws (which test images, their views) come from a generator of their own
(``held_out.measurement_generator``), never from the trial's training generator.
"""

from workers.measures.contrast import CONTRAST_METRICS, ContrastConfig, contrastive_diagnostics, contrastive_statistics
from workers.measures.geometry import (
    GEOMETRY_METRICS,
    GeometryConfig,
    alignment,
    measure_geometry,
    tolerance,
    uniformity,
)
from workers.measures.held_out import MEASUREMENT_SEED_OFFSET, held_out_pairs, measurement_generator
from workers.measures.knn import KnnConfig, knn_accuracy
from workers.measures.similarities import (
    SIMILARITIES_FILE,
    SIMILARITY_METRICS,
    SimilaritiesConfig,
    positive_and_negative_similarities,
    save_similarities,
    similarity_distributions,
    similarity_summary,
)
from workers.measures.transform_prediction import (
    TRANSFORM_METRICS,
    TransformPredictionConfig,
    train_mlp_classifier,
    transform_prediction,
)

__all__ = [
    "CONTRAST_METRICS",
    "GEOMETRY_METRICS",
    "MEASUREMENT_SEED_OFFSET",
    "SIMILARITIES_FILE",
    "SIMILARITY_METRICS",
    "TRANSFORM_METRICS",
    "ContrastConfig",
    "GeometryConfig",
    "KnnConfig",
    "SimilaritiesConfig",
    "TransformPredictionConfig",
    "alignment",
    "contrastive_diagnostics",
    "contrastive_statistics",
    "held_out_pairs",
    "knn_accuracy",
    "measure_geometry",
    "measurement_generator",
    "positive_and_negative_similarities",
    "save_similarities",
    "similarity_distributions",
    "similarity_summary",
    "tolerance",
    "train_mlp_classifier",
    "transform_prediction",
    "uniformity",
]
