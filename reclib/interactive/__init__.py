"""Interactive recommendation (notebook 10): the recommend -> feedback -> update loop.

A seeded click simulator with ground truth from data (:class:`ClickSimulator`), policies that pick
slates and learn from clicks (popularity, greedy CF with ALS fold-in, epsilon-greedy, LinUCB and
linear Thompson sampling on reduced BERT item vectors, a free-text cold-start policy), the loop
itself (:func:`simulate`) and its offline check on logged events (:func:`replay`), and "because you
liked X" explanations (:func:`explain`). It may import every other stage; none imports it.
"""

from reclib.interactive.environment import ClickSimulator, interest_sentences
from reclib.interactive.explain import contributions, explain, nearest_texts
from reclib.interactive.loop import cumulative_curves, exposure, replay, simulate
from reclib.interactive.policies import (EpsilonGreedyPolicy, GreedyPolicy, LinUCBPolicy,
                                         LinearThompsonPolicy, Policy, PopularityPolicy, TextPolicy,
                                         arm_features)

__all__ = ["ClickSimulator", "EpsilonGreedyPolicy", "GreedyPolicy", "LinUCBPolicy",
           "LinearThompsonPolicy", "Policy", "PopularityPolicy", "TextPolicy", "arm_features",
           "contributions", "cumulative_curves", "explain", "exposure", "interest_sentences",
           "nearest_texts", "replay", "simulate"]
