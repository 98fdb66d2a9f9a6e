"""The layer catalog: every layer a user can place as a node, with what the editor needs.

The catalog is built from Keras itself (:func:`build_catalog`, which imports
TensorFlow) and cached as ``models/catalog.json``; the editor reads the cache
(:func:`load_catalog`, plain ``json``) so the palette opens without loading
TensorFlow. Each entry holds:

* ``class_name``, ``module``, ``registered_name``: exactly what
  ``keras.saving.serialize_keras_object`` writes for the layer, so a node made
  from the entry deserialises like any saved layer;
* ``category``, ``description`` (one line of our own), ``aliases``;
* ``inputs``: the port spec, i.e. how the layer is called with tensors;
* ``params``: editor metadata, one item per key of ``default_config``
  (except ``name``): ``name``, ``type``, ``default`` and optionally
  ``choices``, ``min``, ``max``, ``required``. Types are int, float, bool,
  str, choice, tuple (a list of numbers; Keras also takes a single int for
  most), activation/initializer/regularizer/constraint (a name from
  ``choices`` or a serialised Keras object), layer (a serialised layer),
  dtype, and any;
* ``default_config``: exactly ``get_config()`` of the layer built with its
  defaults (required arguments come from :data:`REQUIRED_DEFAULTS`).

Regenerate the cache with ``make catalog`` (``python -m models.catalog
--write``); ``--check`` exits 1 when the cache no longer matches Keras.
"""
from __future__ import annotations

import argparse
import copy
import functools
import inspect
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.graph import SLOT, Call, Graph, Node, Slot, snake_case

CATALOG_PATH = Path(__file__).with_name("catalog.json")
FORMAT = 1

# Palette order.
CATEGORIES = (
    "input",
    "core",
    "convolution",
    "pooling",
    "recurrent",
    "attention",
    "normalization",
    "regularization",
    "reshaping",
    "merging",
    "activation",
    "preprocessing",
    "layerforge",
)

# Public ``keras.layers`` classes that are not offered as nodes, and why.
EXCLUSIONS = {
    "Layer": "the abstract base class of all layers; it computes nothing by itself",
    "Wrapper": "abstract base of the wrapper layers; use Bidirectional or TimeDistributed",
    "Lambda": "runs arbitrary Python code, which cannot be saved and loaded safely",
    "LSTMCell": "one time step of an LSTM: an argument of RNN, not a graph node",
    "GRUCell": "one time step of a GRU: an argument of RNN, not a graph node",
    "SimpleRNNCell": "one time step of a SimpleRNN: an argument of RNN, not a graph node",
    "StackedRNNCells": "stacks cells into one cell for RNN: an argument, not a graph node",
    "TorchModuleWrapper": "wraps a PyTorch module; works only with the torch backend",
    "JaxLayer": "wraps JAX functions; works only with the jax backend",
    "FlaxLayer": "wraps a Flax module; works only with the jax backend",
    "TFSMLayer": "wraps an external SavedModel directory that a project file cannot carry",
    "Pipeline": "a container chaining preprocessing layers for tf.data; in a graph, chain the layers",
    "MaxNumBoundingBoxes": "only pads or trims bounding-box labels; it leaves image tensors unchanged",
}


@dataclass(frozen=True)
class _Inner:
    """A layer used as an argument of another (a wrapper's ``layer``, RNN's ``cell``)."""

    class_name: str
    kwargs: tuple = ()

    def build(self, keras):
        return getattr(keras.layers, self.class_name)(name=snake_case(self.class_name), **dict(self.kwargs))


def _inner(class_name: str, **kwargs) -> _Inner:
    return _Inner(class_name, tuple(sorted(kwargs.items())))


# Values for the constructor arguments that have no default (and a few that must
# be set for the layer to be built at all), chosen to be sensible starting points.
REQUIRED_DEFAULTS: dict[str, dict] = {
    "InputLayer": {"batch_shape": (None, 32)},
    "Activation": {"activation": "relu"},
    "AdaptiveAveragePooling1D": {"output_size": 4},
    "AdaptiveAveragePooling2D": {"output_size": (4, 4)},
    "AdaptiveAveragePooling3D": {"output_size": (4, 4, 4)},
    "AdaptiveMaxPooling1D": {"output_size": 4},
    "AdaptiveMaxPooling2D": {"output_size": (4, 4)},
    "AdaptiveMaxPooling3D": {"output_size": (4, 4, 4)},
    "AlphaDropout": {"rate": 0.1},
    "AveragePooling1D": {"pool_size": 2},
    "AveragePooling2D": {"pool_size": (2, 2)},
    "AveragePooling3D": {"pool_size": (2, 2, 2)},
    "Bidirectional": {"layer": _inner("LSTM", units=32)},
    "CategoryEncoding": {"num_tokens": 10},
    "CenterCrop": {"height": 224, "width": 224},
    "Conv1D": {"filters": 32, "kernel_size": 3},
    "Conv1DTranspose": {"filters": 32, "kernel_size": 3},
    "Conv2D": {"filters": 32, "kernel_size": (3, 3)},
    "Conv2DTranspose": {"filters": 32, "kernel_size": (3, 3)},
    "Conv3D": {"filters": 32, "kernel_size": (3, 3, 3)},
    "Conv3DTranspose": {"filters": 32, "kernel_size": (3, 3, 3)},
    "ConvLSTM1D": {"filters": 32, "kernel_size": 3},
    "ConvLSTM2D": {"filters": 32, "kernel_size": (3, 3)},
    "ConvLSTM3D": {"filters": 32, "kernel_size": (3, 3, 3)},
    "Dense": {"units": 32},
    "DepthwiseConv1D": {"kernel_size": 3},
    "DepthwiseConv2D": {"kernel_size": (3, 3)},
    "Discretization": {"num_bins": 4},
    "Dot": {"axes": -1},
    "Dropout": {"rate": 0.5},
    "EinsumDense": {"equation": "ab,bc->ac", "output_shape": 32},
    "Embedding": {"input_dim": 1000, "output_dim": 64},
    "GRU": {"units": 32},
    "GaussianDropout": {"rate": 0.1},
    "GaussianNoise": {"stddev": 0.1},
    "GroupQueryAttention": {"head_dim": 32, "num_query_heads": 8, "num_key_value_heads": 2},
    "HashedCrossing": {"num_bins": 32},
    "Hashing": {"num_bins": 32},
    "LSTM": {"units": 32},
    "MultiHeadAttention": {"num_heads": 4, "key_dim": 32},
    "Permute": {"dims": (2, 1)},
    "RNN": {"cell": _inner("SimpleRNNCell", units=32)},
    "RandomBrightness": {"factor": 0.2},
    "RandomColorDegeneration": {"factor": 0.5},
    "RandomContrast": {"factor": 0.2},
    "RandomCrop": {"height": 224, "width": 224},
    "RandomHue": {"factor": 0.2},
    "RandomPosterization": {"factor": 4},
    "RandomRotation": {"factor": 0.1},
    "RandomSaturation": {"factor": 0.5},
    "RandomSharpness": {"factor": 0.5},
    "RandomTranslation": {"height_factor": 0.1, "width_factor": 0.1},
    "RandomZoom": {"height_factor": 0.1},
    "RepeatVector": {"n": 4},
    "Rescaling": {"scale": 1.0 / 255.0},
    "Reshape": {"target_shape": (4, 8)},
    "Resizing": {"height": 224, "width": 224},
    "ReversibleEmbedding": {"input_dim": 1000, "output_dim": 64},
    "SeparableConv1D": {"filters": 32, "kernel_size": 3},
    "SeparableConv2D": {"filters": 32, "kernel_size": (3, 3)},
    "SimpleRNN": {"units": 32},
    "SpatialDropout1D": {"rate": 0.2},
    "SpatialDropout2D": {"rate": 0.2},
    "SpatialDropout3D": {"rate": 0.2},
    "SpectralNormalization": {"layer": _inner("Dense", units=32)},
    "TimeDistributed": {"layer": _inner("Dense", units=32)},
}

# Keras draws a fresh seed when these layers are built without one, so their
# get_config() changes on every build. The catalog stores None for these keys
# instead: it stays deterministic, and each node draws its own seed when its
# model is built (the seed is then saved with the model as usual).
DRAWN_SEEDS: dict[str, tuple] = {"RandomCrop": ("seed",)}

# One line each, in our own words. LayerForge's layers may instead rely on the
# first line of their class docstring.
DESCRIPTIONS = {
    # input / core
    "InputLayer": "Declares a model input: the shape and dtype of one tensor fed to the network.",
    "Dense": "Fully connected layer: each output is a weighted sum of all inputs plus a bias, then an activation.",
    "EinsumDense": "A dense projection written as an einsum equation, for mixing arbitrary tensor axes.",
    "Embedding": "Looks up a trainable vector for each integer token id.",
    "ReversibleEmbedding": "Token embedding whose matrix can also map hidden states back to vocabulary logits.",
    "Identity": "Passes its input through unchanged; handy as a named branch point.",
    "Masking": "Marks time steps whose features all equal a chosen value as padding, so later layers skip them.",
    # convolution
    "Conv1D": "Slides learnable filters along one axis, e.g. over the steps of a sequence or signal.",
    "Conv2D": "Slides learnable filters across the height and width of images or other grids.",
    "Conv3D": "Slides learnable filters through volumes or video (depth, height, width).",
    "Conv1DTranspose": "Learnable upsampling along one axis: the transposed counterpart of Conv1D.",
    "Conv2DTranspose": "Learnable upsampling of feature maps, as used in decoders and generators.",
    "Conv3DTranspose": "Learnable upsampling of volumes: the transposed counterpart of Conv3D.",
    "DepthwiseConv1D": "Filters each channel of a sequence on its own, without mixing channels.",
    "DepthwiseConv2D": "Filters each image channel on its own spatially, without mixing channels.",
    "SeparableConv1D": "A per-channel 1D convolution followed by a 1x1 channel mix; cheaper than Conv1D.",
    "SeparableConv2D": "Per-channel spatial filtering then a 1x1 channel mix; far fewer weights than Conv2D.",
    # pooling
    "MaxPooling1D": "Keeps the largest value of each window along the sequence, shortening it.",
    "MaxPooling2D": "Downsamples feature maps by taking the maximum of each spatial window.",
    "MaxPooling3D": "Downsamples volumes by taking the maximum of each 3D window.",
    "AveragePooling1D": "Replaces each window along the sequence by its mean, shortening it.",
    "AveragePooling2D": "Downsamples feature maps by averaging each spatial window.",
    "AveragePooling3D": "Downsamples volumes by averaging each 3D window.",
    "GlobalMaxPooling1D": "Reduces a sequence to one vector holding each channel's maximum over time.",
    "GlobalMaxPooling2D": "Reduces an image to one vector holding each channel's spatial maximum.",
    "GlobalMaxPooling3D": "Reduces a volume to one vector holding each channel's maximum.",
    "GlobalAveragePooling1D": "Reduces a sequence to one vector of per-channel means over time (honours masks).",
    "GlobalAveragePooling2D": "Averages each channel over height and width: the usual bridge from conv features to a classifier.",
    "GlobalAveragePooling3D": "Averages each channel over depth, height and width.",
    "AdaptiveAveragePooling1D": "Average pooling with windows chosen so the output has a fixed length.",
    "AdaptiveAveragePooling2D": "Average pooling to a fixed output height and width, whatever the input size.",
    "AdaptiveAveragePooling3D": "Average pooling to a fixed output volume, whatever the input size.",
    "AdaptiveMaxPooling1D": "Max pooling with windows chosen so the output has a fixed length.",
    "AdaptiveMaxPooling2D": "Max pooling to a fixed output height and width, whatever the input size.",
    "AdaptiveMaxPooling3D": "Max pooling to a fixed output volume, whatever the input size.",
    # recurrent
    "LSTM": "Long short-term memory: a gated recurrent layer that keeps information over long sequences.",
    "GRU": "Gated recurrent unit: a lighter gated RNN with update and reset gates.",
    "SimpleRNN": "The plain recurrent layer: each step's output is fed back as the next step's state.",
    "RNN": "Generic recurrent layer that runs a given RNN cell over a sequence.",
    "Bidirectional": "Runs a recurrent layer forwards and backwards over a sequence and merges both results.",
    "TimeDistributed": "Applies one inner layer to every time step separately, sharing its weights.",
    "ConvLSTM1D": "An LSTM whose gates are 1D convolutions, for sequences of 1D signals.",
    "ConvLSTM2D": "An LSTM whose gates are 2D convolutions, for sequences of images such as video.",
    "ConvLSTM3D": "An LSTM whose gates are 3D convolutions, for sequences of volumes.",
    # attention
    "Attention": "Dot-product attention: a query sequence attends over a value sequence (optional separate key).",
    "AdditiveAttention": "Additive attention: scores come from a tanh of query plus key rather than a dot product.",
    "MultiHeadAttention": "Transformer attention: several projected heads of query, key and value attend in parallel.",
    "GroupQueryAttention": "Multi-head attention where groups of query heads share key/value heads to save memory.",
    # normalization
    "BatchNormalization": "Normalises each feature with batch statistics in training and running averages at inference.",
    "LayerNormalization": "Normalises each sample across its features, independently of the batch.",
    "GroupNormalization": "Normalises groups of channels within each sample; works well with small batches.",
    "RMSNormalization": "Scales each sample by the root mean square of its features, without centring it.",
    "UnitNormalization": "Rescales each sample to unit L2 length along the chosen axes.",
    "SpectralNormalization": "Wraps a layer and divides its kernel by its largest singular value, e.g. for GAN critics.",
    # regularization
    "Dropout": "Zeroes a random fraction of values while training and scales up the rest.",
    "SpatialDropout1D": "Drops whole channels of a sequence while training rather than single values.",
    "SpatialDropout2D": "Drops whole feature maps of an image while training; suited to correlated pixels.",
    "SpatialDropout3D": "Drops whole channels of a volume while training.",
    "GaussianDropout": "Multiplies values by noise centred on 1 while training: a continuous dropout.",
    "GaussianNoise": "Adds zero-mean Gaussian noise while training, as a regulariser.",
    "AlphaDropout": "Dropout that keeps the inputs' mean and variance; meant to pair with SELU.",
    "ActivityRegularization": "Adds an L1/L2 penalty on the activations flowing through it to the loss.",
    # reshaping
    "Flatten": "Collapses every non-batch axis into one feature vector.",
    "Reshape": "Gives each sample a new shape with the same number of elements.",
    "Permute": "Reorders the non-batch axes, e.g. to swap time and features.",
    "RepeatVector": "Repeats a vector n times to form a sequence, e.g. to feed a decoder RNN.",
    "Cropping1D": "Trims steps from the start and end of a sequence.",
    "Cropping2D": "Trims rows and columns from the borders of images.",
    "Cropping3D": "Trims slices from the borders of volumes.",
    "ZeroPadding1D": "Pads a sequence with zeros at its start and end.",
    "ZeroPadding2D": "Adds rows and columns of zeros around images.",
    "ZeroPadding3D": "Adds zeros around volumes along all three spatial axes.",
    "UpSampling1D": "Repeats each time step a set number of times to lengthen a sequence.",
    "UpSampling2D": "Enlarges feature maps by repeating or interpolating pixels, with no weights.",
    "UpSampling3D": "Enlarges volumes by repeating voxels along each spatial axis.",
    # merging
    "Add": "Element-wise sum of two or more same-shaped tensors, as in residual connections.",
    "Subtract": "Element-wise difference of exactly two tensors: the first minus the second.",
    "Multiply": "Element-wise product of two or more tensors, e.g. for gating.",
    "Average": "Element-wise mean of two or more tensors, e.g. to ensemble branches.",
    "Maximum": "Element-wise maximum of two or more tensors.",
    "Minimum": "Element-wise minimum of two or more tensors.",
    "Concatenate": "Joins two or more tensors along one axis; all other axes must match.",
    "Dot": "Per-sample dot product of two tensors along chosen axes, optionally cosine-normalised.",
    # activation
    "Activation": "Applies a named activation function to every value.",
    "ReLU": "Rectified linear unit, with optional cap, threshold and negative slope.",
    "LeakyReLU": "A ReLU that lets a small fixed slope through for negative values.",
    "PReLU": "A ReLU whose negative slope is learned.",
    "ELU": "Exponential linear unit: a smooth negative part that levels off at -alpha.",
    "Softmax": "Turns scores into probabilities summing to 1 along an axis (honours masks).",
    # preprocessing: features and text
    "Normalization": "Standardises features to zero mean and unit variance; set mean/variance or call adapt() first.",
    "Discretization": "Buckets continuous values into integer bins; set the boundaries or call adapt() first.",
    "CategoryEncoding": "Turns integer category ids into one-hot, multi-hot or count vectors.",
    "Hashing": "Maps values to a fixed number of integer buckets by hashing, with no vocabulary.",
    "HashedCrossing": "Hashes each pair of values from two categorical features into crossed buckets.",
    "StringLookup": "Maps strings to integer ids through a vocabulary; set one or call adapt() first.",
    "IntegerLookup": "Maps arbitrary integers to contiguous ids through a vocabulary; set one or call adapt() first.",
    "TextVectorization": "Cleans, splits and indexes raw text into token ids or counts; set a vocabulary or call adapt() first.",
    # preprocessing: images
    "Rescaling": "Multiplies values by a scale and adds an offset, e.g. to bring pixels into [0, 1].",
    "Resizing": "Resizes images to a set height and width by interpolation, optionally keeping the aspect ratio.",
    "CenterCrop": "Cuts the central region of a set height and width out of each image.",
    "RandomCrop": "Crops a random region while training and the central region at inference.",
    "RandomFlip": "Mirrors images horizontally and/or vertically at random while training.",
    "RandomRotation": "Rotates images by a random angle while training.",
    "RandomZoom": "Zooms images in or out by a random amount while training.",
    "RandomTranslation": "Shifts images by a random offset while training, filling the exposed edge.",
    "RandomShear": "Shears images by a random amount along x and/or y while training.",
    "RandomPerspective": "Applies a random perspective warp to images while training.",
    "RandomElasticTransform": "Applies smooth random elastic distortions to images while training.",
    "RandomContrast": "Changes image contrast by a random factor while training.",
    "RandomBrightness": "Shifts image brightness by a random amount while training.",
    "RandomSaturation": "Changes colour saturation by a random factor while training.",
    "RandomHue": "Rotates the hue of images by a random amount while training.",
    "RandomColorDegeneration": "Blends images towards their grey version by a random amount while training.",
    "RandomColorJitter": "Random brightness, contrast, saturation and hue changes combined in one augmentation.",
    "RandomGrayscale": "Turns a random share of images grey while training.",
    "RandomInvert": "Inverts image colours at random while training.",
    "RandomPosterization": "Cuts the number of bits per colour channel at random while training.",
    "RandomSharpness": "Sharpens or softens images by a random amount while training.",
    "RandomGaussianBlur": "Blurs images with a Gaussian kernel of random strength while training.",
    "RandomErasing": "Blanks out random rectangles of images while training (cutout).",
    "AutoContrast": "Stretches each image's channels so they span the full value range.",
    "Equalization": "Equalises each image's histogram so its intensities spread out evenly.",
    "ContrastLimitedAdaptiveHistogramEqualization": "CLAHE: evens out contrast tile by tile, with a clip limit that keeps noise down.",
    "Solarization": "Inverts the pixels above a (random) threshold and can add a random brightness shift.",
    "AugMix": "AugMix: blends several randomly augmented versions of each image with the original.",
    "RandAugment": "Applies a few randomly chosen augmentations of a set strength to each image.",
    "CutMix": "Pastes a patch of another image in the batch into each image while training.",
    "MixUp": "Blends pairs of images in the batch with random weights while training.",
    # preprocessing: audio
    "MelSpectrogram": "Turns raw audio into a mel-scaled, optionally decibel, spectrogram.",
    "STFTSpectrogram": "Computes a short-time Fourier transform spectrogram of raw audio with convolution kernels.",
}

# Which keras.src package a layer lives in decides its category.
_MODULE_CATEGORIES = (
    ("keras.src.layers.core.input_layer", "input"),
    ("keras.src.layers.core", "core"),
    ("keras.src.layers.convolutional", "convolution"),
    ("keras.src.layers.pooling", "pooling"),
    ("keras.src.layers.rnn", "recurrent"),
    ("keras.src.layers.attention", "attention"),
    ("keras.src.layers.normalization", "normalization"),
    ("keras.src.layers.regularization", "regularization"),
    ("keras.src.layers.reshaping", "reshaping"),
    ("keras.src.layers.merging", "merging"),
    ("keras.src.layers.activations", "activation"),
    ("keras.src.layers.preprocessing", "preprocessing"),
    ("models.layers", "layerforge"),
)

# Port specs other than the usual single input. Merging layers get the
# variadic list spec from their category.
_SINGLE = {"kind": "single", "names": ["input"]}
_INPUTS = {
    "InputLayer": {"kind": "none"},
    "Subtract": {"kind": "list", "min": 2, "max": 2},
    "Dot": {"kind": "list", "min": 2, "max": 2},
    # HashedCrossing takes a list of exactly two features (its output shape needs two).
    "HashedCrossing": {"kind": "list", "min": 2, "max": 2},
    # Keras 3 calls these with one list: [query, value] or [query, value, key].
    "Attention": {"kind": "list", "names": ["query", "value", "key"], "min": 2, "max": 3},
    "AdditiveAttention": {"kind": "list", "names": ["query", "value", "key"], "min": 2, "max": 3},
    # call(query, value, key=None, ...)
    "MultiHeadAttention": {"kind": "positional", "names": ["query", "value"], "kwargs": ["key"]},
    "GroupQueryAttention": {"kind": "positional", "names": ["query", "value"], "kwargs": ["key"]},
    # layerforge: called on [target, reconstruction] (the decoder's error joins the loss).
    "ReconstructionLoss": {"kind": "list", "names": ["target", "reconstruction"], "min": 2, "max": 2},
    # call(inputs, count_weights=None): per-value weights for output_mode="count".
    "CategoryEncoding": {"kind": "positional", "names": ["input"], "kwargs": ["count_weights"]},
    # LayerForge's graph layers: call(features, adjacency).
    "MessagePassing": {"kind": "positional", "names": ["features", "adjacency"], "kwargs": []},
    "GraphConv": {"kind": "positional", "names": ["features", "adjacency"], "kwargs": []},
    "GraphAttention": {"kind": "positional", "names": ["features", "adjacency"], "kwargs": []},
}

PLAIN_TYPES = ("int", "float", "bool", "str", "choice", "tuple")

_PADDING = ["valid", "same"]
_DATA_FORMATS = ["channels_last", "channels_first"]
_RESIZE_INTERPOLATIONS = ["bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5"]
_AFFINE_INTERPOLATIONS = ["nearest", "bilinear"]
_FILL_MODES = ["reflect", "wrap", "constant", "nearest"]
_DTYPES = ["float32", "float16", "bfloat16", "float64", "int32", "int64", "uint8", "bool", "string",
           "mixed_float16", "mixed_bfloat16"]

# Curated parameter metadata by parameter name: applies to every layer that has it.
_PARAM_RULES: dict[str, dict] = {
    "padding": {"type": "choice", "choices": _PADDING},
    "data_format": {"type": "choice", "choices": _DATA_FORMATS, "default": "channels_last"},
    "fill_mode": {"type": "choice", "choices": _FILL_MODES},
    "interpolation": {"type": "choice", "choices": _AFFINE_INTERPOLATIONS},
    "merge_mode": {"type": "choice", "choices": ["concat", "sum", "mul", "ave", None]},
    "score_mode": {"type": "choice", "choices": ["dot", "concat"]},
    "use_cudnn": {"type": "choice", "choices": ["auto", True, False]},
    "oov_method": {"type": "choice", "choices": ["floormod", "hash"]},
    "vocabulary_dtype": {"type": "choice", "choices": ["int32", "int64"]},
    "standardize": {"type": "choice", "choices": ["lower_and_strip_punctuation", "lower",
                                                  "strip_punctuation", None]},
    "split": {"type": "choice", "choices": ["whitespace", "character", None]},
    "window": {"type": "choice", "choices": ["hann", "hamming", None]},
    "scaling": {"type": "choice", "choices": ["density", "spectrum", None]},
    "encoding": {"type": "str"},
    "rate": {"type": "float", "min": 0.0, "max": 1.0},
    "dropout": {"type": "float", "min": 0.0, "max": 1.0},
    "recurrent_dropout": {"type": "float", "min": 0.0, "max": 1.0},
    "momentum": {"type": "float", "min": 0.0, "max": 1.0},
    "renorm_momentum": {"type": "float", "min": 0.0, "max": 1.0},
    "epsilon": {"type": "float", "min": 0.0},
    "stddev": {"type": "float", "min": 0.0},
    "l1": {"type": "float", "min": 0.0},
    "l2": {"type": "float", "min": 0.0},
    "negative_slope": {"type": "float", "min": 0.0},
    "max_value": {"type": "float", "min": 0.0},
    "threshold": {"type": "float"},
    "logit_soft_cap": {"type": "float", "min": 0.0},
    "alpha": {"type": "float"},
    "seed": {"type": "int", "min": 0},
    "units": {"type": "int", "min": 1},
    "filters": {"type": "int", "min": 1},
    "groups": {"type": "int", "min": 1},
    "depth_multiplier": {"type": "int", "min": 1},
    "num_heads": {"type": "int", "min": 1},
    "key_dim": {"type": "int", "min": 1},
    "value_dim": {"type": "int", "min": 1},
    "head_dim": {"type": "int", "min": 1},
    "num_query_heads": {"type": "int", "min": 1},
    "num_key_value_heads": {"type": "int", "min": 1},
    "input_dim": {"type": "int", "min": 1},
    "output_dim": {"type": "int", "min": 1},
    "n": {"type": "int", "min": 1},
    "num_bins": {"type": "int", "min": 1},
    "num_tokens": {"type": "int", "min": 1},
    "max_tokens": {"type": "int", "min": 1},
    "output_sequence_length": {"type": "int", "min": 1},
    "ngrams": {"type": "int", "min": 1},
    "num_oov_indices": {"type": "int", "min": 0},
    "height": {"type": "int", "min": 1},
    "width": {"type": "int", "min": 1},
    "power_iterations": {"type": "int", "min": 1},
    "sliding_window": {"type": "int", "min": 1},
    "lora_rank": {"type": "int", "min": 1},
    "num_mel_bins": {"type": "int", "min": 1},
    "fft_length": {"type": "int", "min": 1},
    "frame_length": {"type": "int", "min": 1},
    "frame_step": {"type": "int", "min": 1},
    "sequence_length": {"type": "int", "min": 1},
    "sequence_stride": {"type": "int", "min": 1},
    "sampling_rate": {"type": "int", "min": 1},
    "kernel_size": {"type": "tuple"},
    "strides": {"type": "tuple"},
    "dilation_rate": {"type": "tuple"},
    "pool_size": {"type": "tuple"},
    "output_size": {"type": "tuple"},
    "output_padding": {"type": "tuple"},
    "noise_shape": {"type": "tuple"},
    "shared_axes": {"type": "tuple"},
    "target_shape": {"type": "tuple"},
    "dims": {"type": "tuple"},
    "batch_shape": {"type": "tuple"},
    "attention_axes": {"type": "tuple"},
    "value_range": {"type": "tuple"},
    "bin_boundaries": {"type": "tuple"},
    "dtype": {"type": "dtype", "choices": _DTYPES},
    "reverse_dtype": {"type": "dtype", "choices": _DTYPES},
    "layer": {"type": "layer"},
    "backward_layer": {"type": "layer"},
    "cell": {"type": "layer"},
    "activation": {"type": "activation"},
    "recurrent_activation": {"type": "activation"},
}

# Curated metadata for one parameter of one layer; wins over _PARAM_RULES.
_CLASS_PARAM_RULES: dict[tuple[str, str], dict] = {
    ("Conv1D", "padding"): {"choices": ["valid", "same", "causal"]},
    ("Resizing", "interpolation"): {"choices": _RESIZE_INTERPOLATIONS},
    ("UpSampling2D", "interpolation"): {"choices": _RESIZE_INTERPOLATIONS},
    ("AugMix", "interpolation"): {"choices": _RESIZE_INTERPOLATIONS},
    ("RandAugment", "interpolation"): {"choices": _RESIZE_INTERPOLATIONS},
    ("Resizing", "fill_mode"): {"choices": ["constant"]},
    ("RandomFlip", "mode"): {"type": "choice", "choices": ["horizontal", "vertical", "horizontal_and_vertical"]},
    ("STFTSpectrogram", "mode"): {"type": "choice",
                                  "choices": ["log", "magnitude", "psd", "real", "imag", "angle", "stft"]},
    ("CategoryEncoding", "output_mode"): {"type": "choice", "choices": ["one_hot", "multi_hot", "count"]},
    ("Hashing", "output_mode"): {"type": "choice", "choices": ["int", "one_hot", "multi_hot", "count"]},
    ("HashedCrossing", "output_mode"): {"type": "choice", "choices": ["int", "one_hot"]},
    ("Discretization", "output_mode"): {"type": "choice", "choices": ["int", "one_hot", "multi_hot", "count"]},
    ("StringLookup", "output_mode"): {"type": "choice",
                                      "choices": ["int", "one_hot", "multi_hot", "count", "tf_idf"]},
    ("IntegerLookup", "output_mode"): {"type": "choice",
                                       "choices": ["int", "one_hot", "multi_hot", "count", "tf_idf"]},
    ("TextVectorization", "output_mode"): {"type": "choice",
                                           "choices": ["int", "multi_hot", "count", "tf_idf"]},
    ("Dot", "axes"): {"type": "tuple"},
    ("Concatenate", "axis"): {"type": "int"},
    ("Normalization", "axis"): {"type": "tuple"},
    ("UnitNormalization", "axis"): {"type": "tuple"},
    ("LayerNormalization", "axis"): {"type": "tuple"},
    ("RMSNormalization", "axis"): {"type": "tuple"},
    ("EinsumDense", "output_shape"): {"type": "tuple"},
    ("MultiHeadAttention", "output_shape"): {"type": "tuple"},
    ("EinsumDense", "bias_axes"): {"type": "str"},
    ("Cropping1D", "cropping"): {"type": "tuple"},
    ("Cropping2D", "cropping"): {"type": "tuple"},
    ("Cropping3D", "cropping"): {"type": "tuple"},
    ("ZeroPadding1D", "padding"): {"type": "tuple", "choices": None},
    ("ZeroPadding3D", "padding"): {"type": "tuple", "choices": None},
    ("UpSampling1D", "size"): {"type": "int", "min": 1},
    ("UpSampling2D", "size"): {"type": "tuple"},
    ("UpSampling3D", "size"): {"type": "tuple"},
    ("Activation", "activation"): {"required": True},
    ("InputLayer", "batch_shape"): {"required": True},
    ("InputLayer", "sparse"): {"default": False},
    ("InputLayer", "ragged"): {"default": False},
    ("ZeroPadding2D", "padding"): {"type": "tuple", "choices": None, "default": [[1, 1], [1, 1]]},
    # Keras stores these resolved from other arguments when left as None.
    ("MelSpectrogram", "sequence_length"): {"default": 2048},
    ("MelSpectrogram", "max_freq"): {"type": "float", "default": 8000},
    ("MultiHeadAttention", "value_dim"): {"default": 32},
    # Keras stores pooling strides resolved: None means "the pool size".
    ("MaxPooling1D", "strides"): {"default": [2]},
    ("MaxPooling2D", "strides"): {"default": [2, 2]},
    ("MaxPooling3D", "strides"): {"default": [2, 2, 2]},
    ("AveragePooling1D", "strides"): {"default": [2]},
    ("AveragePooling2D", "strides"): {"default": [2, 2]},
    ("AveragePooling3D", "strides"): {"default": [2, 2, 2]},
    # LayerForge's graph, ODE and expert layers.
    ("MessagePassing", "aggregation"): {"type": "choice", "choices": ["mean", "sum", "max"]},
    ("GraphConv", "normalization"): {"type": "choice", "choices": ["symmetric", "mean", "sum"]},
    ("GraphAttention", "heads"): {"type": "int", "min": 1},
    ("ODEBlock", "units"): {"type": "tuple"},
    ("ODEBlock", "steps"): {"type": "int", "min": 1},
    ("ODEBlock", "t1"): {"type": "float", "min": 0.0},
    ("ODEBlock", "kinetic_weight"): {"type": "float", "min": 0.0},
    ("MixtureOfExperts", "num_experts"): {"type": "int", "min": 1},
    ("MixtureOfExperts", "top_k"): {"type": "int", "min": 1},
    ("MixtureOfExperts", "balance_weight"): {"type": "float", "min": 0.0},
    ("MixtureOfExperts", "noise_stddev"): {"type": "float", "min": 0.0},
}


class CatalogError(RuntimeError):
    """The catalog cannot be built or read; the message says what to do."""


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class CatalogEntry:
    """One layer the editor offers (read-only; :func:`make_node` copies what it needs)."""

    class_name: str
    module: str | None
    registered_name: str | None
    category: str
    description: str
    aliases: tuple
    inputs: dict
    params: tuple
    default_config: dict

    @classmethod
    def from_dict(cls, data: dict) -> "CatalogEntry":
        return cls(
            class_name=data["class_name"],
            module=data.get("module"),
            registered_name=data.get("registered_name"),
            category=data["category"],
            description=data["description"],
            aliases=tuple(data.get("aliases", ())),
            inputs=data["inputs"],
            params=tuple(data.get("params", ())),
            default_config=data["default_config"],
        )

    def param(self, name: str) -> dict | None:
        return next((p for p in self.params if p["name"] == name), None)

    @property
    def names(self) -> tuple:
        """Every name this entry answers to."""
        names = (self.class_name, *self.aliases)
        return names + ((self.registered_name,) if self.registered_name else ())


class Catalog:
    """The cached catalog, indexed by class name and alias.

    Args:
        data: the content of ``catalog.json`` (or of :func:`build_catalog`).
    """

    def __init__(self, data: dict):
        if data.get("format") != FORMAT:
            raise CatalogError(
                f"the layer catalog has format {data.get('format')!r}, expected {FORMAT}; "
                "run `make catalog` to regenerate it"
            )
        self.keras_version: str = data.get("keras_version", "")
        self.exclusions: dict = dict(data.get("exclusions", {}))
        self.entries: list[CatalogEntry] = [CatalogEntry.from_dict(e) for e in data["entries"]]
        self._index: dict[str, CatalogEntry] = {}
        for entry in self.entries:
            for name in entry.names:
                self._index.setdefault(name, entry)

    def get(self, name: str, default: Any = None) -> CatalogEntry | None:
        """The entry for a class name, alias or registered name, or ``default``."""
        return self._index.get(name, default)

    def __getitem__(self, name: str) -> CatalogEntry:
        entry = self._index.get(name)
        if entry is None:
            raise KeyError(f"the layer catalog has no layer called {name!r}")
        return entry

    def __contains__(self, name: str) -> bool:
        return name in self._index

    def __iter__(self):
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def categories(self) -> dict[str, list[CatalogEntry]]:
        """Entries grouped by category, categories in palette order, entries by name."""
        out: dict[str, list[CatalogEntry]] = {c: [] for c in CATEGORIES}
        for entry in sorted(self.entries, key=lambda e: e.class_name.lower()):
            out.setdefault(entry.category, []).append(entry)
        return {c: v for c, v in out.items() if v}

    def search(self, text: str) -> list[CatalogEntry]:
        """Entries whose name, alias, category or description contains ``text`` (any case).

        Name matches come first, then category matches, then description matches.
        """
        needle = text.strip().lower()
        if not needle:
            return list(self.entries)
        ranked = []
        for entry in self.entries:
            names = [n.lower() for n in entry.names]
            if any(n == needle for n in names):
                rank = 0
            elif any(n.startswith(needle) for n in names):
                rank = 1
            elif any(needle in n for n in names):
                rank = 2
            elif needle in entry.category:
                rank = 3
            elif needle in entry.description.lower():
                rank = 4
            else:
                continue
            ranked.append((rank, entry.class_name.lower(), entry))
        return [e for _, _, e in sorted(ranked, key=lambda r: r[:2])]


@functools.lru_cache(maxsize=4)
def _load(path: str) -> Catalog:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise CatalogError(f"the layer catalog {path} is missing; run `make catalog`") from None
    return Catalog(data)


def load_catalog(path: str | Path | None = None) -> Catalog:
    """The cached catalog from ``catalog.json``; reads it once per process. No TensorFlow."""
    return _load(str(path or CATALOG_PATH))


load_catalog.cache_clear = _load.cache_clear  # type: ignore[attr-defined]


def make_node(class_name: str, graph: Graph | None = None, catalog: Catalog | None = None) -> Node:
    """A new node for a catalog layer, with its default config and an empty call.

    Args:
        class_name: a class name or alias (``"Dense"``, ``"Convolution2D"``).
        graph: when given, the node's name is made unique in it (the node is
            not added; use :meth:`Graph.add_node`).
        catalog: the catalog to use; the cached one by default.

    Returns:
        The node. Its config is a copy of the entry's ``default_config``.
    """
    catalog = load_catalog() if catalog is None else catalog
    entry = catalog.get(class_name)
    if entry is None:
        raise CatalogError(f"there is no layer called {class_name!r} in the catalog")
    # The default config holds Keras's own default name (snake case of the class).
    base = entry.default_config.get("name") or snake_case(entry.class_name)
    name = graph.unique_name(base) if graph is not None else base
    config = copy.deepcopy(entry.default_config)
    config["name"] = name
    calls = [] if entry.inputs["kind"] == "none" else [call_for_inputs(entry.inputs)]
    return Node(
        name=name,
        class_name=entry.class_name,
        config=config,
        module=entry.module,
        registered_name=entry.registered_name,
        calls=calls,
    )


def call_for_inputs(spec: dict) -> Call:
    """An unconnected :class:`Call` shaped by a port spec."""
    kind = spec["kind"]
    if kind == "single":
        return Call(args=[{SLOT: 0}], slots=[Slot(spec.get("names", ["input"])[0])])
    if kind == "list":
        lo, hi = spec["min"], spec["max"]
        names = spec.get("names")
        if names:
            # Named lists (Attention) are laid out in full; the slots past
            # ``min`` are optional and dropped from the list while unconnected.
            slots = [Slot(n, optional=i >= lo) for i, n in enumerate(names)]
            return Call(args=[[{SLOT: i} for i in range(len(slots))]], slots=slots)
        slots = [Slot("input" if i == 0 else f"input_{i}") for i in range(lo)]
        return Call(
            args=[[{SLOT: i} for i in range(lo)]],
            slots=slots,
            variadic=hi is None or hi > lo,
        )
    if kind == "positional":
        names = list(spec["names"])
        slots = [Slot(n) for n in names]
        kwargs = {}
        for key in spec.get("kwargs", []):
            kwargs[key] = {SLOT: len(slots)}
            slots.append(Slot(key, optional=True))
        return Call(args=[{SLOT: i} for i in range(len(names))], kwargs=kwargs, slots=slots)
    raise CatalogError(f"unknown input kind {kind!r} in the layer catalog")


# --------------------------------------------------------------------------- building


def _keras():
    from models import backend

    return backend.keras()


def _jsonable(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(value))


def _public_layer_classes(keras) -> dict[type, list[str]]:
    """Each public Layer subclass in ``keras.layers`` with the names it is exported under."""
    out: dict[type, list[str]] = {}
    for name in sorted(dir(keras.layers)):
        obj = getattr(keras.layers, name)
        if name.startswith("_") or not inspect.isclass(obj) or not issubclass(obj, keras.layers.Layer):
            continue
        out.setdefault(obj, []).append(name)
    return out


def _layerforge_classes(keras) -> dict[type, list[str]]:
    import models.layers as lf

    out: dict[type, list[str]] = {}
    for name in sorted(dir(lf)):
        obj = getattr(lf, name)
        if not name.startswith("_") and inspect.isclass(obj) and issubclass(obj, keras.layers.Layer):
            out.setdefault(obj, []).append(name)
    return out


def _curated(table: dict, cls, names: list[str]) -> Any:
    """``table``'s value for a class under any of its names (exported or Python)."""
    for name in (*names, cls.__name__):
        if name in table:
            return table[name]
    return None


def _category(cls) -> str:
    for prefix, category in _MODULE_CATEGORIES:
        if cls.__module__ == prefix or cls.__module__.startswith(prefix + "."):
            return category
    raise CatalogError(
        f"{cls.__name__} lives in {cls.__module__}, which has no category; "
        "add it to _MODULE_CATEGORIES in models/catalog.py"
    )


def _description(cls, names: list[str], category: str) -> str:
    text = _curated(DESCRIPTIONS, cls, names)
    if text is None and category == "layerforge":
        doc = inspect.getdoc(cls) or ""
        text = doc.strip().splitlines()[0].strip() if doc.strip() else None
    if not text:
        raise CatalogError(
            f"{cls.__name__} has no description; add one line to DESCRIPTIONS in "
            "models/catalog.py, then run `make catalog`"
        )
    return text


def _inputs(cls, names: list[str], category: str) -> dict:
    spec = _curated(_INPUTS, cls, names)
    if spec is None and category == "merging":
        spec = {"kind": "list", "min": 2, "max": None}
    return copy.deepcopy(spec or _SINGLE)


def _instance(keras, cls, names: list[str]):
    kwargs = {}
    for key, value in (_curated(REQUIRED_DEFAULTS, cls, names) or {}).items():
        kwargs[key] = value.build(keras) if isinstance(value, _Inner) else value
    try:
        # Keras's own default name, fixed so the catalog does not depend on
        # how many layers this process has already made.
        return cls(name=snake_case(cls.__name__), **kwargs)
    except (TypeError, ValueError) as exc:
        raise CatalogError(
            f"{cls.__name__} could not be built with its defaults ({exc}); "
            "add its required arguments to REQUIRED_DEFAULTS in models/catalog.py"
        ) from exc


def _config(keras, layer) -> dict:
    config = layer.get_config()
    try:
        return _jsonable(config)
    except TypeError:
        # A value JSON cannot hold: let Keras serialise it the way .keras files do.
        return _jsonable(keras.saving.serialize_keras_object(layer)["config"])


@functools.lru_cache(maxsize=1)
def _vocabularies() -> dict[str, list[str]]:
    """The names Keras accepts for activations, initializers, regularizers and constraints."""
    keras = _keras()
    import numpy as np

    probe = np.linspace(-1.0, 1.0, 8, dtype="float32").reshape(2, 4)
    activations = []
    for name in sorted(dir(keras.activations)):
        if name.startswith("_") or name in ("get", "serialize", "deserialize"):
            continue
        try:
            keras.activations.get(name)(probe)
        except Exception:  # needs extra arguments (e.g. threshold): not usable by name
            continue
        activations.append(name)

    def lower_names(module, skip=()):
        return [
            n for n in sorted(dir(module))
            if n.islower() and not n.startswith("_") and n not in ("get", "serialize", "deserialize", *skip)
        ]

    return {
        "activation": activations,
        # "stft" is the Fourier basis of STFTSpectrogram, not a general-purpose initializer.
        "initializer": lower_names(keras.initializers, skip=("stft",)),
        "regularizer": lower_names(keras.regularizers),
        "constraint": lower_names(keras.constraints),
    }


def _infer_type(name: str, value: Any) -> str:
    for suffix, kind in (("_initializer", "initializer"), ("_regularizer", "regularizer"),
                         ("_constraint", "constraint")):
        if name.endswith(suffix):
            return kind
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (list, tuple)):
        return "tuple"
    return "any"


def _params(keras, cls, class_name: str, required: dict, config: dict) -> list[dict]:
    """Editor metadata for each key of ``config`` (except ``name``), constructor order first."""
    own = {
        p.name: p for p in list(inspect.signature(cls.__init__).parameters.values())[1:]
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    base = {p.name: p for p in inspect.signature(keras.layers.Layer.__init__).parameters.values()}
    vocab = _vocabularies()
    keys = [k for k in own if k in config] + [k for k in config if k not in own]
    out = []
    for key in keys:
        if key == "name":
            continue
        meta: dict[str, Any] = {"name": key}
        sig = own.get(key) or base.get(key)
        is_required = sig is not None and sig.default is inspect.Parameter.empty
        if key in required:
            value = required[key]
            default = _jsonable(keras.saving.serialize_keras_object(value.build(keras))
                                if isinstance(value, _Inner) else value)
        elif sig is not None and not is_required:
            default = sig.default
            default = _jsonable(default) if _is_json(default) else config[key]
        else:
            default = config[key]
        rule = {**_PARAM_RULES.get(key, {}), **_CLASS_PARAM_RULES.get((class_name, key), {})}
        kind = rule.pop("type", None) or _infer_type(key, default if default is not None else config[key])
        if kind == "activation" and default is None:
            default = "linear"  # Keras stores "no activation" as "linear"
        if kind in vocab and "choices" not in rule:
            rule["choices"] = vocab[kind]
        stored = config[key]
        if kind == "tuple" and isinstance(default, int) and isinstance(stored, list):
            default = [default] * len(stored)  # Keras stores an int size per axis
        if _is_number(default) and _is_range(stored):
            # Keras stores a scalar strength as the [low, high] range it samples from.
            kind, default = "tuple", stored
        if kind in vocab and isinstance(default, str) and default not in rule["choices"]:
            rule["choices"] = [*rule["choices"], default]  # another spelling Keras accepts
        if "default" in rule:
            default = rule.pop("default")
        if rule.get("choices") is None:
            rule.pop("choices", None)
        meta["type"] = kind
        meta["default"] = default
        meta.update(rule)
        if is_required or rule.get("required"):
            meta["required"] = True
        out.append(meta)
    # Required parameters first: they are the ones a user is most likely to change.
    return sorted(out, key=lambda m: not m.get("required", False))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_range(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(_is_number(v) for v in value)


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _entry(keras, cls, names: list[str]) -> dict:
    category = _category(cls)
    layer = _instance(keras, cls, names)
    serialized = keras.saving.serialize_keras_object(layer)
    class_name = serialized["class_name"]
    config = _config(keras, layer)
    # A second build tells which values Keras draws at random.
    again = _config(keras, _instance(keras, cls, names))
    drawn = tuple(k for k in config if config[k] != again.get(k))
    if drawn != DRAWN_SEEDS.get(class_name, ()):
        raise CatalogError(
            f"{class_name}.get_config() draws {list(drawn)} anew on each build; "
            "list them in DRAWN_SEEDS in models/catalog.py if they are seeds"
        )
    for key in drawn:
        config[key] = None
    # Other names the class goes by: exported aliases and, where it differs
    # from the serialised name, the Python class name.
    aliases = sorted({*names, cls.__name__} - {class_name})
    required = _curated(REQUIRED_DEFAULTS, cls, names) or {}
    return {
        "class_name": class_name,
        "module": serialized["module"],
        "registered_name": serialized["registered_name"],
        "category": category,
        "description": _description(cls, names, category),
        "aliases": aliases,
        "inputs": _inputs(cls, names, category),
        "params": _params(keras, cls, class_name, required, config),
        "default_config": config,
    }


def build_catalog() -> dict:
    """Build the catalog from the installed Keras and LayerForge's own layers (imports Keras).

    Returns:
        The JSON-ready catalog: ``format``, ``keras_version``, ``exclusions`` and
        ``entries`` sorted by class name.
    """
    keras = _keras()
    classes = _public_layer_classes(keras)
    for cls, names in _layerforge_classes(keras).items():
        classes.setdefault(cls, names)
    entries = []
    for cls, names in classes.items():
        if cls.__name__ in EXCLUSIONS or any(n in EXCLUSIONS for n in names):
            continue
        entries.append(_entry(keras, cls, names))
    entries.sort(key=lambda e: e["class_name"])
    seen: dict[str, str] = {}
    for e in entries:
        for name in (e["class_name"], *e["aliases"]):
            if name in seen:
                raise CatalogError(f"{name!r} names both {seen[name]} and {e['class_name']}")
            seen[name] = e["class_name"]
    return {
        "format": FORMAT,
        "keras_version": keras.__version__,
        "exclusions": dict(sorted(EXCLUSIONS.items())),
        "entries": entries,
    }


def dumps(data: dict) -> str:
    """The stable text of a catalog: sorted keys, two-space indent, trailing newline."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.catalog", description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true", help=f"regenerate {CATALOG_PATH.name}")
    group.add_argument("--check", action="store_true", help="exit 1 if the cached catalog is stale")
    args = parser.parse_args(argv)
    text = dumps(build_catalog())
    if args.write:
        CATALOG_PATH.write_text(text, encoding="utf-8")
        print(f"wrote {CATALOG_PATH} ({len(json.loads(text)['entries'])} layers)")
        return 0
    current = CATALOG_PATH.read_text(encoding="utf-8") if CATALOG_PATH.exists() else ""
    if current != text:
        print(f"{CATALOG_PATH} is stale; run `make catalog`", file=sys.stderr)
        return 1
    print(f"{CATALOG_PATH} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
