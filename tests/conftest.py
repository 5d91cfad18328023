"""Suite-wide settings.

In CI (``CI`` set) Hypothesis runs derandomized: the same examples on every run, so a landing
never depends on which random cases one run happened to draw. Locally it explores freely and
remembers failures in ``.hypothesis/``.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=False)
if os.environ.get("CI"):
    settings.load_profile("ci")
