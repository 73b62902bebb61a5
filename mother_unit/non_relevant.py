"""The non-relevant commands of the protective interface (S; WELMEC 7.3 §4.3).

What the remote portal may ask the mother unit (the documented list is
``commands.NON_RELEVANT_COMMANDS``). Every handler here only reads, or sets
something that is not legally relevant (the portal's display language): none
touches the indication, a parameter, a pairing, the logbook or the event
counter. Answers are small and bounded (``CommandReply.data`` holds scalars, so
structured parts travel as JSON text); a handler never blocks the data path
for longer than building one reply (O(count · log n) hashes for the proofs).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from mother_unit.commands import Commands
from mother_unit.evidence import Evidence
from security_module.pairing_store import PairingStore
from security_module.type_approval import TypeApproval
from wire.messages import Command, CommandReply, InstrumentState

MAX_EXCERPT = 20
LANGUAGES = ("en", "de", "fr")


def _int_arg(command: Command, name: str, default: int) -> int:
    value = command.args.get(name, default)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


class NonRelevantCommands:
    """Handlers for the documented list; registered on :class:`Commands`."""

    def __init__(
        self,
        commands: Commands,
        evidence: Evidence,
        approval: TypeApproval,
        pairings: PairingStore,
        state: Callable[[], InstrumentState],
    ) -> None:
        self.evidence = evidence
        self.approval = approval
        self.pairings = pairings
        self.state = state
        self.display_language = "en"
        commands.register_non_relevant("get_twin", self.get_twin)
        commands.register_non_relevant("get_logbook_excerpt", self.get_logbook_excerpt)
        commands.register_non_relevant("set_display_language", self.set_display_language)

    async def get_twin(self, command: Command) -> CommandReply:
        state = self.state()
        logbook = self.evidence.logbook
        pairings = []
        for peer in self.pairings.peers():
            record = self.pairings.find(peer)
            if record is not None:
                pairings.append({k: str(v) for k, v in record.public_fields().items()})
        return CommandReply(
            command_id=command.command_id,
            ok=True,
            data={
                "instrument": state.instrument,
                "state": state.state,
                "event_counter": logbook.event_counter,
                "logbook_size": logbook.size,
                "pairings": json.dumps(pairings),
                "parameters": self.approval.parameters.model_dump_json(),
                "software_ids": json.dumps(state.software_ids),
                "software_approved": json.dumps(state.software_approved),
                "display_language": self.display_language,
            },
        )

    async def get_logbook_excerpt(self, command: Command) -> CommandReply:
        """The newest ``count`` entries below ``tree_size``, with inclusion proofs (RFC 9162)."""
        logbook = self.evidence.logbook
        size = _int_arg(command, "tree_size", logbook.size)
        if not 0 < size <= logbook.size:
            size = logbook.size
        count = max(1, min(MAX_EXCERPT, _int_arg(command, "count", MAX_EXCERPT)))
        first = max(0, size - count)
        lines = [logbook.entry(i).line().decode("utf-8") for i in range(first, size)]
        proofs = [
            [h.hex() for h in logbook.inclusion_proof(i, size).hashes] for i in range(first, size)
        ]
        return CommandReply(
            command_id=command.command_id,
            ok=True,
            data={
                "tree_size": size,
                "first": first,
                "entries": json.dumps(lines, ensure_ascii=False),
                "proofs": json.dumps(proofs),
            },
        )

    async def set_display_language(self, command: Command) -> CommandReply:
        language = command.args.get("language")
        if language not in LANGUAGES:
            return CommandReply(
                command_id=command.command_id, ok=False, message=f"languages: {LANGUAGES}"
            )
        self.display_language = str(language)
        return CommandReply(
            command_id=command.command_id, ok=True, data={"display_language": language}
        )
