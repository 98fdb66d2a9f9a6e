"""The installed studio's entry point: the desktop app (``LayerForge [FILE]``)."""
import sys

from desktop.app import main

if __name__ == "__main__":
    sys.exit(main())
