import sys

from thothbot.cli import main

sys.exit(main())
