import sys

from models.gallery import main

sys.exit(main())
