import numpy as np
import pandas as pd
import pytest

from reclib.base import Recommender
from reclib.cf import ItemKNN, MostPopular, cosine_item_similarity
from reclib.data import stratified_split
from reclib.evaluation import ranking_result


def test_most_popular_interface(tiny_ratings):
    model = MostPopular().fit(tiny_ratings)
    assert model.item_ids_.tolist() == [10, 11, 12, 13, 14]
    recs = model.recommend([1, 99], k=2)
    assert list(recs.columns) == ["user_id", "item_id", "score", "rank"]
    # user 1 saw 10, 11, 12: the best unseen are 13 and 14 (2 each); unknown user 99 gets 10, 12
    assert recs[recs.user_id == 1]["item_id"].tolist() == [13, 14]
    assert recs[recs.user_id == 99]["item_id"].tolist() == [10, 12]
    assert recs["rank"].tolist() == [1, 2, 1, 2]
    np.testing.assert_array_equal(model.predict([1, 2], [10, 11]), [3.0, 2.0])


def test_item_knn_matches_dense_cosine(tiny_ratings):
    model = ItemKNN(n_neighbors=None).fit(tiny_ratings)
    x = model.train_matrix_.toarray()
    norms = np.linalg.norm(x, axis=0)
    dense = (x.T @ x) / np.outer(norms, norms)
    np.fill_diagonal(dense, 0.0)
    np.testing.assert_allclose(model.similarity_.toarray(), dense, atol=1e-9)
    np.testing.assert_allclose(model.score([3]), x[[2]] @ dense, atol=1e-9)
    np.testing.assert_allclose(model.predict([3, 3], [10, 14]), (x[[2]] @ dense)[0, [0, 4]])


def test_item_knn_pruning_keeps_the_largest(synthetic_interactions):
    from reclib.base import interaction_matrix
    df = synthetic_interactions
    m = interaction_matrix(df["user_id"].to_numpy(), df["item_id"].to_numpy(), (200, 300))
    full = cosine_item_similarity(m, None).toarray()
    pruned = cosine_item_similarity(m, 5, block_size=64).toarray()
    assert ((pruned > 0).sum(axis=1) <= 5).all()
    kept = np.sort(pruned, axis=1)[:, -1]
    np.testing.assert_allclose(kept, full.max(axis=1))


def test_unknown_users_and_items_are_named(tiny_ratings):
    model = ItemKNN().fit(tiny_ratings)
    with pytest.raises(ValueError, match=r"user\(s\) not seen at fit, e.g. \[42\]"):
        model.recommend([42])
    with pytest.raises(ValueError, match=r"item\(s\) not seen"):
        model.predict([1], [999])
    with pytest.raises(RuntimeError, match="not fitted"):
        ItemKNN().score([1])


def test_hyper_parameters_are_validated():
    with pytest.raises(ValueError, match="n_neighbors"):
        ItemKNN(n_neighbors=0)
    with pytest.raises(ValueError, match="shrinkage"):
        ItemKNN(shrinkage=-1)


def test_fit_rejects_bad_input(tiny_ratings):
    with pytest.raises(ValueError, match="'item_id'"):
        MostPopular().fit(tiny_ratings.drop(columns="item_id"))
    with pytest.raises(ValueError, match="duplicate"):
        MostPopular().fit(pd.concat([tiny_ratings, tiny_ratings.iloc[[0]]]))


def test_base_class_needs_hooks(tiny_ratings):
    with pytest.raises(NotImplementedError):
        Recommender().fit(tiny_ratings)


def test_p1_quality_on_movielens(movielens):
    train, test = stratified_split(movielens.ratings, 0.75, random_state=42)
    scores = {}
    for model in (MostPopular(), ItemKNN(n_neighbors=100)):      # the value measured below
        result = ranking_result(model.fit(train), train, test, k=10).values
        scores[type(model).__name__] = result
    # measured: MostPopular ndcg 0.2492, ItemKNN ndcg 0.3808 (seed 42)
    assert scores["MostPopular"]["ndcg"] == pytest.approx(0.2492, abs=0.003)
    assert scores["ItemKNN"]["ndcg"] == pytest.approx(0.3808, abs=0.003)
    assert scores["ItemKNN"]["coverage"] > 3 * scores["MostPopular"]["coverage"]


def test_recommend_is_deterministic_and_excludes_seen(movielens):
    train, _ = stratified_split(movielens.ratings, 0.75, random_state=42)
    model = ItemKNN().fit(train)
    users = train["user_id"].unique()[:50]
    a, b = model.recommend(users, k=10, batch_size=7), model.recommend(users, k=10)
    pd.testing.assert_frame_equal(a, b)
    seen = set(zip(train["user_id"], train["item_id"]))
    assert not seen & set(zip(a["user_id"], a["item_id"]))
