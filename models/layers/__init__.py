"""LayerForge's own Keras layers, registered under the ``layerforge`` package.

Every layer here is a registered Keras serializable and round-trips its config
like any built-in layer, so graphs that use it save, load and export exactly.
"""
from models.layers.basic import Squash  # noqa: F401
from models.layers.contrastive import NTXent, nt_xent  # noqa: F401
from models.layers.diffusion import NoiseSchedule, TimestepEmbedding  # noqa: F401
from models.layers.rbm import RBM  # noqa: F401
from models.layers.som import SOM  # noqa: F401
from models.layers.variational import Sampling, gaussian_kl  # noqa: F401
