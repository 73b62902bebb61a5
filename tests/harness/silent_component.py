"""A component that starts, never connects, and waits for SIGTERM (tests the online deadline)."""

from __future__ import annotations

import signal
import sys


def main() -> int:
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    return 0


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    sys.exit(main())
