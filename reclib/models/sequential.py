r"""Next-item recommenders on the common interface: :class:`SequentialRecommender` cuts each user's
items in time order into windows, trains a next-item encoder of
:mod:`reclib.models.sequence_encoders` (:class:`RecurrentRecommender`: GRU/LSTM;
:class:`SASRecRecommender`: SASRec; :class:`HSTURecommender`: HSTU) and scores users from their last window, explicit histories
or a per-user serving state (:class:`SequenceScoring`, shared with GPT-2 over items).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import keras
import numpy as np
import pandas as pd
import scipy.sparse as sp

from reclib.base import FitContext, user_batches
from reclib.checks import (ParameterTypeError, check_bool, check_choice, check_in_range, check_positive,
                           check_positive_int, require_columns)
from reclib.data.sequences import last_window, pad_histories, training_windows, user_sequences
from reclib.data.validation import validate_interactions
from reclib.features.content import ItemFeatures, check_item_features
from reclib.models.hstu import HSTU
from reclib.models.recommenders import KerasRecommender, Validate
from reclib.models.sequence_encoders import RecurrentEncoder, SASRec, SequenceModel, recurrent_step
from reclib.models.tasks import check_next_item_loss
from reclib.training.data import InBatchDataset

__all__ = ["HSTURecommender", "RecurrentRecommender", "SASRecRecommender", "SequenceScoring", "SequentialRecommender"]


#: the early-stopped epochs of the settings chosen on P3's validation event of ML-100K by
#: ``python -m experiments.tune_sequential`` (the search's numbers: README, "How the defaults were
#: chosen"); SASRec's settings and epochs come from the three-seed check instead
#: (``python -m experiments.sequential_seeds``; the epochs are the median of three seeds' early-stopped
#: epochs), since one seed's search could not separate its top candidates
SASREC_EPOCHS = 18
GRU_EPOCHS = 18
HSTU_EPOCHS = 19
#: rows per scoring call; shorter bulk calls are padded to it, single windows (serving) are not
ENCODE_BATCH = 256


class SequenceScoring:
    """What every next-item recommender shares once it can score code windows.

    A subclass sets ``sequences_`` (:func:`~reclib.data.sequences.user_sequences` of the fitted
    events, users in ``user_ids_`` order) and ``max_length``, and implements
    ``score_windows(windows (b, max_length)) -> (b, n_items)``. Then:

    - ``score(users)`` (through ``_score``) reads each user's last ``max_length`` items;
    - ``observe(events)`` returns a copy whose users' sequences also hold events that arrived
      after ``fit`` (no training; the fitted model is unchanged): its ``score`` / ``recommend``
      read them, as a served model would;
    - ``score_histories(lists of raw item ids, oldest first)`` scores explicit histories;
    - ``start_state(items)``, ``advance(state, item)``, ``state_scores(state)``: the real-time
      state of ``reclib.serving.RealTimeRecommender``, here the last ``max_length`` codes,
      re-encoded when scored (recurrent models override them with one step per event).
    """

    def score_windows(self, windows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _item_catalogue(self, interactions: pd.DataFrame) -> np.ndarray:
        """The items of ``item_features`` when given (events after ``fit`` may name items that
        were never in training), else those of ``interactions``."""
        features = getattr(self, "item_features_", None)
        return interactions[self.item_col].to_numpy() if features is None else features.item_ids

    def _store_sequences(self, interactions: pd.DataFrame) -> None:
        events = interactions[[self.user_col, self.item_col, self.timestamp_col]]
        self.events_ = events.reset_index(drop=True)
        self.sequences_ = user_sequences(events, self.item_encoder_.transform(events[self.item_col]),
                                         self.user_col, self.timestamp_col)

    def observe(self, events: pd.DataFrame):
        """A copy of this model whose users' sequences also hold ``events`` (known users and items,
        with timestamps); the fitted model itself never changes, and the copy shares its weights.

        Checked as ``fit`` checks its frame (no nulls, numeric finite timestamps, no duplicate
        (user, item, timestamp) row), and an event already held (from ``fit`` or an earlier
        ``observe`` of the model it is called on) is refused rather than counted twice.
        """
        self._check_fitted()
        key = [self.user_col, self.item_col, self.timestamp_col]
        validate_interactions(events, self.user_col, self.item_col, rating_col=None,
                              timestamp_col=self.timestamp_col, required=(self.timestamp_col,))
        self.user_encoder_.transform(events[self.user_col])       # unknown users/items raise, naming them
        self.item_encoder_.transform(events[self.item_col])
        stored = pd.MultiIndex.from_frame(events[key]).isin(pd.MultiIndex.from_frame(self.events_[key]))
        if stored.any():
            first = events.loc[stored, key].head(5)
            raise ValueError(f"{int(stored.sum())} event(s) of observe are already stored (from fit or an "
                             f"earlier observe); first:\n{first.to_string()}")
        observed = object.__new__(type(self))             # a shallow copy: the weights are shared
        observed.__dict__.update(self.__dict__)
        observed._store_sequences(pd.concat([self.events_, events[list(self.events_.columns)]], ignore_index=True))
        return observed

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.score_windows(last_window(self.sequences_, self.max_length)[users])

    def codes(self, items: Sequence[object]) -> np.ndarray:
        """(len(items),) item codes (index + 1) of raw ``items``; an unknown item raises, naming it."""
        items = list(items)
        if not items:
            return np.zeros(0, np.int64)
        return self.item_encoder_.transform(np.asarray(items)) + 1

    def score_histories(self, histories: Sequence[Sequence[object]]) -> np.ndarray:
        """(len(histories), n_items) next-item scores from explicit histories (raw ids, oldest first)."""
        self._check_fitted()
        return self.score_windows(pad_histories([self.codes(h) for h in histories], self.max_length))

    def start_state(self, items: Sequence[object]):
        """The state after ``items`` (raw ids, oldest first): the last ``max_length`` codes."""
        return deque(self.codes(items).tolist(), maxlen=self.max_length)

    def advance(self, state, item: object):
        """The state after one more event ``item``."""
        state.append(int(self.codes([item])[0]))
        return state

    def state_scores(self, state) -> np.ndarray:
        """(n_items,) next-item scores of one state."""
        return self.score_windows(pad_histories([list(state)], self.max_length))[0]


class SequentialRecommender(SequenceScoring, KerasRecommender):
    """A next-item encoder behind ``fit`` / ``score`` / ``recommend`` (raw ids in and out).

    ``fit(interactions, validate=None, item_features=None)`` needs a ``timestamp_col``: each
    user's items in time order (ties by item id) are cut into left-padded windows of
    ``max_length`` that end every ``stride`` events (default: ``max_length``, no overlap;
    :func:`~reclib.data.sequences.training_windows`) and the encoder learns the next item at
    every trained position. ``score(users)`` reads each user's last ``max_length`` fitted
    items and scores every catalogue item for the **next** event; ``score_histories(lists of raw
    item ids, oldest first)`` does the same for explicit histories (events after ``fit``).

    ``item_features``: an optional :class:`~reclib.features.content.ItemFeatures`. Its
    ``item_ids`` are the catalogue (items that never occur in training get an embedding that the
    softmax only ever pushes down, and events naming them can be observed later); its dense
    ``vectors`` (e.g. BERT title embeddings), if any, initialise the item embeddings: projected on
    their first ``embedding_dim`` principal components and scaled to the random initialiser's
    standard deviation (the table stays trainable).

    Scoring, ``observe`` and the real-time state: :class:`SequenceScoring`. The recipe's options
    ``normalize``, ``separate_output``, ``loss`` and ``calibration`` are those of
    :class:`~reclib.models.sequence_encoders.SequenceModel` (``loss="gbce"`` needs ``n_sampled``).
    """

    def __init__(self, max_length: int, embedding_dim: int, temperature: float, n_sampled: int | None,
                 epochs: int, batch_size: int, learning_rate: float, patience: int, monitor: str,
                 random_state: int, verbose: int, timestamp_col: str = "timestamp", stride: int | None = None,
                 *, normalize: bool = False, separate_output: bool = False, loss: str = "softmax",
                 calibration: float = 0.75, **columns: str) -> None:
        super().__init__(epochs, batch_size, learning_rate, patience, monitor, random_state, verbose, **columns)
        check_positive_int(max_length=max_length, embedding_dim=embedding_dim)
        if stride is not None:
            check_positive_int(stride=stride)
            if stride > max_length:
                raise ValueError(f"stride ({stride}) must be at most max_length ({max_length})")
        self.stride = stride
        check_positive(temperature=temperature)
        if n_sampled is not None:
            check_positive_int(n_sampled=n_sampled)
        if not isinstance(timestamp_col, str):
            raise ParameterTypeError(f"timestamp_col must be a column name, got {timestamp_col!r}")
        check_bool(normalize=normalize, separate_output=separate_output)
        check_next_item_loss(loss, n_sampled, calibration)
        self.max_length, self.embedding_dim, self.temperature = max_length, embedding_dim, temperature
        self.n_sampled, self.timestamp_col = n_sampled, timestamp_col
        self.normalize, self.separate_output, self.loss, self.calibration = normalize, separate_output, loss, calibration

    def _encoder_options(self) -> dict:
        """The keyword arguments every encoder of :mod:`reclib.models.sequence_encoders` takes."""
        return {"temperature": self.temperature, "n_sampled": self.n_sampled, "seed": self.random_state,
                "normalize": self.normalize, "separate_output": self.separate_output, "loss": self.loss,
                "calibration": self.calibration}

    # -- subclass hook --------------------------------------------------------------------------
    def _build_encoder(self, n_items: int) -> SequenceModel:
        raise NotImplementedError

    # -- fitting --------------------------------------------------------------------------------
    def fit(self, interactions: pd.DataFrame, validate: Validate | None = None, *,
            item_features: ItemFeatures | None = None) -> SequentialRecommender:
        """Fit on ``interactions`` (needs ``timestamp_col``); ``validate`` early-stops."""
        require_columns(interactions, self.user_col, self.item_col, self.timestamp_col)
        features = check_item_features(item_features, interactions, self.item_col, need=(),
                                       model=type(self).__name__)
        if features is not None and sp.issparse(features.vectors):
            raise ParameterTypeError(f"{type(self).__name__} initialises item embeddings from "
                                     "item_features.vectors, which must be a dense array")
        self.item_features_ = features
        return super().fit(interactions, validate)

    def _fit(self, context: FitContext) -> None:
        interactions = context.interactions
        self._store_sequences(interactions)
        inputs, targets = training_windows(self.sequences_, self.max_length, self.stride)
        if len(inputs) == 0:
            raise ValueError("no user has two events: a next-item model needs sequences of length >= 2")
        dataset = InBatchDataset({"items": inputs, "targets": targets}, min(self.batch_size, len(inputs)),
                                 random_state=self.random_state)
        n_items = len(self.item_ids_)

        def build() -> keras.Model:
            self.keras_model_ = self._build_encoder(n_items)
            self.keras_model_.build((None, self.max_length))
            if self.item_features_ is not None and self.item_features_.vectors is not None:
                self._initialise_items(self.keras_model_)
            return self.keras_model_

        self._train(build, dataset, context)
        self._export()

    def _initialise_items(self, model: SequenceModel) -> None:
        """Item embeddings from the feature vectors' top principal components (class doc)."""
        features = self.item_features_
        vectors = np.asarray(features.vectors, np.float64)[features.rows(self.item_ids_)]
        table = keras.ops.convert_to_numpy(model.item_embedding.embeddings)
        centred = vectors - vectors.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        projected = centred @ vt[:self.embedding_dim].T
        projected = np.pad(projected, ((0, 0), (0, self.embedding_dim - projected.shape[1])))
        projected *= table[1:].std() / max(projected.std(), 1e-12)
        table[1:] = projected
        model.item_embedding.embeddings.assign(table.astype("float32"))

    def _export(self) -> None:
        """Cache the item table (n_items, d) in NumPy for scoring and serving."""
        self.item_table_ = self._current_item_table().astype(np.float32)

    # -- scoring --------------------------------------------------------------------------------
    def encode(self, windows: np.ndarray) -> np.ndarray:
        """(b, d) hidden state at the last position of left-padded code windows (b, max_length)."""
        out = np.empty((len(windows), self.embedding_dim), np.float32)
        for batch in user_batches(len(windows), ENCODE_BATCH):
            rows = windows[batch]
            if 1 < len(rows) < ENCODE_BATCH:        # one shape for every bulk call: no retracing
                rows = np.pad(rows, ((0, ENCODE_BATCH - len(rows)), (0, 0)))
            hidden = self.keras_model_.predict_on_batch(rows)
            out[batch] = np.asarray(hidden)[:batch.stop - batch.start, -1, :]
        return out

    def score_windows(self, windows: np.ndarray) -> np.ndarray:
        return self.encode(windows) @ self._current_item_table().T

    def _current_item_table(self) -> np.ndarray:
        """(n_items, d) item table of the model as it is now (also mid-training, for ``validate``)."""
        return keras.ops.convert_to_numpy(self.keras_model_.item_table())


class RecurrentRecommender(SequentialRecommender):
    """Embedding + GRU/LSTM next-item recommender (:class:`RecurrentEncoder`).

    cell: ``"gru"`` or ``"lstm"``; the other arguments as :class:`SequentialRecommender` and
    :class:`RecurrentEncoder`; defaults chosen on validation (``GRU_EPOCHS``). The user's last hidden state is their **interest vector**
    (``interest_vectors``); a real-time update is one recurrent step in NumPy from the cached
    state (:func:`recurrent_step`), not a re-encoding of the history.
    """

    def __init__(self, cell: str = "gru", max_length: int = 50, embedding_dim: int = 128, dropout: float = 0.2,
                 temperature: float = 1.0, n_sampled: int | None = None, epochs: int = GRU_EPOCHS,
                 batch_size: int = 128, learning_rate: float = 5e-3, patience: int = 3, monitor: str = "ndcg", random_state: int = 42,
                 verbose: int = 0, timestamp_col: str = "timestamp", stride: int | None = None,
                 **columns: str) -> None:
        super().__init__(max_length, embedding_dim, temperature, n_sampled, epochs, batch_size, learning_rate,
                         patience, monitor, random_state, verbose, timestamp_col, stride, **columns)
        check_choice("cell", cell, ("gru", "lstm"))
        check_in_range("dropout", dropout, 0.0, 1.0, high_inclusive=False)
        self.cell, self.dropout = cell, dropout

    def _build_encoder(self, n_items: int) -> SequenceModel:
        return RecurrentEncoder(n_items, self.embedding_dim, self.cell, self.dropout, **self._encoder_options())

    def _export(self) -> None:
        super()._export()
        self.embedding_table_ = keras.ops.convert_to_numpy(self.keras_model_.item_embedding.embeddings)
        self.cell_weights_ = [np.asarray(w, np.float32) for w in self.keras_model_.recurrent.get_weights()]

    def interest_vectors(self, histories: Sequence[Sequence[object]]) -> np.ndarray:
        """(len(histories), d) last hidden states after each history (raw ids, oldest first)."""
        self._check_fitted()
        return self.encode(pad_histories([self.codes(h) for h in histories], self.max_length))

    def start_state(self, items: Sequence[object]):
        """The recurrent state after ``items`` (raw ids, oldest first), stepped in NumPy."""
        state = tuple(np.zeros((1, self.embedding_dim), np.float32) for _ in range(1 if self.cell == "gru" else 2))
        for code in self.codes(items)[-self.max_length:]:
            state = recurrent_step(self.cell, self.cell_weights_, self.embedding_table_[code][None], state)
        return state

    def advance(self, state, item: object):
        """One recurrent step with ``item``: O(d^2), independent of the history's length."""
        code = int(self.codes([item])[0])
        return recurrent_step(self.cell, self.cell_weights_, self.embedding_table_[code][None], state)

    def state_scores(self, state) -> np.ndarray:
        """(n_items,) scores of the state's hidden vector against the item table."""
        return state[0][0] @ self.item_table_.T


class _AttentionRecommender(SequentialRecommender):
    """A stack of ``n_blocks`` attention blocks of ``n_heads`` heads (SASRec, HSTU); a real-time
    update re-encodes the last ``max_length`` items."""

    def __init__(self, max_length: int, embedding_dim: int, n_blocks: int, n_heads: int, dropout: float,
                 temperature: float, n_sampled: int | None, epochs: int, batch_size: int, learning_rate: float,
                 patience: int, monitor: str, random_state: int, verbose: int, timestamp_col: str,
                 stride: int | None, **options) -> None:
        super().__init__(max_length, embedding_dim, temperature, n_sampled, epochs, batch_size, learning_rate,
                         patience, monitor, random_state, verbose, timestamp_col, stride, **options)
        check_positive_int(n_blocks=n_blocks, n_heads=n_heads)
        check_in_range("dropout", dropout, 0.0, 1.0, high_inclusive=False)
        if embedding_dim % n_heads:
            raise ValueError(f"embedding_dim ({embedding_dim}) must be divisible by n_heads ({n_heads})")
        self.n_blocks, self.n_heads, self.dropout = n_blocks, n_heads, dropout

    def _build_encoder(self, n_items: int) -> SequenceModel:
        return self.encoder_class(n_items, self.max_length, self.embedding_dim, self.n_blocks, self.n_heads,
                                  self.dropout, **self._encoder_options())


class SASRecRecommender(_AttentionRecommender):
    """SASRec next-item recommender (:class:`SASRec`); a real-time update re-encodes the last
    ``max_length`` items. Arguments as :class:`SequentialRecommender` and :class:`SASRec`;
    defaults chosen on validation (``SASREC_EPOCHS``)."""

    encoder_class = SASRec

    def __init__(self, max_length: int = 50, embedding_dim: int = 128, n_blocks: int = 2, n_heads: int = 2,
                 dropout: float = 0.2, temperature: float = 1.0, n_sampled: int | None = None,
                 epochs: int = SASREC_EPOCHS, batch_size: int = 128, learning_rate: float = 5e-3, patience: int = 3, monitor: str = "ndcg",
                 random_state: int = 42, verbose: int = 0, timestamp_col: str = "timestamp",
                 stride: int | None = None, *, normalize: bool = False, separate_output: bool = False,
                 loss: str = "softmax", calibration: float = 0.75, **columns: str) -> None:
        super().__init__(max_length, embedding_dim, n_blocks, n_heads, dropout, temperature, n_sampled, epochs,
                         batch_size, learning_rate, patience, monitor, random_state, verbose, timestamp_col, stride,
                         normalize=normalize, separate_output=separate_output, loss=loss, calibration=calibration,
                         **columns)


class HSTURecommender(_AttentionRecommender):
    """HSTU next-item recommender (:class:`~reclib.models.hstu.HSTU`): pointwise gated attention
    with relative position bias, L2-normalised vectors and a low softmax temperature by default
    (the paper's MovieLens setting). Arguments as :class:`SASRecRecommender`; defaults chosen on
    validation (``HSTU_EPOCHS``)."""

    encoder_class = HSTU

    def __init__(self, max_length: int = 50, embedding_dim: int = 64, n_blocks: int = 2, n_heads: int = 2,
                 dropout: float = 0.2, temperature: float = 0.05, n_sampled: int | None = None,
                 epochs: int = HSTU_EPOCHS, batch_size: int = 128, learning_rate: float = 5e-3, patience: int = 3,
                 monitor: str = "ndcg", random_state: int = 42, verbose: int = 0, timestamp_col: str = "timestamp",
                 stride: int | None = None, *, normalize: bool = True, separate_output: bool = False,
                 loss: str = "softmax", calibration: float = 0.75, **columns: str) -> None:
        super().__init__(max_length, embedding_dim, n_blocks, n_heads, dropout, temperature, n_sampled, epochs,
                         batch_size, learning_rate, patience, monitor, random_state, verbose, timestamp_col, stride,
                         normalize=normalize, separate_output=separate_output, loss=loss, calibration=calibration,
                         **columns)
