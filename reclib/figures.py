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
- no legend over data: no line point, marker or bar of the axes lies under its legend;
- readable text: after the figure is scaled to the book's text width (:data:`BOOK_WIDTH_INCHES`),
  no text is smaller than :data:`MIN_FONT_POINTS`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["BOOK_WIDTH_INCHES", "CHECK_VARIABLE", "MIN_FONT_POINTS", "figure_problems", "figure_style"]

#: width of the book's text column in inches (about 770 CSS pixels); wider figures are shrunk to it
BOOK_WIDTH_INCHES = 8.0
#: smallest font size, in points, that a figure may show once shrunk to the book's width
MIN_FONT_POINTS = 7.0
#: environment variable that turns a figure's problems into an error when it is drawn
CHECK_VARIABLE = "RECLIB_CHECK_FIGURES"

STYLE = {
    "figure.dpi": 100, "font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11,
    "xtick.labelsize": 10, "ytick.labelsize": 10, "legend.fontsize": 10, "legend.framealpha": 0.9,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
}


def _inside(box: Any, points: np.ndarray) -> bool:
    """Whether any of ``points`` ((n, 2), display units) lies inside ``box``."""
    x, y = points[:, 0], points[:, 1]
    return bool(np.any((x >= box.x0) & (x <= box.x1) & (y >= box.y0) & (y <= box.y1)))


def _data_in(ax: Any, box: Any, renderer: Any) -> bool:
    """Whether any line point, scatter marker or bar of ``ax`` lies inside ``box`` (display units)."""
    for line in ax.get_lines():
        xy = np.asarray(line.get_xydata(), dtype=float)
        if not line.get_visible() or not len(xy):
            continue
        points = line.get_transform().transform(xy)
        if line.get_linestyle() not in ("None", "", " ") and len(points) > 1:
            steps = np.linspace(0.0, 1.0, 16)[:, None, None]       # 16 points along each segment
            points = (points[:-1] + steps * (points[1:] - points[:-1])).reshape(-1, 2)
        if _inside(box, points[np.isfinite(points).all(axis=1)]):
            return True
    for collection in ax.collections:
        offsets = np.asarray(collection.get_offsets(), dtype=float)
        if (collection.get_visible() and offsets.ndim == 2 and len(offsets) > 1
                and _inside(box, collection.get_offset_transform().transform(offsets))):
            return True
    return any(patch.get_visible() and patch.get_window_extent(renderer).overlaps(box)
               for patch in ax.patches)


def _visible_ticks(axis: Any) -> bool:
    return axis.get_visible() and any(label.get_visible() and label.get_text()
                                      for label in axis.get_ticklabels())


def figure_problems(fig: Any) -> list[str]:
    """What keeps ``fig`` (a matplotlib ``Figure``) from reading well in the book; empty if nothing.

    Each problem is one sentence naming the axes by its title (or its position). The figure is
    drawn once on its own canvas to lay out ticks and legends; nothing in it is changed.
    """
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    problems = []
    suptitle = fig._suptitle.get_text() if fig._suptitle is not None else ""
    for number, ax in enumerate(fig.axes, start=1):
        if not ax.get_visible():
            continue
        name = ax.get_title() or f"axes {number}"
        is_colorbar = hasattr(ax, "_colorbar")
        has_data = bool(ax.get_lines() or ax.collections or ax.patches or ax.images)
        if has_data and not is_colorbar and not (ax.get_title() or ax.get_title("left") or suptitle):
            problems.append(f"{name} has no title (set_title, or a suptitle for the figure)")
        for letter, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            if _visible_ticks(axis) and not axis.get_label_text():
                problems.append(f"{name}: the {letter} axis shows ticks but has no label")
        legend = ax.get_legend()
        if legend is not None and legend.get_visible() and not is_colorbar:
            if _data_in(ax, legend.get_window_extent(renderer), renderer):
                problems.append(f"{name}: the legend covers data (loc='best', or place it outside "
                                "with bbox_to_anchor)")
    scale = min(1.0, BOOK_WIDTH_INCHES / fig.get_figwidth())
    sizes = [text.get_fontsize() for text in fig.findobj(lambda a: hasattr(a, "get_fontsize"))
             if text.get_visible() and getattr(text, "get_text", lambda: "")()]
    if sizes and min(sizes) * scale < MIN_FONT_POINTS:
        problems.append(f"the smallest text is {min(sizes) * scale:.1f} pt at the book's width "
                        f"(at least {MIN_FONT_POINTS:g}): make the figure narrower than "
                        f"{fig.get_figwidth():g} in or the text larger")
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
