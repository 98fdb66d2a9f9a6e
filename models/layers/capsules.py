"""Capsule network layers and losses (cheatsheet section 7.3.2).

A capsule is a small vector instead of a single number: its direction encodes
the pose of what it detects (position, slant, thickness) and its length, kept
below 1 by :func:`~models.layers.basic.squash`, how sure it is that the thing
is there. :class:`PrimaryCapsules` cuts a convolution's channels into such
vectors; :class:`Capsules` computes the higher capsules (one per class) from
them by routing by agreement; :class:`CapsuleLength` reads the class scores
off; :class:`CapsuleMask` and a few Dense layers make the reconstruction
decoder, whose error :class:`ReconstructionLoss` adds to the training loss;
:class:`MarginLoss` is the loss on the lengths.
"""
from __future__ import annotations

import keras
from keras import ops

from models.layers.basic import squash


def _pair(value, label: str) -> tuple[int, int]:
    """A kernel size or stride as Keras's Conv2D keeps it: a pair of ints."""
    if isinstance(value, int):
        return (value, value)
    pair = tuple(int(v) for v in value)
    if len(pair) != 2:
        raise ValueError(f"{label} must be one int or a pair of ints; got {value!r}")
    return pair


def _vector_length(vectors, epsilon: float):
    return ops.sqrt(ops.sum(ops.square(vectors), axis=-1) + epsilon)


@keras.saving.register_keras_serializable(package="layerforge")
class PrimaryCapsules(keras.layers.Layer):
    """Primary capsules: a convolution whose channels are grouped into squashed vectors.

    At each position of the feature map the convolution computes
    ``capsules * capsule_dim`` channels; each group of ``capsule_dim`` is one
    capsule. All positions' capsules are listed together, so a 6x6 map with 32
    capsule types gives 1152 capsules.

    Args:
        capsules: capsule types per position (the sheet uses 32).
        capsule_dim: the length of each capsule's vector (the sheet uses 8).
        kernel_size: the convolution's window (an int or a pair).
        strides: the convolution's step (an int or a pair).
        padding: ``"valid"`` or ``"same"``.
        kernel_initializer: the convolution's initializer.
        epsilon: keeps the squash finite for zero vectors.

    Output shape:
        ``(batch, positions * capsules, capsule_dim)``.
    """

    def __init__(self, capsules: int = 8, capsule_dim: int = 8, kernel_size=3, strides=1,
                 padding: str = "valid", kernel_initializer="glorot_uniform",
                 epsilon: float = 1e-7, **kwargs):
        super().__init__(**kwargs)
        if int(capsules) < 1 or int(capsule_dim) < 1:
            raise ValueError(f"capsules and capsule_dim must be at least 1; got {capsules} and "
                             f"{capsule_dim}")
        self.capsules = int(capsules)
        self.capsule_dim = int(capsule_dim)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        self.padding = padding
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.epsilon = float(epsilon)
        self.conv = keras.layers.Conv2D(self.capsules * self.capsule_dim, self.kernel_size,
                                        strides=self.strides, padding=padding,
                                        kernel_initializer=self.kernel_initializer, name="conv")

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError("PrimaryCapsules takes feature maps (batch, height, width, channels); "
                             f"got shape {tuple(input_shape)}")
        self.conv.build(input_shape)

    def call(self, inputs):
        maps = self.conv(inputs)
        vectors = ops.reshape(maps, (ops.shape(maps)[0], -1, self.capsule_dim))
        return squash(vectors, -1, self.epsilon)

    def compute_output_shape(self, input_shape):
        _, height, width, _ = self.conv.compute_output_shape(input_shape)
        count = None if height is None or width is None else height * width * self.capsules
        return (input_shape[0], count, self.capsule_dim)

    def get_config(self):
        config = super().get_config()
        config.update({
            "capsules": self.capsules, "capsule_dim": self.capsule_dim,
            "kernel_size": self.kernel_size, "strides": self.strides, "padding": self.padding,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "epsilon": self.epsilon,
        })
        return config


@keras.saving.register_keras_serializable(package="layerforge")
class Capsules(keras.layers.Layer):
    """Higher capsules from lower ones by dynamic routing (routing by agreement).

    Every lower capsule ``i`` predicts every higher capsule ``j`` through its
    own matrix: ``u_hat[i, j] = W[i, j] u[i]``. Routing then starts with equal
    coupling, and ``routings`` times: each higher capsule is the squashed,
    coupling-weighted sum of the predictions it gets, and each coupling grows
    with the agreement (dot product) between its prediction and that result.

    Args:
        capsules: the number of higher capsules (one per class: 10 for digits).
        capsule_dim: the length of each higher capsule's vector (the sheet uses 16).
        routings: how many rounds of routing (at least 1; the sheet's paper uses 3).
        kernel_initializer: for the prediction matrices ``W``.
        epsilon: keeps the squash finite for zero vectors.

    Input shape:
        ``(batch, lower_capsules, lower_dim)``.

    Output shape:
        ``(batch, capsules, capsule_dim)``.
    """

    def __init__(self, capsules: int = 10, capsule_dim: int = 16, routings: int = 3,
                 kernel_initializer=None, epsilon: float = 1e-7, **kwargs):
        super().__init__(**kwargs)
        if int(routings) < 1:
            raise ValueError(f"routings must be at least 1; got {routings}")
        if int(capsules) < 1 or int(capsule_dim) < 1:
            raise ValueError(f"capsules and capsule_dim must be at least 1; got {capsules} and "
                             f"{capsule_dim}")
        self.capsules = int(capsules)
        self.capsule_dim = int(capsule_dim)
        self.routings = int(routings)
        # Glorot would count all I*J matrices as fan-in and start with tiny predictions.
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or {"class_name": "RandomNormal", "config": {"stddev": 0.05}})
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[1] is None or input_shape[2] is None:
            raise ValueError("Capsules takes a known number of lower capsules, shaped (batch, "
                             f"capsules, dim); got shape {tuple(input_shape)}")
        self.kernel = self.add_weight(
            name="kernel", initializer=self.kernel_initializer,
            shape=(input_shape[1], self.capsules, self.capsule_dim, input_shape[2]))

    def call(self, inputs):
        predictions = ops.einsum("bik,ijdk->bijd", inputs, self.kernel)
        # Routing only decides how to mix the predictions: its rounds do not
        # backpropagate into W (as in the paper's reference code); the last mix does.
        fixed = ops.stop_gradient(predictions)
        logits = ops.zeros(ops.shape(predictions)[:3], dtype=predictions.dtype)
        for r in range(self.routings):
            coupling = ops.softmax(logits, axis=-1)  # each lower capsule shares itself out
            last = r == self.routings - 1
            total = ops.einsum("bij,bijd->bjd", coupling, predictions if last else fixed)
            outputs = squash(total, -1, self.epsilon)
            if not last:
                logits = logits + ops.einsum("bijd,bjd->bij", fixed, outputs)
        return outputs

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.capsules, self.capsule_dim)

    def get_config(self):
        config = super().get_config()
        config.update({
            "capsules": self.capsules, "capsule_dim": self.capsule_dim,
            "routings": self.routings,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "epsilon": self.epsilon,
        })
        return config


@keras.saving.register_keras_serializable(package="layerforge")
class CapsuleLength(keras.layers.Layer):
    """Each capsule's length: how sure it is that its class is present (0 to 1).

    Args:
        epsilon: keeps the square root's gradient finite at zero.

    Input shape ``(batch, capsules, dim)``; output shape ``(batch, capsules)``.
    """

    def __init__(self, epsilon: float = 1e-7, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, inputs):
        return _vector_length(inputs, self.epsilon)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1])

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="layerforge")
class CapsuleMask(keras.layers.Layer):
    """Keeps only the longest capsule's vector (zeroes the others) for the decoder.

    The decoder then has to rebuild the input from one class's pose vector,
    which makes that vector encode how the digit is drawn.

    Input and output shape: ``(batch, capsules, dim)``.
    """

    def call(self, inputs):
        lengths = ops.sum(ops.square(inputs), axis=-1)
        keep = ops.one_hot(ops.argmax(lengths, axis=-1), ops.shape(inputs)[1], dtype=inputs.dtype)
        return inputs * keep[..., None]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


@keras.saving.register_keras_serializable(package="layerforge")
class ReconstructionLoss(keras.layers.Layer):
    """Adds the decoder's reconstruction error to the training loss; passes the reconstruction on.

    Called on ``[target, reconstruction]`` (any shapes with the same number of
    values per sample). The added loss is ``weight`` times the sum of squared
    differences per sample, averaged over the batch, so the decoder is trained
    with the model's own loss and needs no target of its own.

    Args:
        weight: the scale of the error (the capsule paper uses 0.0005 for
            28x28 images, so that it does not drown the margin loss).
    """

    def __init__(self, weight: float = 0.0005, **kwargs):
        super().__init__(**kwargs)
        if float(weight) < 0:
            raise ValueError(f"weight must not be negative; got {weight}")
        self.weight = float(weight)

    def build(self, input_shape):
        target, reconstruction = _two_shapes(input_shape)
        sizes = [_size(target), _size(reconstruction)]
        if None not in sizes and sizes[0] != sizes[1]:
            raise ValueError(
                f"the reconstruction has {sizes[1]} values per sample (shape "
                f"{tuple(reconstruction[1:])}) but the target has {sizes[0]} (shape "
                f"{tuple(target[1:])}); make the decoder's last Dense layer {sizes[0]} units")

    def call(self, inputs):
        target, reconstruction = inputs
        flat_rec = ops.reshape(reconstruction, (ops.shape(reconstruction)[0], -1))
        flat_target = ops.cast(ops.reshape(target, ops.shape(flat_rec)), flat_rec.dtype)
        error = ops.sum(ops.square(flat_target - flat_rec), axis=-1)
        self.add_loss(self.weight * ops.mean(error))
        return reconstruction

    def compute_output_shape(self, input_shape):
        return tuple(_two_shapes(input_shape)[1])

    def get_config(self):
        return {**super().get_config(), "weight": self.weight}


def _two_shapes(input_shape):
    if not (isinstance(input_shape, (list, tuple)) and len(input_shape) == 2
            and isinstance(input_shape[0], (list, tuple))):
        raise ValueError("ReconstructionLoss takes two inputs: [target, reconstruction]")
    return input_shape


def _size(shape):
    size = 1
    for d in shape[1:]:
        if d is None:
            return None
        size *= int(d)
    return size


@keras.saving.register_keras_serializable(package="layerforge")
class MarginLoss(keras.losses.Loss):
    """The capsule margin loss on capsule lengths.

    For each class ``k``: ``T_k max(0, m_plus - |v_k|)^2 + down_weight (1 - T_k)
    max(0, |v_k| - m_minus)^2``, summed over classes: the right class's
    capsule should be longer than ``m_plus``, every other shorter than
    ``m_minus``. Targets are class indices (or one-hot rows).

    Args:
        m_plus: the length the right class's capsule should reach.
        m_minus: the length the other capsules should stay below.
        down_weight: how much the absent classes count (keeps all lengths from
            shrinking early in training).
    """

    def __init__(self, m_plus: float = 0.9, m_minus: float = 0.1, down_weight: float = 0.5,
                 reduction: str = "sum_over_batch_size", name: str = "margin_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.m_plus, self.m_minus, self.down_weight = float(m_plus), float(m_minus), float(down_weight)

    def call(self, y_true, y_pred):
        classes = y_pred.shape[-1]
        one_hot = (y_true.shape[-1] == classes and classes != 1
                   and len(y_true.shape) == len(y_pred.shape))
        if one_hot:
            present = ops.cast(y_true, y_pred.dtype)
        else:
            labels = ops.cast(ops.reshape(y_true, ops.shape(y_pred)[:-1]), "int32")
            present = ops.one_hot(labels, classes, dtype=y_pred.dtype)
        hit = present * ops.square(ops.relu(self.m_plus - y_pred))
        miss = (1.0 - present) * ops.square(ops.relu(y_pred - self.m_minus))
        return ops.sum(hit + self.down_weight * miss, axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update({"m_plus": self.m_plus, "m_minus": self.m_minus,
                       "down_weight": self.down_weight})
        return config


__all__ = ["PrimaryCapsules", "Capsules", "CapsuleLength", "CapsuleMask", "ReconstructionLoss",
           "MarginLoss"]
