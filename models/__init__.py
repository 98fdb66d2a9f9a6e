"""LayerForge's Qt-free core.

Importing this package is cheap: it loads neither TensorFlow nor Keras. Modules
that need Keras import it through :func:`models.backend.keras`, which loads
TensorFlow once, quietly.
"""
import os as _os

__version__ = "0.1.0"

# Users should not see TensorFlow's C++ log noise; they can still opt back in.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
_os.environ.setdefault("KERAS_BACKEND", "tensorflow")
