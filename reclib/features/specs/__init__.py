"""Declare features once; every feature-interaction model consumes the same inputs.

Four kinds (as in DeepCTR): :class:`Categorical` (one value per row; vocabulary learned from
training data, index 0 for values never seen there), :class:`MultiCategorical` (a list per row,
e.g. genres; padded to the longest list, 0 = padding or unknown), :class:`Numeric` (a number,
standardised with the training mean and standard deviation) and :class:`Vector` (a pretrained
dense vector per row, e.g. a 384-d BERT title embedding).

Each spec knows how to ``fit(frame)`` (learn its vocabulary, statistics, list length or vector
table) and ``transform(frame)`` (its model input, a NumPy array). :class:`FeatureSpace` is a
container that loops over its specs; it fits *copies* of the declared specs, so one declaration
can serve several spaces. How a Keras model reads each kind (its ``keras.Input`` and field
embedding) lives in :mod:`reclib.models.feature_inputs` (DeepCTR's split of feature columns and
model inputs), so this stage never imports Keras.

Checks, at ``fit`` and at ``transform`` alike (each error names the column, the count and the
first rows by index label):

- a missing value (NaN, ``None``, ``<NA>``) anywhere is an error; so is ±inf in a numeric column
  or in a float categorical column. There is no implicit "missing" category: fill or drop first.
- a (multi-)categorical column holds values of one *kind*: ``int``, ``float``, ``str``, ``bool``
  or ``object`` (one other Python type). A column mixing kinds (``1`` and ``"1"``) is an error,
  and the kind seen at ``fit`` is remembered: a column fitted on ints and transformed on floats
  raises instead of mapping every value to unknown. A numeric column may switch between int and
  float (both are read as float64), not to or from bool.
- a :class:`Vector` table is read once at ``fit``: every vector numeric, one-dimensional, finite
  in float32 and of one length.
"""

from __future__ import annotations

from reclib.features.specs.base import FeatureSpec
from reclib.features.specs.dense import Numeric, Vector
from reclib.features.specs.space import FeatureSpace
from reclib.features.specs.vocabulary import Categorical, MultiCategorical

__all__ = ["Categorical", "FeatureSpace", "FeatureSpec", "MultiCategorical", "Numeric", "Vector"]
