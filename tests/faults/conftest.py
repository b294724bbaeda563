"""Fault-injection suite: each case a careless or hostile user could cause.

Bounded loops only (every wait has a deadline), local addresses only (127.0.0.1).
"""

from __future__ import annotations

import sys
from pathlib import Path

# The suite shares tests/helpers_models.py with the other tests.
_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
