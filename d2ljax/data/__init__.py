"""Datasets and the input pipeline.

``load_dataset(name, **kwargs)`` returns ``{split: {"x": ..., "y": ...}}`` NumPy arrays for every
dataset a config can name (plus an optional ``"_info"`` dict of facts for the model);
:class:`ArrayLoader` turns a split into device batches.
"""

from __future__ import annotations

from collections.abc import Callable

from d2ljax.data.pipeline import ArrayLoader, epoch_permutation, image_transform
from d2ljax.registry import Registry

Splits = dict[str, dict]
DATASETS: Registry[Callable[..., Splits]] = Registry(
    "dataset",
    message="unknown dataset {name!r}; known datasets: {known}.{hint}",
)


def register_dataset(name: str, description: str = "", *, defaults: dict | None = None):
    """Decorator: register a loader ``fn(**kwargs) -> Splits`` under ``name``."""
    return DATASETS.register(name, description=description, defaults=defaults)


def list_dataset_names() -> dict[str, str]:
    return DATASETS.describe()


def load_dataset(name: str, **kwargs) -> Splits:
    """The splits of a named dataset (see :func:`list_dataset_names`)."""
    return DATASETS.build(name, **kwargs)


@register_dataset("fashion_mnist", "Fashion-MNIST 28x28 grey images, 10 classes (book §4.2)")
def _fashion_mnist(**kwargs) -> Splits:
    from d2ljax.data.vision import load_fashion_mnist

    return load_fashion_mnist(**kwargs)


@register_dataset("mnist", "MNIST handwritten digits 28x28, 10 classes")
def _mnist(**kwargs) -> Splits:
    from d2ljax.data.vision import load_mnist

    return load_mnist(**kwargs)


@register_dataset("synthetic_regression", "y = Xw + b + noise, w=[2,-3.4], b=4.2 (book §3.3)")
def _synthetic_regression(w=(2.0, -3.4), b=4.2, **kwargs) -> Splits:
    from d2ljax.data.synthetic import synthetic_regression

    return synthetic_regression(list(w), b, **kwargs)


@register_dataset("weight_decay", "20 train / 100 val examples, 200 inputs (book §3.7)")
def _weight_decay(**kwargs) -> Splits:
    from d2ljax.data.synthetic import weight_decay_data

    return weight_decay_data(**kwargs)


@register_dataset("kaggle_house", "Kaggle house prices, preprocessed, log-price labels (§5.7)")
def _kaggle_house(**kwargs) -> Splits:
    from d2ljax.data.tabular import load_kaggle_house, preprocess_house

    data = preprocess_house(*load_kaggle_house(**kwargs))
    return {"train": {"x": data.train_x, "y": data.train_y}, "test": {"x": data.test_x}}


@register_dataset("airfoil", "NASA airfoil self-noise, 1500 rows, 5 features, standardized (§12.5)")
def _airfoil(**kwargs) -> Splits:
    from d2ljax.data.tabular import load_airfoil

    return load_airfoil(**kwargs)


@register_dataset("cifar10", "CIFAR-10 32x32 colour images, 50000 train / 10000 test (§14.1)")
def _cifar10(**kwargs) -> Splits:
    from d2ljax.data.cifar10 import load_cifar10

    return load_cifar10(**kwargs)


@register_dataset("kaggle_cifar10", "Kaggle CIFAR-10 PNGs, the book's train/valid split (§14.13)")
def _kaggle_cifar10(**kwargs) -> Splits:
    from d2ljax.data.cifar10 import load_kaggle_cifar10

    return load_kaggle_cifar10(**kwargs)


# Text datasets. A loader may add an ``"_info"`` entry next to its splits: facts the model needs
# (``vocab_size``, vocabularies) that ``experiment.build`` passes to the model's constructor.


@register_dataset("timemachine", "H. G. Wells' The Time Machine, char-level LM subsequences (§9.3)")
def _timemachine(**kwargs) -> Splits:
    from d2ljax.data.text import load_timemachine_lm

    return load_timemachine_lm(**kwargs)


@register_dataset("fra_eng", "Tatoeba English-French pairs for machine translation (§10.5)")
def _fra_eng(**kwargs) -> Splits:
    from d2ljax.data.translation import load_fra_eng

    return load_fra_eng(**kwargs)


@register_dataset("sine_autoregression", "sin(0.01 t) + noise, tau lagged features (§9.1)")
def _sine_autoregression(**kwargs) -> Splits:
    from d2ljax.data.synthetic import sine_autoregression

    return sine_autoregression(**kwargs)


@register_dataset("gp_regression", "sin(x) + 0.5 sin(4x) + noise 0.25, 50 points on [0, 5] (§18.3)")
def _gp_regression(**kwargs) -> Splits:
    from d2ljax.data.synthetic import gp_regression_data

    return gp_regression_data(**kwargs)


@register_dataset("gan_toy", "1000 points X A + b, a 2-D Gaussian of mean [1, 2] (§20.1)")
def _gan_toy(**kwargs) -> Splits:
    from d2ljax.data.synthetic import gan_toy_data

    return {"train": gan_toy_data(**kwargs)}


@register_dataset("pokemon", "Pokemon sprites, 64x64 RGB, the book's DCGAN data (§20.2)")
def _pokemon(**kwargs) -> Splits:
    from d2ljax.data.pokemon import load_pokemon

    return load_pokemon(**kwargs)


@register_dataset("ptb_word2vec", "PTB centre words, contexts and noise words for word2vec (§15.3)")
def _ptb_word2vec(**kwargs) -> Splits:
    from d2ljax.data.word2vec import load_ptb_word2vec

    return load_ptb_word2vec(**kwargs)


@register_dataset("imdb", "IMDb movie reviews, positive / negative, padded word ids (§16.1)")
def _imdb(**kwargs) -> Splits:
    from d2ljax.data.imdb import load_imdb

    return load_imdb(**kwargs)


@register_dataset("wikitext2_bert", "WikiText-2 paragraphs as BERT MLM + NSP examples (§15.9)")
def _wikitext2_bert(**kwargs) -> Splits:
    from d2ljax.data.wikitext import load_bert_pretraining

    return load_bert_pretraining(**kwargs)


@register_dataset("snli_bert", "SNLI premise/hypothesis pairs as BERT fine-tuning inputs (§16.7)")
def _snli_bert(**kwargs) -> Splits:
    from d2ljax.data.snli import load_snli_bert

    return load_snli_bert(**kwargs)


@register_dataset(
    "ml100k", "MovieLens 100K ratings (user, item, rating), 90/10 or seq-aware split (§21.2)"
)
def _ml100k(**kwargs) -> Splits:
    from d2ljax.data.recsys import ml100k_splits

    return ml100k_splits(**kwargs)


@register_dataset("ml100k_autorec", "MovieLens 100K, one row of user ratings per item (§21.4)")
def _ml100k_autorec(**kwargs) -> Splits:
    from d2ljax.data.recsys import ml100k_item_vectors

    return ml100k_item_vectors(**kwargs)


__all__ = [
    "DATASETS",
    "ArrayLoader",
    "epoch_permutation",
    "image_transform",
    "list_dataset_names",
    "load_dataset",
    "register_dataset",
]
