"""`python -m speechunits.cli ...` (what `torchrun -m speechunits.cli train ...` runs)."""

import sys

from speechunits.cli import main

sys.exit(main())
