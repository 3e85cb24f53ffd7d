"""How to evaluate a generative model of images: likelihoods, sample-based scores, memorisation.

Use it as one module (``from course_lib import metrics; metrics.fid(real, fake)``); the code
lives in four parts, each readable on its own:

:mod:`~course_lib.metrics.formulas` — the formulas
    :func:`gaussian_log_likelihood` and :func:`bits_per_pixel` (likelihood, on one scale for
    every model of the course); :func:`frechet_distance` and :func:`fid`, :func:`kid`,
    :func:`precision_recall` (a real and a generated set compared through features);
    :func:`mode_coverage` and :func:`mode_balance_kl` (the 2D mixtures);
    :func:`mean_pairwise_distance` (diversity); :func:`nearest_neighbour_distance` and
    :func:`memorisation_ratio`, which catch a "generator" that returns copies of its
    training images, which the scores above would rate as perfect.

:mod:`~course_lib.metrics.features` — the feature network
    :class:`DigitCNN`, the course's fixed feature network, as Inception-v3 is FID's: its
    weights ship with the package and are verified at every load
    (:func:`digit_classifier`); :func:`digit_features` maps digits to features,
    :func:`predict_digits`, :func:`class_accuracy` and :func:`classifier_accuracy` use its
    labels.

:mod:`~course_lib.metrics.fashion` — the feature network for 28×28 Fashion-MNIST
    :class:`FashionCNN`, shipped and verified the same way (:func:`fashion_classifier`);
    :func:`fashion_features`, :func:`predict_fashion`, :func:`fashion_classifier_accuracy`.

:mod:`~course_lib.metrics.protocol` — the evaluation protocol
    :func:`evaluate` (every score, over :data:`EVAL_DRAWS` draws of :data:`EVAL_SIZE` images
    against the test split; ``dataset="fashion"``: :data:`FASHION_EVAL_DRAWS` draws of
    :data:`FASHION_EVAL_SIZE` Fashion-MNIST images), :func:`evaluate_floor`, :class:`Evaluation`,
    :func:`separated`, and :func:`comparison_table` / :class:`Table` for the book's tables.

The formulas use the features for image inputs, and the protocol uses both; nothing here
imports a model.
"""

from .fashion import (
    FASHION_MIN_ACCURACY,
    FashionCNN,
    fashion_classifier,
    fashion_classifier_accuracy,
    fashion_features,
    predict_fashion,
)
from .features import (
    CLASSIFIER_MIN_ACCURACY,
    DigitCNN,
    class_accuracy,
    classifier_accuracy,
    digit_classifier,
    digit_features,
    predict_digits,
)
from .formulas import (
    _psd_sqrt,  # noqa: F401  (grading.ch02 forbids it in learners' answers, by this name)
    bits_per_pixel,
    fid,
    frechet_distance,
    gaussian_log_likelihood,
    kid,
    mean_pairwise_distance,
    memorisation_ratio,
    mode_balance_kl,
    mode_coverage,
    nearest_neighbour_distance,
    precision_recall,
)
from .protocol import (
    EVAL_DATASETS,
    EVAL_DESCRIPTIONS,
    EVAL_DRAWS,
    EVAL_GROUPS,
    EVAL_METRICS,
    EVAL_SEED,
    EVAL_SIZE,
    FASHION_EVAL_DRAWS,
    FASHION_EVAL_SIZE,
    Evaluation,
    Table,
    comparison_table,
    evaluate,
    evaluate_floor,
    separated,
)

__all__ = [
    # the formulas
    "gaussian_log_likelihood", "bits_per_pixel", "frechet_distance", "fid", "kid",
    "precision_recall", "mode_coverage", "mode_balance_kl", "mean_pairwise_distance",
    "nearest_neighbour_distance", "memorisation_ratio",
    # the feature network
    "DigitCNN", "digit_classifier", "digit_features", "classifier_accuracy", "predict_digits",
    "class_accuracy", "CLASSIFIER_MIN_ACCURACY",
    # the Fashion-MNIST feature network
    "FashionCNN", "fashion_classifier", "fashion_features", "predict_fashion",
    "fashion_classifier_accuracy", "FASHION_MIN_ACCURACY",
    # the evaluation protocol
    "Evaluation", "evaluate", "evaluate_floor", "comparison_table", "Table", "separated",
    "EVAL_SIZE", "EVAL_DRAWS", "EVAL_SEED", "EVAL_METRICS", "EVAL_GROUPS", "EVAL_DESCRIPTIONS",
    "EVAL_DATASETS", "FASHION_EVAL_SIZE", "FASHION_EVAL_DRAWS",
]
