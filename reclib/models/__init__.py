"""Stages 5-7, deep models in Keras 3 (notebooks 04-07): written with ``keras.ops`` and Keras layers
only, so every model runs on the TensorFlow (default), JAX or PyTorch backend."""

from reclib.models.mlp import fit_binary_classifier, mlp_classifier

__all__ = ["fit_binary_classifier", "mlp_classifier"]
