import numpy as np
import pandas as pd
import pytest
from scipy import stats

from reclib.evaluation import (bootstrap_auc, bootstrap_interval, bootstrap_ratio, holm,
                               paired_auc_difference, paired_difference)


def test_bootstrap_matches_a_loop_over_the_same_draws():
    rng = np.random.default_rng(3)
    values = rng.random(200)
    ours = bootstrap_interval(values, n_boot=500, random_state=7)
    draws = np.random.default_rng(7).integers(0, 200, size=(500, 200))  # one block: same draws
    means = values[draws].mean(axis=1)
    assert list(ours.index) == ["value"] and list(ours.columns) == ["mean", "low", "high"]
    assert ours.loc["value", "mean"] == pytest.approx(values.mean(), abs=1e-15)
    assert ours.loc["value", "low"] == pytest.approx(np.quantile(means, 0.025), abs=1e-12)
    assert ours.loc["value", "high"] == pytest.approx(np.quantile(means, 0.975), abs=1e-12)


def test_bootstrap_hand_cases():
    # two users with values 0 and 1: a replicate mean is 0, 0.5 or 1 with chance 1/4, 1/2, 1/4,
    # so the 2.5 % and 97.5 % quantiles of 1000 replicates are 0 and 1
    out = bootstrap_interval([0.0, 1.0], n_boot=1000)
    assert tuple(out.loc["value"]) == (0.5, 0.0, 1.0)
    # constant values: no uncertainty at all
    out = bootstrap_interval(np.full(10, 0.3))
    np.testing.assert_allclose(out.loc["value"], [0.3, 0.3, 0.3], atol=1e-15)


def test_bootstrap_agrees_with_scipy():
    rng = np.random.default_rng(0)
    values = rng.exponential(size=300)
    ours = bootstrap_interval(values, n_boot=20000, random_state=1).loc["value"]
    ref = stats.bootstrap((values,), np.mean, n_resamples=20000, method="percentile",
                          confidence_level=0.95, random_state=2).confidence_interval
    width = ref.high - ref.low
    # the normal approximation: 2 * 1.96 * sd / sqrt(n)
    assert width == pytest.approx(2 * 1.96 * values.std() / np.sqrt(300), rel=0.05)
    assert ours["low"] == pytest.approx(ref.low, abs=0.03 * width)
    assert ours["high"] == pytest.approx(ref.high, abs=0.03 * width)


def test_bootstrap_frame_is_per_column_and_seeded():
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"ndcg": rng.random(50), "recall": rng.random(50) / 2})
    out = bootstrap_interval(frame, n_boot=300, random_state=4)
    assert list(out.index) == ["ndcg", "recall"] and out.index.name == "metric"
    for column in frame:
        alone = bootstrap_interval(frame[column], n_boot=300, random_state=4)
        pd.testing.assert_series_equal(out.loc[column], alone.loc[column], rtol=1e-12)
    pd.testing.assert_frame_equal(out, bootstrap_interval(frame, n_boot=300, random_state=4))
    assert not out.equals(bootstrap_interval(frame, n_boot=300, random_state=5))
    assert ((out["low"] < out["mean"]) & (out["mean"] < out["high"])).all()


def test_bootstrap_blocks_give_the_same_numbers(monkeypatch):
    import reclib.evaluation.uncertainty as U
    values = np.random.default_rng(1).random(100)
    whole = bootstrap_interval(values, n_boot=64)
    monkeypatch.setattr(U, "_BLOCK_CELLS", 1000)  # 10 replicates per block
    blocked = bootstrap_interval(values, n_boot=64)
    assert np.isfinite(blocked.to_numpy()).all()
    assert blocked.loc["value", "mean"] == whole.loc["value", "mean"]


def test_bootstrap_ratio_rmse():
    squared = np.array([4.0, 0.0, 1.0, 9.0])
    n = np.array([1.0, 2.0, 1.0, 2.0])
    out = bootstrap_ratio(squared, n, n_boot=2000, sqrt=True)
    assert out["value"] == pytest.approx(np.sqrt(14 / 6), abs=1e-15)
    assert out["low"] < out["value"] < out["high"]
    with pytest.raises(ValueError, match="one value per user"):
        bootstrap_ratio(squared, n[:3])


def test_paired_difference_hand_case_and_scipy():
    a = pd.Series([0.5, 0.6, 0.7, 0.8, 0.9], index=list("abcde"))
    b = pd.Series([0.0, 0.2, 0.2, 0.4, 0.4], index=list("edcba"))  # aligned by index
    out = paired_difference(a, b, n_boot=2000)
    diff = a.to_numpy() - b.reindex(a.index).to_numpy()          # [0.1, 0.2, 0.5, 0.6, 0.9]
    assert out["mean_diff"] == pytest.approx(0.46, abs=1e-12)
    # every difference positive: exact two-sided signed-rank p = 2 / 2^5
    assert out["p_value"] == pytest.approx(2 / 32, abs=1e-12)
    assert out["p_value"] == pytest.approx(stats.wilcoxon(diff).pvalue, abs=1e-15)
    assert 0.1 <= out["low"] < 0.46 < out["high"] <= 0.9
    same = paired_difference(a, a)
    assert same == {"mean_diff": 0.0, "low": 0.0, "high": 0.0, "p_value": 1.0}


def test_paired_difference_rejects_different_users():
    a = pd.Series([0.1, 0.2, 0.3], index=[1, 2, 3])
    with pytest.raises(ValueError, match="same users"):
        paired_difference(a, pd.Series([0.1, 0.2, 0.3], index=[1, 2, 4]))
    with pytest.raises(ValueError, match="same users"):
        paired_difference(np.ones(3), np.ones(4))


def test_nan_raises_naming_the_column():
    frame = pd.DataFrame({"ndcg": [0.1, 0.2, 0.3], "recall": [0.1, np.nan, 0.3]})
    with pytest.raises(ValueError, match="'recall'"):
        bootstrap_interval(frame)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_interval([0.1, 0.2], n_boot=0)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_interval([0.1, 0.2], confidence=1.0)


def test_holm_hand_case():
    # sorted 0.01, 0.03, 0.04 -> 3 * 0.01, max(0.03, 2 * 0.03), max(0.06, 1 * 0.04)
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06], atol=1e-15)
    np.testing.assert_allclose(holm([0.5, 0.9]), [1.0, 1.0])
    np.testing.assert_allclose(holm([0.2]), [0.2])
    with pytest.raises(ValueError, match="p_values"):
        holm([0.1, 1.5])


def test_bootstrap_auc_value_and_replicates():
    from sklearn.metrics import roc_auc_score

    from reclib.evaluation.uncertainty import bootstrap_auc
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 120)
    s = np.round(0.4 * y + rng.random(120), 1)          # rounded: many ties
    out = bootstrap_auc(y, s, n_boot=50, random_state=3)
    assert out["value"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    # each replicate equals sklearn's AUC of the resampled rows (same draws as the function)
    draws = np.random.default_rng(3).integers(0, 120, size=(50, 120))
    reps = [roc_auc_score(y[d], s[d]) for d in draws]
    assert out["low"] == pytest.approx(np.quantile(reps, 0.025), abs=1e-12)
    assert out["high"] == pytest.approx(np.quantile(reps, 0.975), abs=1e-12)
    with pytest.raises(ValueError, match="both classes"):
        bootstrap_auc(np.ones(5), np.arange(5.0))


def test_paired_auc_difference_resamples_both_models_on_the_same_rows():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 150)
    a = np.round(0.5 * y + rng.random(150), 1)
    b = np.round(0.3 * y + rng.random(150), 1)
    out = paired_auc_difference(y, a, b, n_boot=60, random_state=2)
    assert out["mean_diff"] == pytest.approx(roc_auc_score(y, a) - roc_auc_score(y, b), abs=1e-12)
    draws = np.random.default_rng(2).integers(0, 150, size=(60, 150))      # the function's draws
    reps = [roc_auc_score(y[d], a[d]) - roc_auc_score(y[d], b[d]) for d in draws]
    assert out["low"] == pytest.approx(np.quantile(reps, 0.025), abs=1e-12)
    assert out["high"] == pytest.approx(np.quantile(reps, 0.975), abs=1e-12)
    same = paired_auc_difference(y, a, a, n_boot=60)
    assert same["mean_diff"] == same["low"] == same["high"] == 0.0
    # Series pair with the labels by row id
    labels, shuffled = pd.Series(y), pd.Series(b).sample(frac=1.0, random_state=0)
    assert paired_auc_difference(labels, pd.Series(a), shuffled, n_boot=60, random_state=2) == out
    with pytest.raises(ValueError, match="both classes"):
        paired_auc_difference(np.zeros(4), np.arange(4.0), np.arange(4.0))
    # one positive among 200 rows: about a third of the replicates miss it; one positive of 1: all do
    assert np.isfinite(list(paired_auc_difference(np.r_[1, np.zeros(199)], np.arange(200.0), -np.arange(200.0),
                                                  n_boot=50).values())).all()
    with pytest.raises(ValueError, match="one class only"):
        bootstrap_auc(np.r_[1.0, 0.0], np.array([0.2, 0.1]), n_boot=1, random_state=0)   # draws row 1 twice


# -- pairing: two pandas inputs by index (user / row id), arrays by position ----------------------
def test_paired_frames_in_another_user_order_are_aligned_by_user():
    """One-column frames (``per_user[["ndcg"]]``) were paired by position: the same users in
    another order gave p = 0.39 instead of a tiny p-value."""
    rng = np.random.default_rng(0)
    a = pd.Series(rng.random(60), index=np.arange(100, 160), name="ndcg")
    b = a - 0.1 + rng.normal(0, 0.01, 60)
    expected = paired_difference(a.to_numpy(), b.to_numpy(), n_boot=200)
    shuffled = b.sample(frac=1.0, random_state=1)
    assert paired_difference(a.to_frame(), shuffled.to_frame(), n_boot=200) == expected
    assert paired_difference(a, shuffled.to_frame(), n_boot=200) == expected
    assert expected["p_value"] < 1e-9


def test_ratio_and_auc_pair_series_by_index():
    squared = pd.Series([4.0, 0.0, 1.0, 9.0], index=[1, 2, 3, 4])
    n = pd.Series([1.0, 2.0, 1.0, 2.0], index=[1, 2, 3, 4])
    reference = bootstrap_ratio(squared.to_numpy(), n.to_numpy(), n_boot=300, sqrt=True)
    pd.testing.assert_series_equal(bootstrap_ratio(squared, n.iloc[::-1], n_boot=300, sqrt=True),
                                   reference)
    labels = pd.Series([0, 1, 0, 1, 1, 0], index=list("abcdef"))
    scores = pd.Series([0.1, 0.9, 0.3, 0.6, 0.4, 0.5], index=list("abcdef"))
    reference = bootstrap_auc(labels.to_numpy(), scores.to_numpy(), n_boot=100)
    pd.testing.assert_series_equal(bootstrap_auc(labels, scores.iloc[::-1], n_boot=100), reference)


def test_arrays_and_identical_indexes_keep_positional_pairing():
    a, b = np.array([0.3, 0.5, 0.9]), np.array([0.1, 0.2, 0.3])
    by_position = paired_difference(a, b, n_boot=100)
    same = pd.Series(a, index=[7, 7, 8])          # repeated ids, but the same index on both sides
    assert paired_difference(same, pd.Series(b, index=[7, 7, 8]), n_boot=100) == by_position
    assert paired_difference(pd.Series(a, index=[9, 8, 7]), b, n_boot=100) == by_position


USERS = pd.Index([1, 2, 3, 4])
SERIES = pd.Series([0.1, 0.2, 0.3, 0.4], index=USERS)
LABELS = pd.Series([0, 1, 0, 1], index=USERS)

# (id, function, args, exception, message pattern)
PAIRING_CASES = [
    ("diff-user-only-in-a", paired_difference, (SERIES, SERIES.iloc[1:]), ValueError,
     r"a and b must cover the same users.*1 only in a \(first 1\), 0 only in b \(none\)"),
    ("diff-users-both-sides", paired_difference, (SERIES, SERIES.set_axis([1, 2, 3, 99])),
     ValueError, r"1 only in a \(first 4\), 1 only in b \(first 99\)"),
    ("diff-string-ids", paired_difference, (SERIES.set_axis(list("wxyz")),
                                            SERIES.set_axis(list("wxyq"))), ValueError,
     r"first 'z'.*first 'q'"),
    ("diff-frame-user-missing", paired_difference, (SERIES.to_frame("ndcg"),
                                                    SERIES.iloc[:3].to_frame("ndcg")), ValueError,
     r"1 only in a \(first 4\)"),
    ("diff-repeated-id-in-b", paired_difference, (SERIES, SERIES.set_axis([1, 1, 2, 3])),
     ValueError, r"b must hold one value per user.*1 id\(s\) repeat, first 1"),
    ("diff-two-column-frame", paired_difference, (SERIES.to_frame("ndcg").assign(recall=0.5),
                                                  SERIES), ValueError,
     r"a must hold one column.*\['ndcg', 'recall'\]"),
    ("diff-array-lengths", paired_difference, (np.ones(3), np.ones(4)), ValueError,
     r"a and b must hold one value per user.*lengths 3 and 4"),
    ("diff-nan-in-b", paired_difference, (SERIES, SERIES.where(SERIES > 0.15)), ValueError,
     r"b column 'value' holds 1 NaN"),
    ("ratio-user-only-in-denominator", bootstrap_ratio, (SERIES.iloc[:3], SERIES), ValueError,
     r"numerator and denominator must cover the same users.*1 only in denominator \(first 4\)"),
    ("ratio-two-column-numerator", bootstrap_ratio, (pd.DataFrame({"x": SERIES, "y": SERIES}),
                                                     SERIES), ValueError,
     r"numerator must hold one column.*\['x', 'y'\]"),
    ("ratio-array-lengths", bootstrap_ratio, (np.ones(3), np.ones(2)), ValueError,
     r"numerator and denominator.*lengths 3 and 2"),
    ("auc-row-only-in-scores", bootstrap_auc, (LABELS.iloc[:3], SERIES), ValueError,
     r"labels and scores must cover the same rows.*1 only in scores \(first 4\)"),
    ("auc-repeated-row", bootstrap_auc, (LABELS.set_axis([1, 2, 2, 3]), SERIES), ValueError,
     r"labels must hold one value per row.*first 2"),
    ("auc-array-lengths", bootstrap_auc, (np.array([0, 1, 0]), np.ones(4)), ValueError,
     r"labels and scores.*lengths 3 and 4"),
]


@pytest.mark.parametrize(("func", "args", "error", "pattern"), [c[1:] for c in PAIRING_CASES],
                         ids=[c[0] for c in PAIRING_CASES])
def test_paired_helpers_reject_mismatched_inputs(func, args, error, pattern):
    with pytest.raises(error, match=pattern):
        func(*args, n_boot=10)


def test_auc_bootstrap_over_groups_resamples_whole_users():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(6)
    y = rng.integers(0, 2, 80)
    a = np.round(0.5 * y + rng.random(80), 1)
    b = np.round(0.3 * y + rng.random(80), 1)
    # one row per group: the group bootstrap is the row bootstrap (same draws, groups sorted)
    assert bootstrap_auc(y, a, n_boot=40, random_state=1, groups=np.arange(80)[::-1]).equals(
        bootstrap_auc(y[::-1], a[::-1], n_boot=40, random_state=1))
    # every row copied 5 times inside its own group: the copies carry no new evidence, so the
    # interval over groups is the interval of the original rows; resampling copies as if they were
    # independent rows shrinks it (the trap of row-level intervals on per-user data)
    group = np.repeat(np.arange(80), 5)
    copied = bootstrap_auc(np.repeat(y, 5), np.repeat(a, 5), n_boot=200, random_state=3, groups=group)
    original = bootstrap_auc(y, a, n_boot=200, random_state=3)
    np.testing.assert_allclose(copied.to_numpy(), original.to_numpy(), atol=1e-12)
    rows = bootstrap_auc(np.repeat(y, 5), np.repeat(a, 5), n_boot=200, random_state=3)
    assert rows["high"] - rows["low"] < 0.6 * (original["high"] - original["low"])
    paired = paired_auc_difference(np.repeat(y, 5), np.repeat(a, 5), np.repeat(b, 5), n_boot=100,
                                   random_state=2, groups=group)
    assert paired == pytest.approx(paired_auc_difference(y, a, b, n_boot=100, random_state=2), abs=1e-12)
    assert paired["mean_diff"] == pytest.approx(roc_auc_score(y, a) - roc_auc_score(y, b), abs=1e-12)
    # a pandas groups Series pairs with pandas labels by index, strings allowed
    labels = pd.Series(np.repeat(y, 5))
    users = pd.Series([f"u{g}" for g in group]).sample(frac=1.0, random_state=0)
    assert bootstrap_auc(labels, np.repeat(a, 5), n_boot=50, groups=users).equals(
        bootstrap_auc(labels, np.repeat(a, 5), n_boot=50, groups=users.sort_index()))
    with pytest.raises(ValueError, match="one group id per row"):
        bootstrap_auc(y, a, groups=np.arange(79))
    with pytest.raises(ValueError, match="missing id"):
        bootstrap_auc(y, a, groups=np.r_[np.nan, np.arange(79.0)])
    with pytest.raises(ValueError, match="at least two groups"):
        bootstrap_auc(y, a, groups=np.zeros(80))
