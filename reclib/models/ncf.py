r"""Neural collaborative filtering (He et al. 2017): GMF, MLP and NeuMF in Keras 3.

- **GMF** generalises matrix factorisation: :math:`\hat y_{ui} = h^\top (p_u \odot q_i)`; with
  :math:`h = \mathbf 1` it is exactly the dot product :math:`p_u^\top q_i`.
- **MLP** concatenates the two embeddings and learns the interaction with a ReLU tower:
  :math:`\hat y_{ui} = h^\top \phi_L(\dots\phi_1([p'_u; q'_i]))`.
- **NeuMF** concatenates the GMF vector and the last MLP layer before the output
  :math:`h^\top [p_u \odot q_i;\ \phi_L(\dots)]`, each branch with its own embeddings.

The model outputs a *logit* :math:`\hat y_{ui}`; trained on the
:class:`~reclib.models.tasks.PointwiseTask` (binary cross-entropy on positives and sampled
negatives), :math:`\sigma(\hat y_{ui})` estimates P(interaction). :class:`PairwiseScorer` scores
a positive and a negative item with any scorer and trains on the
:class:`~reclib.models.tasks.PairwiseTask`, the BPR loss :math:`-\ln\sigma(\hat y_{ui} - \hat y_{uj})`.
Both models compute scores only: ``compute_loss`` delegates to their ``task``.
Only Keras layers and ``keras.ops`` are used: the models run on TensorFlow, JAX and PyTorch.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers, ops

from reclib.checks import (ParameterTypeError, check_choice, check_in_range, check_non_negative,
                           check_positive_int)
from reclib.models.layers import TableEmbedding, build_by_tracing
from reclib.models.mlp import check_layer_sizes
from reclib.models.tasks import PairwiseTask, PointwiseTask, total_loss

__all__ = ["NeuMF", "PairwiseScorer", "check_neumf_args"]

VARIANTS = ("gmf", "mlp", "neumf")


def check_neumf_args(variant: object, gmf_dim: object, mlp_dims: object, l2: object,
                     dropout: object) -> tuple[int, ...]:
    """Check the network arguments shared by :class:`NeuMF` and ``reclib.models.NCF``; return
    ``mlp_dims`` as a tuple. ``mlp_dims`` must be positive ints; for ``"mlp"`` and ``"neumf"``
    at least one, the first even (it is split between the user and item embeddings)."""
    check_choice("variant", variant, VARIANTS)
    check_positive_int(gmf_dim=gmf_dim)
    dims = check_layer_sizes("mlp_dims", mlp_dims, allow_empty=variant == "gmf")
    if variant != "gmf" and dims[0] % 2:
        raise ValueError(f"mlp_dims[0] must be even (split between user and item), got {mlp_dims}")
    check_non_negative(l2=l2)
    check_in_range("dropout", dropout, 0.0, 1.0, high_inclusive=False)
    return dims


@keras.saving.register_keras_serializable(package="reclib")
class NeuMF(keras.Model):
    """GMF, MLP or NeuMF scorer: inputs ``{"user": (b,), "item": (b,)}`` int indices -> logits (b,).

    Parameters
    ----------
    - n_users, n_items: embedding table sizes.
    - variant: ``"gmf"``, ``"mlp"`` or ``"neumf"``.
    - gmf_dim: GMF embedding size; mlp_dims: MLP layer sizes, the first being the size of the
      concatenated user and item embeddings (each gets half).
    - l2: L2 weight on the embeddings (>= 0); dropout: after each MLP layer, in [0, 1).

    Trained on labelled pairs ``({"user", "item"}, labels)`` with ``task`` (a :class:`PointwiseTask`).
    Every argument is checked (type, finiteness, range) before any layer is built.
    """

    def __init__(self, n_users: int, n_items: int, variant: str = "neumf", gmf_dim: int = 32,
                 mlp_dims: Sequence[int] = (64, 32, 16), l2: float = 0.0, dropout: float = 0.0,
                 **kwargs) -> None:
        check_positive_int(n_users=n_users, n_items=n_items)
        check_neumf_args(variant, gmf_dim, mlp_dims, l2, dropout)
        super().__init__(**kwargs)
        self.n_users, self.n_items, self.variant = n_users, n_items, variant
        self.gmf_dim, self.mlp_dims, self.l2, self.dropout = gmf_dim, tuple(mlp_dims), l2, dropout
        reg = keras.regularizers.L2(l2) if l2 else None
        init = keras.initializers.RandomNormal(stddev=0.01)

        def embedding(n: int, d: int, name: str) -> TableEmbedding:
            return TableEmbedding(n, d, embeddings_initializer=init, embeddings_regularizer=reg, name=name)

        if variant in ("gmf", "neumf"):
            self.gmf_user, self.gmf_item = embedding(n_users, gmf_dim, "gmf_user"), embedding(n_items, gmf_dim, "gmf_item")
        if variant in ("mlp", "neumf"):
            half = self.mlp_dims[0] // 2
            self.mlp_user, self.mlp_item = embedding(n_users, half, "mlp_user"), embedding(n_items, half, "mlp_item")
            self.tower = [layers.Dense(d, activation="relu", name=f"mlp_{j}") for j, d in enumerate(self.mlp_dims[1:])]
            self.tower_dropout = layers.Dropout(dropout)
        self.output_layer = layers.Dense(1, name="logit")
        self.task = PointwiseTask(name="pointwise")

    def build(self, input_shape) -> None:
        """Create the embeddings and layers ``call`` uses (``input_shape``: {"user": (b,), "item": (b,)})."""
        build_by_tracing(self, input_shape)

    def call(self, inputs, training: bool = False):
        user, item = inputs["user"], inputs["item"]
        branches = []
        if self.variant in ("gmf", "neumf"):
            branches.append(self.gmf_user(user) * self.gmf_item(item))
        if self.variant in ("mlp", "neumf"):
            x = ops.concatenate([self.mlp_user(user), self.mlp_item(item)], axis=-1)
            for layer in self.tower:
                x = self.tower_dropout(layer(x), training=training)
            branches.append(x)
        h = branches[0] if len(branches) == 1 else ops.concatenate(branches, axis=-1)
        return ops.squeeze(self.output_layer(h), axis=-1)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Binary cross-entropy of the logits against the labels ``y`` (the task), plus L2."""
        return total_loss(self, self.task.loss(y, y_pred, sample_weight))

    def get_config(self) -> dict:
        return {**super().get_config(), "n_users": self.n_users, "n_items": self.n_items,
                "variant": self.variant, "gmf_dim": self.gmf_dim, "mlp_dims": list(self.mlp_dims),
                "l2": self.l2, "dropout": self.dropout}


@keras.saving.register_keras_serializable(package="reclib")
class PairwiseScorer(keras.Model):
    """``{"user", "item", "negative"}`` -> ``{"positive": score(user, item), "negative":
    score(user, negative)}``, each (b,); trained on ``task`` (a :class:`PairwiseTask`: BPR), so
    the input pipeline yields inputs only.
    """

    def __init__(self, scorer: keras.Model, **kwargs) -> None:
        if not isinstance(scorer, keras.layers.Layer):
            raise ParameterTypeError(f"scorer must be a Keras model mapping {{'user', 'item'}} to "
                                     f"scores, got {type(scorer).__name__}")
        super().__init__(**kwargs)
        self.scorer = scorer
        self.task = PairwiseTask(name="pairwise")

    def build(self, input_shape) -> None:
        """Build the scorer (``input_shape``: {"user", "item", "negative"} -> (b,))."""
        build_by_tracing(self, input_shape)

    def call(self, inputs, training: bool = False):
        positive = self.scorer({"user": inputs["user"], "item": inputs["item"]}, training=training)
        negative = self.scorer({"user": inputs["user"], "item": inputs["negative"]}, training=training)
        return {"positive": positive, "negative": negative}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """BPR on the two scores (the task), plus the scorer's L2 penalties."""
        return total_loss(self, self.task.loss(y_pred["positive"], y_pred["negative"], sample_weight))

    def get_config(self) -> dict:
        return {**super().get_config(), "scorer": keras.saving.serialize_keras_object(self.scorer)}

    @classmethod
    def from_config(cls, config: dict) -> PairwiseScorer:
        """The model :meth:`get_config` describes, its ``scorer`` deserialised first."""
        config["scorer"] = keras.saving.deserialize_keras_object(config["scorer"])
        return cls(**config)
