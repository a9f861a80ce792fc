"""Stage 2, collaborative filtering (notebooks 02 and 02b): baselines, neighbourhoods, factorisation.

Rating prediction (explicit feedback): :class:`BaselinePredictor`, :class:`NeighborhoodCF`,
:class:`BiasedMF` (SGD or ALS). Top-N ranking (implicit feedback): :class:`MostPopular`,
:class:`ItemKNN`, :class:`ImplicitALS`, :class:`BPR`, :class:`EASE`, :class:`RP3beta`. Checking a
derivation by numbers: :mod:`reclib.cf.checks`.
"""

from reclib.cf.baseline import BaselinePredictor, fit_biases
from reclib.cf.ease import EASE, ease_weights
from reclib.cf.graph import RP3beta, rp3beta_weights
from reclib.cf.bpr import BPR, bpr_loss_and_grads
from reclib.cf.checks import finite_difference, relative_error, worked_example, worked_example_frame
from reclib.cf.implicit import ImplicitALS, implicit_als_half_step, implicit_als_loss
from reclib.cf.mf import BiasedMF, als_half_step, mf_loss_and_grads
from reclib.cf.neighbors import ItemKNN, LastItemKNN, NeighborhoodCF, corated_similarity, cosine_item_similarity
from reclib.cf.popularity import MostPopular

__all__ = ["BPR", "EASE", "BaselinePredictor", "BiasedMF", "ImplicitALS", "ItemKNN", "LastItemKNN", "MostPopular",
           "NeighborhoodCF", "RP3beta", "als_half_step", "bpr_loss_and_grads", "corated_similarity",
           "cosine_item_similarity", "ease_weights", "finite_difference", "fit_biases", "implicit_als_half_step",
           "implicit_als_loss", "mf_loss_and_grads", "relative_error", "rp3beta_weights", "worked_example",
           "worked_example_frame"]
