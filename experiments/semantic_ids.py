"""Semantic IDs of the MovieLens-100K films: how well residual k-means codes of the MiniLM title
vectors group films (first-genre purity per code prefix, against the same codes shuffled over
films), how much of the vectors they keep, and how many films share a code tuple.

    python -m experiments.semantic_ids          # prints a table (a few seconds on 2 cores)
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def main() -> None:
    import reclib

    reclib.quiet()
    from reclib.data import load_movielens
    from reclib.features import (ResidualQuantizer, TextEncoder, codebook_usage, item_text, prefix_purity,
                                 semantic_ids)

    items = load_movielens("100k").items.sort_values("item_id")
    vectors = np.asarray(TextEncoder(show_progress=False).encode(item_text(items).tolist()), dtype=np.float64)
    first_genre = items["genres"].map(lambda g: g[0] if len(g) else "unknown").to_numpy()
    rows = []
    for n_codes in (16, 32, 64):
        quantizer = ResidualQuantizer(n_levels=3, n_codes=n_codes).fit(vectors)
        codes = quantizer.transform(vectors)
        shuffled = codes[np.random.default_rng(0).permutation(len(codes))]
        ids = semantic_ids(codes)
        rows.append({"codes per level": n_codes, "levels": 3,
                     "relative reconstruction error": quantizer.reconstruction_error(vectors),
                     "codebook usage (min over levels)": codebook_usage(codes, n_codes).min(),
                     "films sharing a tuple": int((ids[:, -1] > 0).sum()),
                     "purity@1": prefix_purity(codes, first_genre, 1),
                     "purity@1 shuffled": prefix_purity(shuffled, first_genre, 1),
                     "purity@2": prefix_purity(codes, first_genre, 2),
                     "purity@2 shuffled": prefix_purity(shuffled, first_genre, 2)})
    print(pd.DataFrame(rows).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
