"""LayerForge's Qt face: the desktop app over the Qt-free core in ``models``."""
