"""Experiment scripts built on reclib (grids, benchmarks against peers); not part of the library."""


def title_vectors(items):
    """(len(items), d) float32 MiniLM vectors of ``items``' titles and genres (``item_text``), in
    ``items``' row order: the item vectors the text-based experiments share."""
    import numpy as np

    from reclib.features import TextEncoder, item_text
    return np.asarray(TextEncoder(show_progress=False).encode(item_text(items).tolist()))
