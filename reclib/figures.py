"""One look for every figure in the notebooks, and a check that each figure can be read in the book.

:func:`figure_style`, called once near the top of a notebook, sets readable font sizes, shows
figures as PNG at twice the screen resolution (sharp on high-density screens and in the book),
and wraps the notebook's figure renderer with :func:`figure_problems`. When the environment sets
``RECLIB_CHECK_FIGURES=1`` (the notebook runner does, for ``make notebooks`` and the smoke runs
of ``make test``) a figure with a problem is not drawn: its cell shows a ``ValueError`` listing
the problems, which the runner reports as a failed cell.

:func:`figure_problems` is plain matplotlib and needs no notebook; what it asks of a figure:

- a title: every axes that holds data has one, or the figure has a ``suptitle``;
- labelled axes: an axis that shows tick labels has a label (colour bars included);
- finite data: an axes of lines plots at least one finite point;
- no legend over data: no line (points or the segments between them), marker, error bar, bar or
  step outline lies under an axes' legend or the figure's legend;
- readable text: once the figure, as saved (cropped to its content), is shrunk to the book's
  column (:data:`BOOK_WIDTH_INCHES`), no text is smaller than :data:`MIN_FONT_POINTS`.

:func:`model_colour` gives every model and policy of the course one colour, the same in every
figure of every notebook, so a reader can follow a model from figure to figure.
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["BOOK_WIDTH_INCHES", "CHECK_VARIABLE", "MIN_FONT_POINTS", "MODEL_COLOURS", "figure_problems", "figure_style",
           "model_colour"]

#: width of the book's article column in figure inches: the Book Theme's column is 688 CSS pixels
#: on a desktop screen and a figure drawn at 100 dpi is shown at one CSS pixel per dot, so 6.88 in
#: of figure fill it and a wider figure is shrunk by 6.88 / its width
BOOK_WIDTH_INCHES = 6.88
#: smallest font size, in points, that a figure may show once shrunk to the book's width (7 pt at
#: 100 dpi is about 10 CSS pixels)
MIN_FONT_POINTS = 7.0
#: environment variable that turns a figure's problems into an error when it is drawn
CHECK_VARIABLE = "RECLIB_CHECK_FIGURES"
#: the inline backend crops figures to their tight bounding box plus this margin on each side
_CROP_PAD_INCHES = 0.1

STYLE = {
    "figure.dpi": 100, "font.size": 12, "axes.titlesize": 13, "axes.labelsize": 12,
    "xtick.labelsize": 11, "ytick.labelsize": 11, "legend.fontsize": 11, "legend.framealpha": 0.9,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
}


def _along(points: np.ndarray) -> np.ndarray:
    """16 points along each segment of the polyline ``points`` ((n, 2)), so a box over a segment
    between two data points is found too."""
    if len(points) < 2:
        return points
    steps = np.linspace(0.0, 1.0, 16)[:, None, None]
    return (points[:-1] + steps * (points[1:] - points[:-1])).reshape(-1, 2)


def _data_points(ax: Any) -> list[np.ndarray]:
    """The display coordinates ((n, 2) arrays) of what ``ax`` plots: line points and the segments
    between them, scatter markers, error bars, and the outlines of patches other than rectangles
    (step histograms); rectangles (bars) are compared whole in :func:`_covers`. Filled bands
    (``fill_between``) are not data here: a legend may sit on a shaded interval."""
    from matplotlib.collections import LineCollection, PathCollection
    from matplotlib.patches import Rectangle

    found = []
    for line in ax.get_lines():
        xy = np.asarray(line.get_xydata(), dtype=float)
        if line.get_visible() and len(xy):
            points = line.get_transform().transform(xy)
            found.append(_along(points) if line.get_linestyle() not in ("None", "", " ") else points)
    for collection in ax.collections:
        if not collection.get_visible():
            continue
        if isinstance(collection, PathCollection):
            offsets = np.asarray(collection.get_offsets(), dtype=float).reshape(-1, 2)
            found.append(collection.get_offset_transform().transform(offsets))
        elif isinstance(collection, LineCollection):
            transform = collection.get_transform()
            found += [_along(transform.transform(np.asarray(seg, dtype=float)))
                      for seg in collection.get_segments() if len(seg)]
    for patch in ax.patches:
        if patch.get_visible() and not isinstance(patch, Rectangle):
            found.append(_along(patch.get_transform().transform(patch.get_path().vertices)))
    return [points[np.isfinite(points).all(axis=1)] for points in found]


def _covers(box: Any, ax: Any, renderer: Any) -> bool:
    """Whether ``box`` (a legend's extent, display units) lies over any data of ``ax``."""
    from matplotlib.patches import Rectangle

    for points in _data_points(ax):
        x, y = points[:, 0], points[:, 1]
        if np.any((x >= box.x0) & (x <= box.x1) & (y >= box.y0) & (y <= box.y1)):
            return True
    return any(patch.get_visible() and isinstance(patch, Rectangle)
               and patch.get_window_extent(renderer).overlaps(box) for patch in ax.patches)


def _visible_ticks(axis: Any) -> bool:
    return axis.get_visible() and any(label.get_visible() and label.get_text()
                                      for label in axis.get_ticklabels())


def _title_of(ax: Any, fig: Any) -> str:
    """The axes' title, else that of a twin drawn at the same place (``twinx``), else ''."""
    for other in [ax] + [o for o in fig.axes if o is not ax and o.get_position().bounds == ax.get_position().bounds]:
        title = other.get_title() or other.get_title("left")
        if title:
            return title
    return ""


def figure_problems(fig: Any) -> list[str]:
    """What keeps ``fig`` (a matplotlib ``Figure``) from reading well in the book; empty if nothing.

    Each problem is one sentence naming the axes by its title (or its position). The figure is
    drawn once on its own canvas to lay out ticks and legends; nothing in it is changed.
    """
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    problems = []
    suptitle = fig._suptitle.get_text() if fig._suptitle is not None else ""
    plotted = [ax for ax in fig.axes if ax.get_visible() and not hasattr(ax, "_colorbar")]
    for number, ax in enumerate(fig.axes, start=1):
        if not ax.get_visible():
            continue
        name = ax.get_title() or f"axes {number}"
        has_data = bool(ax.get_lines() or ax.collections or ax.patches or ax.images)
        if ax in plotted and has_data and not (_title_of(ax, fig) or suptitle):
            problems.append(f"{name} has no title (set_title, or a suptitle for the figure)")
        if ax.get_lines() and not (ax.collections or ax.patches or ax.images) \
                and not any(len(points) for points in _data_points(ax)):
            problems.append(f"{name} plots no finite value")
        for letter, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            if _visible_ticks(axis) and not axis.get_label_text():
                problems.append(f"{name}: the {letter} axis shows ticks but has no label")
        legend = ax.get_legend()
        if legend is not None and legend.get_visible() and ax in plotted \
                and _covers(legend.get_window_extent(renderer), ax, renderer):
            problems.append(f"{name}: the legend covers data (loc='best', or place it outside "
                            "with bbox_to_anchor)")
    for legend in fig.legends:
        if legend.get_visible() and any(_covers(legend.get_window_extent(renderer), ax, renderer)
                                        for ax in plotted):
            problems.append("the figure's legend covers data (place it outside the axes)")
    width = fig.get_tightbbox(renderer).width + 2 * _CROP_PAD_INCHES    # inches, as cropped
    scale = min(1.0, BOOK_WIDTH_INCHES / width)
    sizes = [text.get_fontsize() for text in fig.findobj(lambda a: hasattr(a, "get_fontsize"))
             if text.get_visible() and getattr(text, "get_text", lambda: "")()]
    if sizes and min(sizes) * scale < MIN_FONT_POINTS:
        problems.append(f"the smallest text is {min(sizes) * scale:.2f} pt at the book's width "
                        f"(at least {MIN_FONT_POINTS:g}): the figure is {width:.1f} in wide as "
                        f"saved; make it narrower or the text larger")
    return problems


def _checked(render: Callable[..., Any]) -> Callable[..., Any]:
    """``render`` (IPython's PNG formatter for figures), first raising on a figure's problems."""
    def render_checked(fig: Any, *args: Any, **kwargs: Any) -> Any:
        if os.environ.get(CHECK_VARIABLE) == "1":
            problems = figure_problems(fig)
            if problems:
                raise ValueError("this figure would not read well in the book: " + "; ".join(problems))
        return render(fig, *args, **kwargs)
    render_checked.reclib_checked = True
    return render_checked


def figure_style() -> None:
    """Set :data:`STYLE`, draw figures as 2x PNG, and check each figure as it is shown.

    Outside IPython only the style is set. Calling it again changes nothing more.
    """
    import matplotlib as mpl
    from matplotlib.figure import Figure

    mpl.rcParams.update(STYLE)
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    from matplotlib_inline.backend_inline import set_matplotlib_formats

    set_matplotlib_formats("retina")
    formatter = shell.display_formatter.formatters["image/png"]
    render = formatter.lookup_by_type(Figure)
    if not getattr(render, "reclib_checked", False):
        formatter.for_type(Figure, _checked(render))


#: one colour per model and policy of the course (matplotlib's tab20, tab20b and tab20c colours, none
#: too pale for a line on white), grouped by family: greys for popularity and chance, blues, oranges
#: and greens for the collaborative filters, cyans and pinks for content, reds and purples for the
#: deep models, dark tones for the sequence models, tab20b/c tones for the bandit policies
MODEL_COLOURS = {
    "MostPopular": "#7f7f7f", "oracle popularity": "#525252", "random": "#c7c7c7",
    "ItemKNN": "#8c564b", "KNNBaseline (item)": "#c49c94", "KNNBaseline (user)": "#e7969c",
    "BaselinePredictor": "#bcbd22", "BiasedMF": "#8ca252", "EASE": "#1f77b4", "ImplicitALS": "#ff7f0e",
    "BPR": "#2ca02c", "RP3beta": "#98df8a", "blend ALS + RP3beta": "#ffbb78",
    "genres": "#ce6dbd", "TF-IDF profile": "#6baed6", "BERT profile": "#17becf",
    "BERT -> ALS factors": "#e377c2", "hybrid CF + BERT": "#aec7e8",
    "GMF": "#c5b0d5", "NeuMF": "#9467bd", "two-tower + text": "#d62728", "two-tower, ids only": "#ff9896",
    "two-tower + text, no log-Q": "#7b4173",
    "SASRec": "#393b79", "SASRec + BERT init": "#6b6ecf", "GRU": "#637939", "HSTU": "#8c6d31",
    "GPT-2 over items": "#843c39", "generative retrieval": "#a55194", "title similarity to the last film": "#ad494a",
    "items similar to the last item": "#e7ba52",
    "greedy": "#bd9e39", "epsilon-greedy": "#e6550d", "LinUCB + text": "#3182bd", "Thompson + text": "#31a354",
    "text": "#756bb1",
}
_ALIASES = {"most popular": "MostPopular", "popularity": "MostPopular",
            "popularity among new films so far": "MostPopular", "random features": "random",
            "EASE (CF)": "EASE", "ImplicitALS (CF)": "ImplicitALS", "TF-IDF": "TF-IDF profile",
            "genre profile": "genres", "BERT -> CF factors": "BERT -> ALS factors",
            "hybrid ALS + BERT": "hybrid CF + BERT"}
_FALLBACK = sorted(set(MODEL_COLOURS.values()))


def model_colour(name: str) -> str:
    """The course's colour (``"#rrggbb"``) of the model or policy called ``name``.

    ``name`` is looked up as written, then as a known alias ("most popular" is ``MostPopular``),
    then without a trailing parenthesis ("GPT-2 over items (transformers)", "BiasedMF (SGD)").
    Another name gets a colour of the same palette chosen by a CRC-32 of the name: stable on
    every machine and run, but it may repeat a known model's colour.
    """
    for candidate in (name, re.sub(r"\s*\([^()]*\)$", "", name)):
        candidate = _ALIASES.get(candidate, candidate)
        if candidate in MODEL_COLOURS:
            return MODEL_COLOURS[candidate]
    return _FALLBACK[zlib.crc32(name.encode()) % len(_FALLBACK)]
