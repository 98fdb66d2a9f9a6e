"""Graph layers: message passing, graph convolution and graph attention, plus a masked accuracy.

Every layer here is called as ``layer(features, adjacency)``:

* ``features``: ``[batch, nodes, channels]``, one feature vector per node;
* ``adjacency``: ``[batch, nodes, nodes]``, ``adjacency[b, i, j] > 0`` when
  node ``i`` receives messages from node ``j`` (symmetric for an undirected
  graph; the value is the edge weight). Self loops are added by the layers
  whose maths wants them, so the adjacency need not hold them.

A batch is a batch of graphs of the same size (pad smaller ones with
isolated nodes); one graph is a batch of one. Node classification on a single
graph marks unlabelled nodes with the label ``-1``: the built-in
``SparseCategoricalCrossentropy(ignore_class=-1)`` skips them in the loss and
:class:`MaskedAccuracy` skips them in the accuracy.
"""
from __future__ import annotations

import keras
from keras import ops

AGGREGATIONS = ("mean", "sum", "max")
NORMALIZATIONS = ("symmetric", "mean", "sum")


class _GraphLayer(keras.layers.Layer):
    """What the graph layers share: units, activation, bias and kernel settings."""

    def __init__(self, units: int = 16, activation=None, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        if int(units) < 1:
            raise ValueError(f"{type(self).__name__} needs at least 1 unit; got {units}")
        self.units = int(units)
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def _kernel(self, name: str, shape) -> keras.Variable:
        return self.add_weight(name=name, shape=shape, initializer=self.kernel_initializer,
                               regularizer=self.kernel_regularizer)

    def _bias(self, width: int):
        if not self.use_bias:
            return None
        return self.add_weight(name="bias", shape=(width,), initializer=self.bias_initializer)

    def _finish(self, h):
        if self.bias is not None:
            h = h + self.bias
        return self.activation(h)

    def get_config(self):
        config = super().get_config()
        config.update({
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
        })
        return config


def _check_rank(layer, features_shape, adjacency_shape) -> int:
    """The number of feature channels, after checking both inputs' shapes."""
    name = type(layer).__name__
    if adjacency_shape is None:
        raise ValueError(f"{name} takes two inputs: node features and an adjacency matrix")
    if len(features_shape) != 3:
        raise ValueError(f"{name}: node features must be [batch, nodes, channels]; got "
                         f"{tuple(features_shape)}")
    if len(adjacency_shape) != 3:
        raise ValueError(f"{name}: the adjacency must be [batch, nodes, nodes]; got "
                         f"{tuple(adjacency_shape)}")
    nodes = {features_shape[1], adjacency_shape[1], adjacency_shape[2]} - {None}
    if len(nodes) > 1:
        raise ValueError(f"{name}: the features have {features_shape[1]} nodes but the adjacency "
                         f"is {adjacency_shape[1]} x {adjacency_shape[2]}")
    if features_shape[-1] is None:
        raise ValueError(f"{name}: the number of feature channels must be known")
    return int(features_shape[-1])


def _with_self_loops(adjacency):
    n = ops.shape(adjacency)[-1]
    eye = ops.eye(n, dtype=adjacency.dtype)
    # A self loop already present keeps its weight instead of doubling.
    return ops.maximum(adjacency, eye)


@keras.saving.register_keras_serializable(package="layerforge")
class MessagePassing(_GraphLayer):
    """Message passing: each node adds up (or averages) what its neighbours send, then updates itself.

    ``h_i' = activation(h_i W_self + AGG_{j in N(i)} a_ij h_j W_message + b)``,
    the general form of a graph neural network layer (Gilmer et al., 2017).
    The message is a learned projection of the neighbour's features; the
    aggregation is their weighted ``sum``, their ``mean`` (by weighted degree)
    or their element-wise ``max``; a node's own features reach it through a
    separate weight, so the layer can tell "me" from "my neighbours".

    Args:
        units: the size of each node's new feature vector.
        aggregation: ``"mean"``, ``"sum"`` or ``"max"``.
        activation: applied to the result.
        use_bias: add a learned bias.
    """

    def __init__(self, units: int = 16, aggregation: str = "mean", activation=None,
                 use_bias: bool = True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, **kwargs):
        super().__init__(units, activation, use_bias, kernel_initializer, bias_initializer,
                         kernel_regularizer, **kwargs)
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"MessagePassing aggregation must be one of {AGGREGATIONS}; "
                             f"got {aggregation!r}")
        self.aggregation = aggregation

    def build(self, features_shape, adjacency_shape=None):
        channels = _check_rank(self, features_shape, adjacency_shape)
        self.self_kernel = self._kernel("self_kernel", (channels, self.units))
        self.message_kernel = self._kernel("message_kernel", (channels, self.units))
        self.bias = self._bias(self.units)

    def call(self, features, adjacency):
        adjacency = ops.cast(adjacency, features.dtype)
        messages = ops.matmul(features, self.message_kernel)  # what each node sends
        if self.aggregation == "max":
            has_edge = ops.expand_dims(adjacency > 0, -1)  # [b, i, j, 1]
            weighted = ops.expand_dims(adjacency, -1) * ops.expand_dims(messages, 1)
            lowest = ops.convert_to_tensor(-1e9, dtype=features.dtype)
            gathered = ops.max(ops.where(has_edge, weighted, lowest), axis=2)
            # A node without neighbours receives nothing rather than -1e9.
            received = ops.where(ops.any(has_edge, axis=2), gathered, ops.zeros_like(gathered))
        else:
            received = ops.matmul(adjacency, messages)
            if self.aggregation == "mean":
                degree = ops.sum(adjacency, axis=-1, keepdims=True)
                received = received / ops.maximum(degree, 1e-9)
        return self._finish(ops.matmul(features, self.self_kernel) + received)

    def get_config(self):
        config = super().get_config()
        config["aggregation"] = self.aggregation
        return config


@keras.saving.register_keras_serializable(package="layerforge")
class GraphConv(_GraphLayer):
    """Graph convolution (Kipf & Welling): mix each node with its neighbours through the normalised adjacency.

    ``H' = activation(D^-1/2 (A + I) D^-1/2 H W + b)`` with the default
    ``"symmetric"`` normalisation: one weight matrix shared by every node, the
    self loop keeps a node's own features, and dividing by the square roots of
    both degrees stops well-connected nodes from dominating. ``"mean"`` uses
    ``D^-1 (A + I)`` (an average over the neighbourhood), ``"sum"`` no scaling.

    Args:
        units: the size of each node's new feature vector.
        normalization: ``"symmetric"``, ``"mean"`` or ``"sum"``.
        add_self_loops: add ``I`` to the adjacency first.
        activation: applied to the result.
        use_bias: add a learned bias.
    """

    def __init__(self, units: int = 16, normalization: str = "symmetric",
                 add_self_loops: bool = True, activation=None, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, **kwargs):
        super().__init__(units, activation, use_bias, kernel_initializer, bias_initializer,
                         kernel_regularizer, **kwargs)
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"GraphConv normalization must be one of {NORMALIZATIONS}; "
                             f"got {normalization!r}")
        self.normalization = normalization
        self.add_self_loops = bool(add_self_loops)

    def build(self, features_shape, adjacency_shape=None):
        channels = _check_rank(self, features_shape, adjacency_shape)
        self.kernel = self._kernel("kernel", (channels, self.units))
        self.bias = self._bias(self.units)

    def propagation(self, adjacency):
        """The normalised adjacency ``Â`` this layer multiplies by (``[batch, nodes, nodes]``)."""
        a = _with_self_loops(adjacency) if self.add_self_loops else adjacency
        degree = ops.sum(a, axis=-1)
        if self.normalization == "sum":
            return a
        if self.normalization == "mean":
            return a / ops.maximum(ops.expand_dims(degree, -1), 1e-9)
        scale = ops.where(degree > 0, ops.rsqrt(ops.maximum(degree, 1e-9)), ops.zeros_like(degree))
        return ops.expand_dims(scale, -1) * a * ops.expand_dims(scale, -2)

    def call(self, features, adjacency):
        a_hat = self.propagation(ops.cast(adjacency, features.dtype))
        return self._finish(ops.matmul(a_hat, ops.matmul(features, self.kernel)))

    def get_config(self):
        config = super().get_config()
        config.update({"normalization": self.normalization, "add_self_loops": self.add_self_loops})
        return config


@keras.saving.register_keras_serializable(package="layerforge")
class GraphAttention(_GraphLayer):
    """Graph attention (Velickovic et al.): each node weighs its neighbours by learned attention.

    Each head projects the features (``W h``), scores every edge with
    ``e_ij = LeakyReLU(a_dst . W h_i + a_src . W h_j)``, normalises the scores
    of each node's neighbours (its self loop included) with a softmax into
    ``alpha_ij``, and sums the neighbours' projections weighted by them. The
    heads are concatenated (``heads * units`` features) or averaged
    (``units``). Unlike :class:`GraphConv`, the weight of a neighbour depends on
    its features, not only on the degrees.

    Called with ``return_attention_scores=True`` it also returns ``alpha`` as
    ``[batch, heads, nodes, nodes]`` (each row sums to 1 over the node's
    neighbours), which :func:`models.attention.attention_maps` reads.

    Args:
        units: features per head.
        heads: the number of attention heads.
        concat_heads: concatenate the heads (else average them).
        dropout: the share of attention weights dropped while training.
        negative_slope: the LeakyReLU slope of the scores.
        add_self_loops: let each node attend to itself too.
        activation: applied to the result.
        use_bias: add a learned bias.
    """

    returns_attention_scores = True

    def __init__(self, units: int = 8, heads: int = 1, concat_heads: bool = True,
                 dropout: float = 0.0, negative_slope: float = 0.2, add_self_loops: bool = True,
                 activation=None, use_bias: bool = True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, seed: int | None = None,
                 **kwargs):
        super().__init__(units, activation, use_bias, kernel_initializer, bias_initializer,
                         kernel_regularizer, **kwargs)
        if int(heads) < 1:
            raise ValueError(f"GraphAttention needs at least 1 head; got {heads}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"GraphAttention dropout must be in [0, 1); got {dropout}")
        self.heads = int(heads)
        self.concat_heads = bool(concat_heads)
        self.dropout = float(dropout)
        self.negative_slope = float(negative_slope)
        self.add_self_loops = bool(add_self_loops)
        self.seed = seed
        self.attention_dropout = keras.layers.Dropout(self.dropout, seed=seed)

    def build(self, features_shape, adjacency_shape=None):
        channels = _check_rank(self, features_shape, adjacency_shape)
        self.kernel = self._kernel("kernel", (channels, self.heads * self.units))
        self.attention_source = self._kernel("attention_source", (self.heads, self.units))
        self.attention_target = self._kernel("attention_target", (self.heads, self.units))
        self.bias = self._bias(self.units * self.heads if self.concat_heads else self.units)

    def call(self, features, adjacency, return_attention_scores: bool = False, training=None):
        adjacency = ops.cast(adjacency, features.dtype)
        if self.add_self_loops:
            adjacency = _with_self_loops(adjacency)
        n = ops.shape(features)[1]
        projected = ops.reshape(ops.matmul(features, self.kernel), (-1, n, self.heads, self.units))
        as_target = ops.einsum("bnhu,hu->bhn", projected, self.attention_target)
        as_source = ops.einsum("bnhu,hu->bhn", projected, self.attention_source)
        scores = ops.leaky_relu(ops.expand_dims(as_target, -1) + ops.expand_dims(as_source, -2),
                                negative_slope=self.negative_slope)  # [b, h, i, j]
        edges = ops.expand_dims(adjacency > 0, 1)
        scores = ops.where(edges, scores, ops.full_like(scores, -1e9))
        alpha = ops.softmax(scores, axis=-1)
        # A node with no neighbours at all (no self loop either) attends to nothing.
        alpha = ops.where(edges, alpha, ops.zeros_like(alpha))
        mixed = ops.einsum("bhij,bjhu->bihu", self.attention_dropout(alpha, training=training),
                           projected)
        if self.concat_heads:
            out = ops.reshape(mixed, (-1, n, self.heads * self.units))
        else:
            out = ops.mean(mixed, axis=2)
        out = self._finish(out)
        if return_attention_scores:
            return out, alpha
        return out

    def get_config(self):
        config = super().get_config()
        config.update({"heads": self.heads, "concat_heads": self.concat_heads,
                       "dropout": self.dropout, "negative_slope": self.negative_slope,
                       "add_self_loops": self.add_self_loops, "seed": self.seed})
        return config


@keras.saving.register_keras_serializable(package="layerforge")
class MaskedAccuracy(keras.metrics.Mean):
    """Accuracy over the labelled targets only: targets equal to ``ignore_class`` are skipped.

    For node classification on one graph, where the unlabelled nodes carry
    the label ``-1``: the training accuracy then counts the labelled nodes and
    the test accuracy the others. Predictions are class scores (the arg-max
    is the predicted class).

    Args:
        ignore_class: the target value that means "no label".
        name: the metric's name in the logs (``accuracy`` by default, so the
            test split's value is ``test_accuracy``).
    """

    def __init__(self, ignore_class: int = -1, name: str = "accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.ignore_class = int(ignore_class)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.reshape(ops.cast(y_true, "int32"), ops.shape(y_pred)[:-1])
        labelled = ops.cast(ops.not_equal(y_true, self.ignore_class), self.dtype)
        if sample_weight is not None:
            labelled = labelled * ops.cast(ops.reshape(sample_weight, ops.shape(labelled)), self.dtype)
        hits = ops.cast(ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), y_true), self.dtype)
        return super().update_state(hits, sample_weight=labelled)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "ignore_class": self.ignore_class}


__all__ = ["MessagePassing", "GraphConv", "GraphAttention", "MaskedAccuracy"]
