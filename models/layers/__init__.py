"""LayerForge's own Keras layers, registered under the ``layerforge`` package.

Every layer here is a registered Keras serializable and round-trips its config
like any built-in layer, so graphs that use it save, load and export exactly.
"""
from models.layers.basic import Squash  # noqa: F401
from models.layers.experts import MixtureOfExperts  # noqa: F401
from models.layers.graphs import GraphAttention, GraphConv, MaskedAccuracy, MessagePassing  # noqa: F401
from models.layers.ode import ODEBlock  # noqa: F401
from models.layers.capsules import (  # noqa: F401
    CapsuleLength,
    CapsuleMask,
    Capsules,
    MarginLoss,
    PrimaryCapsules,
    ReconstructionLoss,
)
from models.layers.memory import Memory  # noqa: F401
from models.layers.sequence import PositionEmbedding  # noqa: F401
from models.layers.contrastive import NTXent, nt_xent  # noqa: F401
from models.layers.diffusion import NoiseSchedule, TimestepEmbedding  # noqa: F401
from models.layers.rbm import RBM  # noqa: F401
from models.layers.som import SOM  # noqa: F401
from models.layers.variational import Sampling, gaussian_kl  # noqa: F401
