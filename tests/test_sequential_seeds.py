"""``experiments.sequential_seeds.mean_curve_peak``: the epoch read off the seeds' mean validation curve."""

import pytest

from experiments.sequential_seeds import mean_curve_peak


def test_the_peak_of_the_mean_curve_over_the_epochs_every_seed_reached():
    # seed a peaks at epoch 2 (0.30), seed b at epoch 4 (0.90), which seed a never reached;
    # the means over epochs 1-3 are 0.15, 0.25, 0.30
    peak = mean_curve_peak([[0.10, 0.30, 0.20], [0.20, 0.20, 0.40, 0.90]])
    assert peak["epoch"] == 3 and peak["val_ndcg"] == pytest.approx(0.30)


def test_it_is_below_the_mean_of_each_seeds_best_epoch_when_the_seeds_peak_apart():
    curves = [[0.10, 0.20, 0.10], [0.20, 0.10, 0.10]]
    mean_of_maxima = sum(max(c) for c in curves) / len(curves)
    peak = mean_curve_peak(curves)
    assert peak["val_ndcg"] == pytest.approx(0.15) and mean_of_maxima == pytest.approx(0.20)


def test_ties_go_to_the_earlier_epoch():
    assert mean_curve_peak([[0.2, 0.2, 0.1]])["epoch"] == 1
