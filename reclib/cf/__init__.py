"""Stage 2, collaborative filtering (notebook 02): baselines, neighbourhoods, factorisation."""

from reclib.cf.neighbors import ItemKNN, cosine_item_similarity
from reclib.cf.popularity import MostPopular

__all__ = ["ItemKNN", "MostPopular", "cosine_item_similarity"]
