import sys

from mcastkit.cli import main

sys.exit(main())
