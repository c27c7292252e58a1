"""pytest setup shared by every molecule scenario's testinfra suite."""

import sys
from pathlib import Path

# Test helpers (molecule/shared/shipshape_testing.py) are importable from any scenario.
sys.path.insert(0, str(Path(__file__).parent / "shared"))
