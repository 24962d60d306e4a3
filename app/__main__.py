"""`python -m app`: same as the `avacast` console script."""
import sys

from app.cli import main

sys.exit(main())
