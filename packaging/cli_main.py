"""The installed command line's entry point (``layerforge-cli train ...``, the same as ``layerforge``)."""
import sys

from models.cli import main

if __name__ == "__main__":
    sys.exit(main())
