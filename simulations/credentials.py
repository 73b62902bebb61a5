"""Whose broker credentials a scenario's clients use.

The broker authenticates every client and its ACL is keyed on the user name
(issue 10). The observer connects as the testbed's read-only ``observer``
tool; an attacker connects with the credentials the story gives it (a stolen
device password, the officer's workstation) or with none. The passwords are in
DIR/<user>/mqtt_password, read by the testbed's own helper.
"""

from __future__ import annotations

from pathlib import Path

from testbed.broker_config import OBSERVER, tool_address
from wire.settings import BrokerAddress

__all__ = ["OBSERVER", "credentials_of"]


def credentials_of(dir: Path, address: BrokerAddress, user: str) -> BrokerAddress:
    """``address`` with ``user``'s broker password from DIR (unchanged when there is none)."""
    return tool_address(dir, address, user)
