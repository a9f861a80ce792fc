"""Stage 1, data preparation (notebook 01): loading, validation, cleaning, ids, splits, negatives."""

from reclib.data.clicks import build_click_dataset, click_split
from reclib.data.encoding import IdEncoder
from reclib.data.movielens import GENRES, MovieLens, content_hash, load_movielens
from reclib.data.reviews import load_womens_reviews
from reclib.data.sampling import NegativeSampler, sample_negatives
from reclib.data.synthetic import SyntheticImplicit, planted_sequences, synthetic_ctr_chunks
from reclib.data.splits import (chronological_split, cold_start_item_split, event_order, leave_last_out,
                                new_item_split, random_split, stratified_split)
from reclib.data.validation import (drop_duplicate_interactions, k_core, to_implicit,
                                    validate_interactions)

__all__ = ["GENRES", "IdEncoder", "build_click_dataset", "click_split", "MovieLens", "NegativeSampler", "chronological_split",
           "cold_start_item_split", "content_hash", "drop_duplicate_interactions", "event_order", "k_core",
           "leave_last_out", "load_movielens", "new_item_split", "load_womens_reviews", "random_split", "sample_negatives",
           "stratified_split", "to_implicit", "validate_interactions", "SyntheticImplicit", "planted_sequences", "synthetic_ctr_chunks"]
