import sys

from faceswap.cli import main

sys.exit(main())
