"""reclib.figures: what makes a figure read badly in the book, and the check at display time."""

from __future__ import annotations

import re

import matplotlib
import numpy as np

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from reclib.figures import CHECK_VARIABLE, STYLE, _checked, figure_problems, figure_style  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _good(figsize=(6, 4)):
    fig, ax = plt.subplots(figsize=figsize)
    ax.plot([0, 1, 2], [2, 1, 0], label="falling")
    ax.set(title="a line", xlabel="x (days)", ylabel="y (count)")
    ax.legend(loc="upper right")
    return fig, ax


def test_a_titled_labelled_figure_has_no_problem():
    fig, _ = _good()
    assert figure_problems(fig) == []


def test_missing_title_and_labels_are_named():
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([0, 1], [0, 1])
    problems = figure_problems(fig)
    assert any("no title" in p for p in problems)
    assert any("x axis shows ticks but has no label" in p for p in problems)
    assert any("y axis shows ticks but has no label" in p for p in problems)


def test_a_suptitle_titles_every_panel_and_hidden_ticks_need_no_label():
    fig, axes = plt.subplots(1, 2, figsize=(8, 3), sharey=True)
    for ax in axes:
        ax.bar(["a", "b"], [1, 2])
        ax.set_xlabel("group")
    axes[0].set_ylabel("count")
    fig.suptitle("two panels")
    assert figure_problems(fig) == []


def test_a_legend_over_a_line_or_bars_is_found():
    fig, ax = _good()
    ax.legend(loc="upper left")              # the falling line starts in the upper left corner
    assert any("legend covers data" in p for p in figure_problems(fig))
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar(["a", "b", "c"], [3, 3, 3], label="bars")
    ax.set(title="bars", xlabel="group", ylabel="count")
    ax.legend(loc="center")
    assert any("legend covers data" in p for p in figure_problems(fig))
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1))       # outside the axes
    assert figure_problems(fig) == []


def test_text_too_small_once_shrunk_to_the_book_width():
    with matplotlib.rc_context(STYLE):
        fig, _ = _good(figsize=(16, 4))       # saved about 13.5 in wide: 11 pt ticks shrunk under 6 pt
        assert any(re.search(r"smallest text is [0-5]\.\d+ pt", p) for p in figure_problems(fig))
        fig, ax = _good(figsize=(9.5, 4))     # fits: 11 pt ticks shrunk to about 7.8 pt
        assert figure_problems(fig) == []
        # a legend outside the axes widens the saved (cropped) figure, which is what is shrunk
        ax.legend([f"a long legend entry number {i}" for i in range(1)], loc="upper left", bbox_to_anchor=(1.02, 1))
        assert any("smallest text" in p for p in figure_problems(fig))


def test_figure_legends_twins_steps_error_bars_and_empty_plots():
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([0, 1], [0, 1], label="rising")
    ax.set(title="t", xlabel="x", ylabel="y")
    fig.legend(loc="center")                 # over the middle of the rising line
    assert any("figure's legend covers data" in p for p in figure_problems(fig))
    fig, ax = plt.subplots(figsize=(6, 4))   # twin axes share the title of the axes they twin
    ax.plot([0, 1], [0, 1])
    ax.set(title="two scales", xlabel="x", ylabel="left")
    twin = ax.twinx()
    twin.plot([0, 1], [5, 3], color="tab:red")
    twin.set_ylabel("right")
    assert figure_problems(fig) == []
    fig, ax = plt.subplots(figsize=(6, 4))   # a step histogram's outline, not its bounding box
    ax.hist(np.r_[np.zeros(50), np.ones(5)], bins=10, histtype="step", label="counts")
    ax.set(title="steps", xlabel="value", ylabel="count")
    ax.legend(loc="upper center")
    assert figure_problems(fig) == []
    fig, ax = plt.subplots(figsize=(6, 4))   # error bars are data
    ax.errorbar([0, 1, 2], [0, 0, 0], yerr=[[0.1, 0.1, 0.1], [6, 6, 6]], fmt="none", label="intervals")
    ax.set(title="bars", xlabel="x", ylabel="y", ylim=(-1, 6))
    ax.legend(loc="upper center")
    assert any("legend covers data" in p for p in figure_problems(fig))
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([0, 1], [np.nan, np.nan])
    ax.set(title="empty", xlabel="x", ylabel="y")
    assert any("no finite value" in p for p in figure_problems(fig))


def test_a_colorbar_needs_a_label():
    fig, ax = plt.subplots(figsize=(5, 4))
    image = ax.imshow([[0, 1], [1, 0]])
    ax.set(title="heat", xlabel="x", ylabel="y")
    bar = fig.colorbar(image)
    assert any("y axis shows ticks but has no label" in p for p in figure_problems(fig))
    bar.set_label("value")
    assert figure_problems(fig) == []


def test_the_check_raises_only_when_asked(monkeypatch):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    drawn = []
    render = _checked(lambda figure: drawn.append(figure) or b"png")
    monkeypatch.delenv(CHECK_VARIABLE, raising=False)
    assert render(fig) == b"png"
    monkeypatch.setenv(CHECK_VARIABLE, "1")
    with pytest.raises(ValueError, match="would not read well in the book: .*no title"):
        render(fig)
    good, _ = _good()
    assert render(good) == b"png" and drawn == [fig, good]


def test_figure_style_outside_ipython_sets_only_the_style():
    with matplotlib.rc_context():
        figure_style()
        assert all(matplotlib.rcParams[key] == value for key, value in STYLE.items())


def test_every_model_of_the_course_has_its_own_colour():
    from reclib.figures import MODEL_COLOURS, model_colour

    assert len(set(MODEL_COLOURS.values())) == len(MODEL_COLOURS)
    assert model_colour("most popular") == model_colour("MostPopular") == MODEL_COLOURS["MostPopular"]
    assert model_colour("GPT-2 over items (transformers)") == MODEL_COLOURS["GPT-2 over items"]
    assert model_colour("BiasedMF (SGD)") == model_colour("BiasedMF (ALS)") == MODEL_COLOURS["BiasedMF"]
    assert model_colour("KNNBaseline (item)") != model_colour("KNNBaseline (user)")    # known names first
    assert model_colour("a model nobody named") == model_colour("a model nobody named")
    assert model_colour("a model nobody named") in MODEL_COLOURS.values()
