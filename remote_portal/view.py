"""The portal's picture of the instrument, fed from the broker: no I/O here.

Everything the portal shows comes from what the instrument publishes (retained
status, state, indication, checkpoint) or answers through the protective
interface. Every input is parsed with the wire models at the edge; anything
else is rejected and counted, never shown. Memory is bounded: a fixed number of
components and fixed-length histories (A_WEB_DOS: a flood of status topics
cannot grow the portal).

The indication shown here is a *copy*: it is not legally relevant (S, mixed
indication); the legally relevant indication is the mother unit's.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from remote_portal.logbook_check import LogbookExcerpt, VerifiedCheckpoint, check_checkpoint
from security_module.checkpoint import NoteVerifier
from security_module.errors import SecurityError
from security_module.type_approval import TypeApproval
from wire.codec import RejectedPayload, decode
from wire.messages import ComponentStatus, Indication, InstrumentState
from wire.topics import Topics

MAX_COMPONENTS = 64
HISTORY = 300  # points per chart
NOT_RELEVANT = "not legally relevant"


def approval_status(approval: TypeApproval, kind: str, software_id: str | None) -> str:
    """MID Annex I 8.3, P2/U2: is this identifier one the type approval lists for its kind?"""
    if kind not in approval.software_ids:
        return NOT_RELEVANT
    if software_id is None:
        return "unknown"
    return "approved" if software_id in approval.software_ids[kind] else "NOT APPROVED"


@dataclass
class InstrumentView:
    topics: Topics
    approval: TypeApproval
    checkpoint_verifier: NoteVerifier
    statuses: dict[str, ComponentStatus] = field(default_factory=dict)
    state: InstrumentState | None = None
    indication: Indication | None = None
    checkpoint: VerifiedCheckpoint | None = None
    checkpoint_problem: str | None = None
    excerpt: LogbookExcerpt | None = None
    mother_twin: dict[str, Any] = field(default_factory=dict)
    values: deque[tuple[float, float, float | None]] = field(
        default_factory=lambda: deque(maxlen=HISTORY)
    )
    t7: deque[tuple[float, float, float]] = field(default_factory=lambda: deque(maxlen=HISTORY))
    rejected: Counter[str] = field(default_factory=Counter)
    revision: int = 0
    connected: bool = False

    def _changed(self) -> None:
        self.revision += 1

    def set_connected(self, connected: bool) -> None:
        if connected != self.connected:
            self.connected = connected
            self._changed()

    # -- inputs from the broker ---------------------------------------------------------

    def feed(self, topic: str, payload: bytes) -> None:
        """One message from a subscribed topic; anything that does not parse is counted."""
        if not payload:
            return  # a cleared retained message
        try:
            if topic == self.topics.state:
                self._state(decode(InstrumentState, payload, topic))
            elif topic == self.topics.indication:
                self._indication(decode(Indication, payload, topic))
            elif topic == self.topics.checkpoint:
                self._checkpoint(payload)
            else:
                self._status(topic, decode(ComponentStatus, payload, topic))
        except RejectedPayload as e:
            self.rejected[e.reason] += 1

    def _status(self, topic: str, status: ComponentStatus) -> None:
        if topic != self.topics.status(status.component_id):
            self.rejected["wrong_topic"] += 1  # one component speaking for another
            return
        if status.component_id not in self.statuses and len(self.statuses) >= MAX_COMPONENTS:
            self.rejected["too_many_components"] += 1
            return
        self.statuses[status.component_id] = status
        self._changed()

    def _state(self, state: InstrumentState) -> None:
        if state.instrument != self.topics.instrument:
            self.rejected["other_instrument"] += 1
            return
        self.state = state
        if state.t7_ms:
            self.t7.append(
                (state.time, float(state.t7_ms.get("p50", 0.0)), float(state.t7_ms.get("p99", 0.0)))
            )
        self._changed()

    def _indication(self, indication: Indication) -> None:
        if indication.instrument != self.topics.instrument:
            self.rejected["other_instrument"] += 1
            return
        self.indication = indication
        self.values.append((indication.time, indication.vm, indication.vb))
        self._changed()

    def _checkpoint(self, payload: bytes) -> None:
        try:
            self.checkpoint = check_checkpoint(payload.decode("utf-8"), self.checkpoint_verifier)
            self.checkpoint_problem = None
        except (SecurityError, UnicodeDecodeError, ValueError) as e:
            # MID 8.2: a checkpoint that does not verify is shown as such, never trusted.
            self.rejected["checkpoint_invalid"] += 1
            self.checkpoint_problem = str(e)[:300]
        self._changed()

    # -- inputs from the protective interface -----------------------------------------------

    def set_excerpt(self, excerpt: LogbookExcerpt) -> None:
        self.excerpt = excerpt
        self._changed()

    def set_mother_twin(self, data: dict[str, Any]) -> None:
        self.mother_twin = data
        self._changed()

    # -- output -------------------------------------------------------------------------

    def components(self) -> list[dict[str, Any]]:
        rows = []
        for cid in sorted(self.statuses):
            s = self.statuses[cid]
            rows.append({
                "id": cid,
                "kind": s.component,
                "online": s.online,
                "software_id": s.software_id,
                "approval": approval_status(self.approval, s.component, s.software_id),
                "counters": dict(sorted(s.counters.items())[:40]),
                "detail": dict(sorted(s.detail.items())[:20]),
                "time": s.time,
            })
        return rows

    def logbook(self) -> dict[str, Any]:
        if self.checkpoint is None:
            return {
                "status": "failed" if self.checkpoint_problem else "unverified",
                "message": self.checkpoint_problem or "no signed checkpoint received yet",
                "checkpoint": None,
                "entries": [],
            }
        if self.excerpt is None:
            return {
                "status": "unverified",
                "message": "checkpoint verified; waiting for the logbook excerpt",
                "checkpoint": self.checkpoint.as_json(),
                "entries": [],
            }
        return self.excerpt.as_json()

    def snapshot(self) -> dict[str, Any]:
        """What the page shows; every string in it is data, to be shown as text."""
        ind = self.indication
        st = self.state
        return {
            "instrument": self.topics.instrument,
            "revision": self.revision,
            "connected": self.connected,
            "generated_at": time.time(),
            "indication": None if ind is None else {
                "vm": ind.vm, "vb": ind.vb, "vb_unavailable": ind.vb_unavailable,
                "unit": ind.unit, "record_seq": ind.record_seq, "sensor_id": ind.sensor_id,
                "time": ind.time,
                # S: mixed indication - this copy is not the legally relevant one.
                "legally_relevant": False,
            },
            "state": None if st is None else {
                "state": st.state, "reasons": st.reasons, "event_counter": st.event_counter,
                "paired_sensors": st.paired_sensors, "t7_ms": st.t7_ms, "time": st.time,
                "software_ids": st.software_ids, "software_approved": st.software_approved,
                "rejected": st.rejected,
            },
            "components": self.components(),
            "history": {
                "values": [list(v) for v in self.values],
                "t7": [list(v) for v in self.t7],
            },
            "logbook": self.logbook(),
            "portal": {"rejected": dict(self.rejected)},
        }
