"""The link to remote legally relevant processing (WELMEC 7.3 §4.4).

Samples wait in a bounded queue, go out in batches, and are resent with the
same request id until a result bound to the request is accepted; each sample
is converted exactly once because only the first valid response to a request
id is used (T1, T3). What "valid" means is :mod:`mother_unit.processing_check`;
this module decides what follows from it:

- an unauthenticated, replayed, re-ordered, tampered or late response is
  rejected and counted by reason; its request stays pending (T6, T7);
- an authentic response whose software identifier or parameter version is not
  approved is evidence of an intervention (P2/U2, MID Annex I 8.2): logbook
  entry, event counter - once per distinct cause, not once per message - and
  Vb is not indicated ("Vb unavailable: ..."), while Vm keeps being stored
  and indicated (MID Annex I 7.2);
- a change between two approved processing components (another component id
  or another approved identifier) is logged and counted (4.4.4);
- fixed test cases (the approval's known-answer tests) go out at start and
  every ``kat_period_s`` as ``test`` requests (OIML bulletin 2018 §4.3); a
  wrong answer from a component that reports an approved identifier is an
  intervention too, and Vb stays unavailable until a later full run passes.

Decisions: docs/adr/0020-signed-remote-processing-results.md,
docs/adr/0021-remote-processing-interventions-and-fixed-test-cases.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from mother_unit.core import Core
from mother_unit.evidence import Evidence
from mother_unit.processing_check import (
    KIND,
    CheckedResult,
    ProcessingTrust,
    ResultRejected,
    check_response,
)
from security_module.type_approval import KnownAnswerTest, TypeApproval
from wire.client import LinkDown
from wire.codec import RejectedPayload, decode
from wire.messages import ConversionInput, ConversionRequest, ConversionResponse, Sample

log = structlog.get_logger()

# (samples, response, why Vb must not be indicated or None)
Converted = Callable[[list[tuple[Sample, float]], ConversionResponse, str | None], None]

# Request ids answered recently, with how many more answers our own resends may
# still bring: those are counted as "duplicate_expected"; any further copy is a
# replay ("rejected.duplicate_response"). None of them is ever used (T3).
ANSWERED_MEMORY = 8192


@dataclass
class _Pending:
    request: ConversionRequest
    samples: list[tuple[Sample, float]]
    sent_at: float  # monotonic time of the last (re)send
    sends: int = 1
    tests: list[KnownAnswerTest] = field(default_factory=list)  # non-empty: a fixed test run


class ProcessingLink:
    def __init__(
        self,
        core: Core,
        evidence: Evidence,
        approval: TypeApproval,
        trust: ProcessingTrust,
        on_converted: Converted,
    ) -> None:
        self.core = core
        self.evidence = evidence
        self.approval = approval
        self.trust = dict(trust)
        self.on_converted = on_converted
        self._queue: deque[tuple[Sample, float]] = deque()
        self._pending: dict[str, _Pending] = {}
        self._answered: OrderedDict[str, int] = OrderedDict()
        self._wake = asyncio.Event()
        self._ids = itertools.count()
        self._tag = f"{int(time.time() * 1000):x}"
        # (component id, software id) of the last authentic result: what the display shows.
        self._component: tuple[str, str] | None = None
        self._reported: set[tuple[str, ...]] = set()  # causes already in the logbook
        self._vb_blocked: dict[str, str] = {}  # cause key -> why Vb is not indicated
        self._kat_now = asyncio.Event()
        self._kat_passed = False
        core.link.route(core.topics.processing_response, self.on_response)

    # -- what the display shows (P2/U2, MID Annex I 8.3) -------------------------------

    @property
    def software_ids(self) -> dict[str, str]:
        """The identifier the processing reported in its last authentic result."""
        return {} if self._component is None else {KIND: self._component[1]}

    @property
    def software_approved(self) -> dict[str, bool]:
        if self._component is None:
            return {}
        return {KIND: self._component[1] in self.approval.software_ids.get(KIND, [])}

    @property
    def vb_unavailable(self) -> str | None:
        """Why converted values must not be indicated now, or None."""
        return "; ".join(self._vb_blocked.values()) or None

    # -- sending ----------------------------------------------------------------------

    def submit(self, sample: Sample, received_at: float) -> bool:
        if len(self._queue) >= self.core.limits.conversion_queue:
            return False
        self._queue.append((sample, received_at))
        self._wake.set()
        return True

    def _request_id(self) -> str:
        # Unique per mother unit start: a result of an earlier run matches nothing (T3).
        return f"{self._tag}-{next(self._ids)}"

    def unanswered(self) -> list[ConversionRequest]:
        """Requests sent and not answered yet (oldest first)."""
        return [p.request for p in self._pending.values()]

    async def send_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Send what waits in the queue, in batches, within the bound on requests in flight."""
        core = self.core
        while self._queue and len(self._pending) < core.limits.inflight_requests:
            n = min(core.limits.max_batch, len(self._queue))
            samples = [self._queue.popleft() for _ in range(n)]
            request = ConversionRequest(
                request_id=self._request_id(),
                sent_at=time.time(),
                inputs=[
                    ConversionInput(ref=f"{s.sensor_id}:{s.boot}:{s.seq}", vm=s.vm, p=s.p, t=s.t)
                    for s, _ in samples
                ],
            )
            self._pending[request.request_id] = _Pending(request, samples, time.monotonic())
            await self._send(request)

    async def _send(self, request: ConversionRequest) -> None:
        with contextlib.suppress(LinkDown):  # resent by the watchdog
            await self.core.link.publish(self.core.topics.processing_request, request)

    async def watchdog(self) -> None:
        """Resend unanswered requests; say DEGRADED while processing does not answer (T8)."""
        core = self.core
        while True:
            await asyncio.sleep(core.limits.processing_timeout_s / 4)
            now = time.monotonic()
            overdue = [
                p
                for p in self._pending.values()
                if now - p.sent_at > core.limits.processing_timeout_s
            ]
            if overdue:
                waiting = sum(len(p.samples) for p in self._pending.values()) + len(self._queue)
                if core.status.degrade(
                    "processing",
                    f"processing unavailable: {len(self._pending)} requests unanswered, "
                    f"{waiting} samples waiting",
                ):
                    log.warning(
                        "processing_unavailable", unanswered=len(self._pending), waiting=waiting
                    )
                    core.changed()
                for p in overdue:
                    p.sent_at = now
                    p.sends += 1
                    await self._send(p.request)  # same request id: answered at most once
            elif not self._pending and core.status.clear("processing"):
                log.info("processing_available")
                core.changed()

    # -- fixed test cases (OIML bulletin 2018 §4.3: remote testing) --------------------

    async def known_answer_loop(self) -> None:
        """Run the approval's known-answer tests at start and every ``kat_period_s``."""
        while True:
            await self.start_known_answer_run()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.core.limits.kat_period_s):
                    await self._kat_now.wait()
            self._kat_now.clear()

    async def start_known_answer_run(self) -> None:
        tests = list(self.approval.known_answer_tests)
        if not tests or any(p.tests for p in self._pending.values()):
            return  # none approved, or the last run is still unanswered (the watchdog resends)
        request = ConversionRequest(
            request_id=self._request_id(),
            sent_at=time.time(),
            test=True,
            inputs=[
                ConversionInput(ref=f"kat:{n}", vm=k.vm_m3, p=k.pressure_kpa, t=k.temperature_k)
                for n, k in enumerate(tests)
            ],
        )
        self._pending[request.request_id] = _Pending(request, [], time.monotonic(), tests=tests)
        self.core.count("kat_runs")
        await self._send(request)

    def _known_answer_outcome(self, pending: _Pending, checked: CheckedResult) -> None:
        response = checked.response
        if not checked.approved:
            # Already disqualified (and logged) by its identifier or parameters.
            log.info("kat_result_ignored", component_id=response.component_id)
            return
        failures = [
            {"test": k.name, "expected": k.expected_vb_m3, "got": got}
            for k, got in zip(pending.tests, response.results, strict=True)
            if not k.check(got)
        ]
        fields: dict[str, Any] = {
            "component_id": response.component_id,
            "software_id": response.software_id,
            "request_id": response.request_id,
            "tests": len(pending.tests),
        }
        if failures:
            self.core.count("kat_failed")
            cause = ("kat", response.component_id, response.software_id)
            self._evidence_once(
                cause, "known_answer_test_failed", {**fields, "failures": failures}, True
            )
            self._block(
                "kat",
                f"fixed test cases failed ({len(failures)} of {len(pending.tests)}) "
                f"at {response.component_id}",
            )
            return
        if not self._kat_passed or "kat" in self._vb_blocked:
            # The first pass, and a pass that ends a failure, are worth an entry;
            # every periodic pass would only fill the logbook.
            self.evidence.record("known_answer_test_passed", fields, intervention=False)
        self._kat_passed = True
        self._reported = {c for c in self._reported if c[0] != "kat"}
        self._unblock("kat")

    # -- receiving --------------------------------------------------------------------

    async def on_response(self, topic: str, payload: bytes) -> None:
        core = self.core
        try:
            response = decode(ConversionResponse, payload, topic)
        except RejectedPayload as e:
            core.reject(e.reason, topic=topic, link="processing")
            return
        rid = response.request_id
        pending = self._pending.get(rid)
        if pending is None:
            # T3: a resent request answered again, a replay, or made up: never used.
            expected = self._answered.get(rid)
            if expected:
                self._answered[rid] = expected - 1
                core.count("duplicate_expected")
                return
            reason = "duplicate_response" if expected is not None else "unknown_request"
            core.reject(reason, request_id=rid, link="processing")
            return
        try:
            checked = check_response(
                response,
                pending.request,
                trust=self.trust,
                approval=self.approval,
                now=time.time(),
            )
        except ResultRejected as e:
            core.reject(e.reason, link="processing", **e.fields)
            if e.authentic:
                # Signed by our processing, yet unusable: tampered input or a fault there.
                self._evidence_once(
                    ("invalid", response.component_id, e.reason),
                    "processing_result_invalid",
                    {"component_id": response.component_id, "reason": e.reason, **e.fields},
                    False,
                )
            return  # T6: not used; the request stays pending and is resent
        del self._pending[rid]
        self._answered[rid] = pending.sends - 1
        while len(self._answered) > ANSWERED_MEMORY:
            self._answered.popitem(last=False)
        self._identify(checked)
        if pending.tests:
            self._known_answer_outcome(pending, checked)
        else:
            core.count("converted", len(response.results))
            unavailable = self.vb_unavailable
            if unavailable is not None:
                core.count("vb_unavailable", len(response.results))
            self.on_converted(pending.samples, response, unavailable)
        self._wake.set()

    def _identify(self, checked: CheckedResult) -> None:
        """P2/U2, 4.4.4: who computed this, and is that what the approval lists?"""
        response = checked.response
        current = (response.component_id, response.software_id)
        previous, self._component = self._component, current
        approved_ids = self.approval.software_ids.get(KIND, [])
        if not checked.software_approved:
            self._evidence_once(
                ("software", *current),
                "software_id_mismatch",
                {
                    "component": KIND,
                    "component_id": response.component_id,
                    "got": response.software_id,
                    "expected": approved_ids,
                },
                True,
            )
            self._block(
                "software",
                f"processing software identifier sw:{response.software_id[:8]} not approved",
            )
        else:
            self._unblock("software")
            if previous is None:
                self._evidence_once(
                    ("identified", *current),
                    "processing_identified",
                    {"component_id": current[0], "software_id": current[1], "approved": True},
                    False,
                )
            elif previous != current:
                # 4.4.4: with several approved remote components, their identifiers are
                # legally relevant parameters; a change is evidence of an intervention.
                self._evidence_once(
                    ("changed", *previous, *current),
                    "processing_component_changed",
                    {
                        "from_component_id": previous[0],
                        "from_software_id": previous[1],
                        "to_component_id": current[0],
                        "to_software_id": current[1],
                    },
                    True,
                )
                self._kat_now.set()  # test the new component at once
        approved_version = self.approval.parameters.version
        if not checked.parameters_approved:
            self._evidence_once(
                ("parameters", response.component_id, response.parameter_version),
                "parameter_version_mismatch",
                {
                    "component_id": response.component_id,
                    "got": response.parameter_version,
                    "expected": approved_version,
                },
                True,
            )
            self._block(
                "parameters",
                f"processing parameters {response.parameter_version!r} not approved "
                f"({approved_version!r})",
            )
        else:
            self._unblock("parameters")
        if previous != current:
            self.core.changed()  # the display shows the identifier

    # -- evidence and the Vb state ---------------------------------------------------------

    def _evidence_once(
        self, cause: tuple[str, ...], type_: str, data: dict[str, Any], intervention: bool
    ) -> None:
        """MID 8.2: one logbook entry (and one count) per distinct cause, not per message."""
        if cause in self._reported:
            return
        self._reported.add(cause)
        self.evidence.record(type_, data, intervention=intervention)

    def _block(self, key: str, reason: str) -> None:
        if self._vb_blocked.get(key) == reason:
            return
        self._vb_blocked[key] = reason
        self.core.status.degrade(f"vb:{key}", f"Vb unavailable: {reason}")
        log.warning("vb_unavailable", cause=key, reason=reason)
        self.core.changed()

    def _unblock(self, key: str) -> None:
        if self._vb_blocked.pop(key, None) is None:
            return
        self.core.status.clear(f"vb:{key}")
        log.info("vb_available_again", cause=key)
        self.core.changed()
