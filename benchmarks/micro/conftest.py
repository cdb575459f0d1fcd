"""The micro benchmarks' helper modules (machine_noise, py_baseline, ...) sit beside them; the suite imports in
importlib mode, which leaves this folder off sys.path, so it is put there for them."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
