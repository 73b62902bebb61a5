"""A dishonest remote processing (test double for WELMEC 7.3 §4.4, OIML bulletin 2018 §4.3).

It is the approved code - so it computes and reports the *approved* software
identifier and signs with the real processing identity - except that every
converted volume comes out 0.2 % too large. Only the fixed test cases (the
type approval's known-answer tests) can catch it.

Started the same way as the real one, with this directory on PYTHONPATH::

    PYTHONPATH=tests/doubles python -m lying_processing --dir DIR --broker URL
"""

from __future__ import annotations

import sys

from remote_processing import service
from remote_processing.__main__ import cli
from remote_processing.conversion import ConversionParameters, convert

LIE_FACTOR = 1.002


def lying_convert(vm: float, p: float, t: float, params: ConversionParameters) -> float:
    return convert(vm, p, t, params) * LIE_FACTOR


service.convert = lying_convert  # type: ignore[attr-defined] # the installed package stays untouched: its identifier too

if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
