"""The mother unit's processing policy without a broker: evidence once per cause, Vb state.

The link is driven directly: requests go nowhere (no broker: the send is
dropped and would be resent), responses are fed to ``on_response`` as the
bytes a broker would deliver. The logbook is a real file.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mother_unit.core import Core
from mother_unit.evidence import Evidence
from mother_unit.processing_link import ProcessingLink
from remote_processing.conversion import ConversionParameters, convert
from remote_processing.result import signed_response
from security_module.checkpoint import NoteSigner
from security_module.logbook import Logbook
from security_module.type_approval import (
    GasMeterParameters,
    TypeApproval,
    default_known_answer_tests,
)
from wire.client import MqttLink
from wire.codec import encode
from wire.messages import ConversionRequest, ConversionResponse, Sample
from wire.settings import BrokerAddress
from wire.topics import Topics

pytestmark = pytest.mark.timeout(30)

KEY = Ed25519PrivateKey.generate()
FIRST, SECOND, EDITED = "1" * 64, "2" * 64, "e" * 64
PARAMS = GasMeterParameters()
APPROVAL = TypeApproval(
    approval_id="TA-test",
    instrument_id="gm-0001",
    issued_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    software_ids={"remote_processing": [FIRST, SECOND], "mother_unit": ["c" * 64]},
    approved_sensor_ids=["sensor-1"],
    parameters=PARAMS,
    known_answer_tests=default_known_answer_tests(PARAMS),
)
HONEST = ConversionParameters.from_approval(PARAMS)
Converted = tuple[list[tuple[Sample, float]], ConversionResponse, str | None]


class Rig:
    def __init__(self, tmp_path: Path) -> None:
        mqtt = MqttLink(
            broker=BrokerAddress(host="127.0.0.1", port=9),
            client_id="mother-unit",
            topics=Topics("gm-0001"),
            component="mother_unit",
        )
        self.core = Core(mqtt)
        self.logbook = Logbook(tmp_path)
        signer = NoteSigner("gm-0001/mother-unit", Ed25519PrivateKey.generate())
        self.converted: list[Converted] = []
        self.link = ProcessingLink(
            self.core,
            Evidence(self.core, self.logbook, signer),
            APPROVAL,
            {"processing": KEY.public_key(), "processing-2": KEY.public_key()},
            lambda samples, response, why: self.converted.append((samples, response, why)),
        )
        self.seq = 0

    async def measure(self, n: int = 3) -> None:
        for _ in range(n):
            sample = Sample(
                sensor_id="sensor-1",
                boot=0,
                seq=self.seq,
                created_at=0.0,
                vm=1.0 + self.seq,
                p=101.0,
                t=290.0,
            )
            self.seq += 1
            assert self.link.submit(sample, 0.0)
        await self.link.flush()

    async def answer(
        self,
        software_id: str = FIRST,
        component_id: str = "processing",
        lie: float = 1.0,
    ) -> list[ConversionRequest]:
        """Answer every unanswered request as a processing component would."""
        requests = self.link.unanswered()
        for request in requests:
            response = signed_response(
                request,
                [convert(i.vm, i.p, i.t, HONEST) * lie for i in request.inputs],
                component_id=component_id,
                software_id=software_id,
                parameter_version=PARAMS.version,
                computed_at=request.sent_at,
                key=KEY,
            )
            await self.link.on_response("t", encode(response))
        return requests

    def entries(self, type_: str) -> int:
        return sum(1 for e in self.logbook.entries if e.type == type_)

    def degraded(self, prefix: str) -> list[str]:
        return [r for r in self.core.status.reasons if r.startswith(prefix)]


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path)


async def test_unapproved_identifier_counts_once_and_blocks_vb(rig: Rig) -> None:
    for _ in range(5):
        await rig.measure()
        await rig.answer(software_id=EDITED)
    assert rig.entries("software_id_mismatch") == 1
    assert rig.core.event_counter == 1
    assert len(rig.converted) == 5
    assert all(why and "not approved" in why for _, _, why in rig.converted)
    assert rig.core.status.state == "DEGRADED"
    assert rig.degraded("Vb unavailable: processing software identifier sw:eeeeeeee")
    assert rig.link.software_approved == {"remote_processing": False}
    # Back to the approved software: Vb again, and the change is evidence too.
    await rig.measure()
    await rig.answer(software_id=FIRST)
    assert rig.converted[-1][2] is None
    assert not rig.degraded("Vb unavailable")
    assert rig.entries("processing_component_changed") == 1
    assert rig.core.event_counter == 2


async def test_known_answer_failure_blocks_vb_until_a_full_run_passes(rig: Rig) -> None:
    await rig.link.start_known_answer_run()
    await rig.answer()
    assert rig.entries("known_answer_test_passed") == 1
    for _ in range(3):  # a liar with the approved identifier, three periods long
        await rig.link.start_known_answer_run()
        await rig.answer(lie=1.002)
    assert rig.entries("known_answer_test_failed") == 1
    assert rig.core.event_counter == 1
    await rig.measure()
    await rig.answer()  # even an honest-looking conversion: Vb stays unavailable
    assert rig.converted[-1][2] == "fixed test cases failed (4 of 5) at processing"
    await rig.link.start_known_answer_run()
    await rig.answer()
    assert rig.entries("known_answer_test_passed") == 2
    assert not rig.degraded("Vb unavailable")
    await rig.measure()
    await rig.answer()
    assert rig.converted[-1][2] is None


async def test_switch_between_approved_components_counts_once_per_distinct_change(
    rig: Rig,
) -> None:
    for sid, cid in [
        (FIRST, "processing"),
        (SECOND, "processing"),  # another approved identifier
        (SECOND, "processing"),
        (SECOND, "processing-2"),  # another approved component
        (SECOND, "processing"),
        (SECOND, "processing-2"),  # the same change again: already in the logbook
    ]:
        await rig.measure()
        await rig.answer(software_id=sid, component_id=cid)
    assert rig.entries("processing_identified") == 1
    assert rig.entries("processing_component_changed") == 3
    assert rig.core.event_counter == 3
    assert all(why is None for _, _, why in rig.converted)


async def test_only_the_first_valid_response_per_request_counts(rig: Rig) -> None:
    await rig.measure(5)
    (request,) = rig.link.unanswered()
    response = signed_response(
        request,
        [convert(i.vm, i.p, i.t, HONEST) for i in request.inputs],
        component_id="processing",
        software_id=FIRST,
        parameter_version=PARAMS.version,
        computed_at=request.sent_at,
        key=KEY,
    )
    for _ in range(3):
        await rig.link.on_response("t", encode(response))
    assert len(rig.converted) == 1
    assert rig.core.link.counters["converted"] == 5
    assert rig.core.link.counters["rejected.duplicate_response"] == 2
