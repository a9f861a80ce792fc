"""One contract for every recommender (as scikit-learn's check_estimator and DeepCTR's check_model):
fit -> score -> recommend (no seen item) -> predict -> an unknown user -> same seed, same scores ->
get_params / clone -> save and load. A new Recommender subclass fails the first test until it is
added to FACTORIES."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile

import numpy as np
import pandas as pd
import pytest

import reclib.cf  # noqa: F401  (imports register the subclasses)
import reclib.features  # noqa: F401
import reclib.models  # noqa: F401
from reclib.base import Recommender
from reclib.cf import (BPR, EASE, BaselinePredictor, BiasedMF, ImplicitALS, ItemKNN, LastItemKNN,
                       MostPopular, NeighborhoodCF, RP3beta)
from reclib.features import ContentRecommender, FeatureToFactorRecommender, HybridRecommender
from reclib.features.content import ItemFeatures
from reclib.models import (NCF, CausalLMReranker, GenerativeRetrievalRecommender, HSTURecommender, ItemGPT2Recommender,
                           RecurrentRecommender, SASRecRecommender, SequentialRecommender, ShortlistRecommender,
                           ShortlistReranker, TextTowerRecommender, TwoTowerRecommender, save_tiny_causal_lm)
from reclib.testing import check_recommender

N_USERS, N_ITEMS = 60, 40
ITEMS = np.arange(100, 100 + N_ITEMS)
VECTORS = np.random.default_rng(1).normal(size=(N_ITEMS, 6))
FEATURES = ItemFeatures(ITEMS, vectors=VECTORS)

FACTORIES = {
    MostPopular: lambda: MostPopular(),
    ItemKNN: lambda: ItemKNN(n_neighbors=10),
    EASE: lambda: EASE(reg=10.0),
    ImplicitALS: lambda: ImplicitALS(n_factors=4, epochs=2, verbose=False),
    BPR: lambda: BPR(n_factors=4, epochs=2, verbose=False),
    BaselinePredictor: lambda: BaselinePredictor(),
    NeighborhoodCF: lambda: NeighborhoodCF(k=5),
    BiasedMF: lambda: BiasedMF(n_factors=4, epochs=2, verbose=False),
    NCF: lambda: NCF(gmf_dim=4, mlp_dims=(8, 4), epochs=1, batch_size=128),
    TwoTowerRecommender: lambda: TwoTowerRecommender(embedding_dim=4, tower_dims=(8,), epochs=1,
                                                     batch_size=128),
    ContentRecommender: lambda: ContentRecommender(),
    HybridRecommender: lambda: HybridRecommender(EASE(reg=10.0), ContentRecommender()),
    FeatureToFactorRecommender: lambda: FeatureToFactorRecommender(
        ImplicitALS(n_factors=4, epochs=2, verbose=False)),
    LastItemKNN: lambda: LastItemKNN(),
    RP3beta: lambda: RP3beta(n_neighbors=10),
    RecurrentRecommender: lambda: RecurrentRecommender(max_length=8, embedding_dim=8, epochs=1),
    SASRecRecommender: lambda: SASRecRecommender(max_length=8, embedding_dim=8, n_blocks=1, epochs=1),
    HSTURecommender: lambda: HSTURecommender(max_length=8, embedding_dim=8, n_blocks=1, epochs=1),
    ItemGPT2Recommender: lambda: ItemGPT2Recommender(max_length=8, embedding_dim=8, n_layers=1, epochs=1),
    GenerativeRetrievalRecommender: lambda: GenerativeRetrievalRecommender(n_levels=2, n_codes=4, max_length=8,
                                                                           embedding_dim=8, n_blocks=1, epochs=1),
    ShortlistReranker: lambda: ShortlistReranker(EASE(reg=10.0), n_candidates=10, hidden=4, epochs=2),
    CausalLMReranker: lambda: CausalLMReranker(EASE(reg=10.0), model=str(_tiny_lm()), n_candidates=5, device="cpu"),
    TextTowerRecommender: lambda: TextTowerRecommender(trainable_layers=1, embedding_dim=4, epochs=1,
                                                       batch_size=256, max_length=8),
}
#: the data each model takes at fit besides the interactions (scikit-learn's rule: data goes to fit)
FIT_DATA = {TwoTowerRecommender: {"item_features": FEATURES}, ContentRecommender: {"item_features": FEATURES},
            HybridRecommender: {"item_features": FEATURES},
            FeatureToFactorRecommender: {"item_features": FEATURES},
            GenerativeRetrievalRecommender: {"item_features": FEATURES}, ShortlistReranker: {"item_features": FEATURES},
            CausalLMReranker: {"item_features": ItemFeatures(ITEMS, texts=[f"film number {i}" for i in ITEMS])},
            TextTowerRecommender: {"item_features": ItemFeatures(ITEMS, texts=[f"film number {i}" for i in ITEMS])}}


@functools.cache
def _tiny_lm():
    """A tiny random GPT-2 in a temporary folder (a stand-in for a hub model: nothing is downloaded),
    removed when the test process exits."""
    folder = tempfile.mkdtemp(prefix="reclib-tiny-lm-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return save_tiny_causal_lm(folder)


def _subclasses(cls: type) -> set[type]:
    return {s for c in cls.__subclasses__() for s in {c, *_subclasses(c)}}


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    keys = rng.choice(N_USERS * N_ITEMS, size=900, replace=False)
    return pd.DataFrame({"user_id": keys // N_ITEMS, "item_id": ITEMS[keys % N_ITEMS],
                         "rating": rng.integers(1, 6, size=900).astype(float),
                         "timestamp": rng.integers(0, 10**6, size=900)})


@pytest.mark.parametrize("cls", list(FACTORIES), ids=lambda c: c.__name__)
def test_built_without_data_arguments(cls):
    """Every recommender can be built with no argument at all, or only with sub-models (which are
    hyper-parameters, as the steps of a Pipeline): no array or frame goes to a constructor."""
    params = FACTORIES[cls]().get_params()
    assert not [name for name, value in params.items()
                if isinstance(value, (np.ndarray, pd.DataFrame, pd.Series, ItemFeatures))]
    if not any(isinstance(value, Recommender) for value in params.values()):
        assert type(cls()).__name__ == cls.__name__


def test_ids_only_two_tower_and_cold_items(frame):
    """TwoTowerRecommender() needs no data argument; given ItemFeatures, its catalogue is their
    ids (cold items included), without them the items of the interactions."""
    warm = frame[frame["item_id"] < ITEMS[-5]]
    plain = TwoTowerRecommender(embedding_dim=4, tower_dims=(8,), epochs=1, batch_size=128).fit(warm)
    assert set(plain.item_ids_) == set(warm["item_id"])
    with_text = TwoTowerRecommender(embedding_dim=4, tower_dims=(8,), epochs=1, batch_size=128)
    with_text.fit(warm, item_features=FEATURES)
    np.testing.assert_array_equal(with_text.item_ids_, ITEMS)
    assert np.isfinite(with_text.score([0, 1])).all()


@pytest.mark.parametrize("cls", [ContentRecommender, FeatureToFactorRecommender, TwoTowerRecommender,
                                 HybridRecommender], ids=lambda c: c.__name__)
@pytest.mark.parametrize("bad, match", [
    (VECTORS, "item_features must be an ItemFeatures"),
    (ItemFeatures(ITEMS[:-3], vectors=VECTORS[:-3]), "not in item_features.item_ids"),
])
def test_bad_item_features_are_rejected(cls, bad, match, frame):
    with pytest.raises(ValueError, match=match):
        FACTORIES[cls]().fit(frame, item_features=bad)


@pytest.mark.parametrize("cls", [ContentRecommender, FeatureToFactorRecommender], ids=lambda c: c.__name__)
def test_content_models_need_vectors_at_fit(cls, frame):
    with pytest.raises(ValueError, match="item_features"):
        FACTORIES[cls]().fit(frame)
    with pytest.raises(ValueError, match="item_features.vectors"):
        FACTORIES[cls]().fit(frame, item_features=ItemFeatures(ITEMS))


def test_every_recommender_is_in_the_contract():
    concrete = {c for c in _subclasses(Recommender)
                if c.__module__.startswith("reclib.") and ("_fit" in vars(c) or "_score" in vars(c))}
    abstract = {SequentialRecommender, ShortlistRecommender}    # bases: their subclasses supply the encoder, the reranker
    missing = sorted(c.__name__ for c in concrete - abstract if c not in FACTORIES)
    assert not missing, f"add these recommenders to FACTORIES: {missing}"


@pytest.mark.parametrize("cls", list(FACTORIES), ids=lambda c: c.__name__)
def test_contract(cls, frame):
    check_recommender(FACTORIES[cls](), frame, FIT_DATA.get(cls, {}))


def test_the_contract_check_catches_a_broken_model(frame):
    """A recommender that recommends seen items fails check_recommender, naming the check."""
    class Careless(MostPopular):
        def recommend(self, user_ids, k=10, exclude_seen=True):
            return super().recommend(user_ids, k=k, exclude_seen=False)

    with pytest.raises(AssertionError, match="returned an item the user interacted with"):
        check_recommender(Careless(), frame)
