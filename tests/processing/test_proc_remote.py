"""WELMEC 7.3 §4.4 end to end: the remote processing, identified and checked by the mother unit.

Every test runs real processes (``python -m <package>``) on a real broker and
asserts on what a user sees: the retained state and indication, the logbook
(read-only), the event counter, and the records in the store's SQLite file.
"""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from proc_support import (
    DOUBLES,
    INSTRUMENT,
    Instrument,
    Observer,
    approved_ids,
    modified_processing,
    observe,
    snapshot_code,
)

from mother_unit.processing_check import inputs_digest
from security_module.provisioning import provision
from security_module.signing import CONTEXT_PROCESSING_RESULT, sign
from security_module.type_approval import GasMeterParameters, convert_to_base
from testbed.testing import RunningBroker
from wire.codec import decode, encode
from wire.messages import ConversionRequest, ConversionResponse

KAT_PERIOD_S = 1.0  # Instrument.start_mother_unit passes --kat-period-s 1
PARAMS = GasMeterParameters()


@pytest.fixture(scope="session")
def code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return snapshot_code(tmp_path_factory.mktemp("proc"))


@pytest.fixture
def instruments(tmp_path: Path, code: Path) -> Iterator[Callable[..., Instrument]]:
    made: list[Instrument] = []

    def make(broker: RunningBroker, software_ids: dict[str, list[str]] | None = None) -> Instrument:
        directory = tmp_path / f"instrument-{len(made)}" / "dir"
        ids = software_ids if software_ids is not None else approved_ids(tmp_path, code)
        provision(directory, instrument_id=INSTRUMENT, software_ids=ids)
        instrument = Instrument(directory, broker, code)
        made.append(instrument)
        return instrument

    yield make
    for instrument in made:
        instrument.close()


async def start_instrument(
    inst: Instrument, obs: Observer, *, sensor_rate_hz: float | None = None
) -> None:
    """Storage and processing, then the mother unit (and a paired sensor): all online.

    The store must listen before the mother unit starts: it asks the store
    where to resume, once, at start.
    """
    first = {
        n: inst.start(n, m)
        for n, m in (("storage", "remote_storage"), ("processing", "remote_processing"))
    }
    for name, process in first.items():
        await obs.online(name, process.pid)
    inst.start_mother_unit()
    if sensor_rate_hz is not None:
        sensor = inst.start("sensor-1", "remote_sensor", "--rate-hz", str(sensor_rate_hz))
        await obs.online("sensor-1", sensor.pid)
    await obs.online("mother-unit", inst.processes["mother-unit"].pid)
    if sensor_rate_hz is not None:
        await inst.pair("sensor-1")


def state(obs: Observer) -> Any:
    assert obs.state is not None
    return obs.state


def vb_unavailable(obs: Observer) -> bool:
    return any(r.startswith("Vb unavailable") for r in obs.reasons())


def counter(obs: Observer, name: str) -> int:
    return 0 if obs.state is None else obs.state.counters.get(name, 0)


def rejected(obs: Observer, reason: str) -> int:
    return 0 if obs.state is None else obs.state.rejected.get(reason, 0)


async def all_stored(obs: Observer, inst: Instrument) -> tuple[int, list[dict[str, Any]]]:
    """Once every accepted sample is converted and stored: (accepted, the stored records).

    The store is read in the same step as the state that says "all done", and only a
    state the store agrees with counts: a sample still on its way when the sensor
    stopped is accepted after such a state (a CI run stored 444 against a stale 443).
    """
    records: list[dict[str, Any]] = []

    def settled() -> bool:
        if not (
            counter(obs, "accepted") > 0
            and counter(obs, "accepted") == counter(obs, "converted")
            and counter(obs, "records_acked") == counter(obs, "records_created")
            and counter(obs, "records_created") >= counter(obs, "converted")
        ):
            return False
        records[:] = inst.records()
        return len(records) == counter(obs, "records_created")

    await obs.until("everything accepted is converted and stored", settled)
    return counter(obs, "accepted"), records


# -- Done when: editing one line of the conversion code ------------------------------------


@pytest.mark.timeout(120)
async def test_proc_edited_conversion_code_is_caught_at_the_first_response(
    broker: RunningBroker,
    instruments: Callable[..., Instrument],
    tmp_path: Path,
    code: Path,
) -> None:
    """P2/U2, MID Annex I 8.2: a changed remote processing leaves evidence; Vb stops.

    Timeline: the instrument runs with the approved processing and indicates
    Vb. The processing is stopped and a copy with one edited line of
    ``conversion.py`` is started in its place (same identity key, same
    results). Its first response names a software identifier the approval
    does not list: one logbook entry, the event counter +1, every record it
    converted is stored with vb None and the reason, the indication shows Vm
    without Vb, the state says why - and further responses add no count.
    """
    copy_root, modified_id = modified_processing(tmp_path, code)
    inst = instruments(broker)
    async with observe(broker, inst.topics) as obs:
        await start_instrument(inst, obs, sensor_rate_hz=20)
        await obs.until(
            "Vb indicated",
            lambda: obs.indication is not None and obs.indication.vb is not None,
        )
        assert state(obs).software_approved == {"mother_unit": True, "remote_processing": True}
        before = state(obs).event_counter

        inst.stop("processing")
        edited = inst.start("processing", "remote_processing", pythonpath=copy_root)
        await obs.online("processing", edited.pid)
        await obs.until("Vb unavailable", lambda: vb_unavailable(obs))

        s = state(obs)
        assert s.state == "DEGRADED"
        assert s.software_ids["remote_processing"] == modified_id
        assert s.software_approved["remote_processing"] is False
        assert s.event_counter == before + 1
        (entry,) = inst.entries("software_id_mismatch")
        assert entry.legally_relevant
        assert entry.data["component"] == "remote_processing"
        assert entry.data["got"] == modified_id
        assert modified_id not in entry.data["expected"]

        # Vm keeps being indicated, Vb is not, and the indication says why.
        shown = obs.indication
        assert shown is not None
        await obs.until(
            "a newer indication without Vb",
            lambda: (
                obs.indication is not None
                and obs.indication.record_seq > shown.record_seq + 20
                and obs.indication.vb is None
            ),
        )
        assert obs.indication is not None
        assert obs.indication.vb_unavailable
        assert "not approved" in obs.indication.vb_unavailable
        assert obs.indication.vm >= shown.vm

        # Many more responses of the edited processing (and KAT runs): still one count.
        runs = counter(obs, "kat_runs")
        await obs.until("two more KAT runs", lambda: counter(obs, "kat_runs") >= runs + 2)
        assert state(obs).event_counter == before + 1
        assert len(inst.entries("software_id_mismatch")) == 1

    # From the first response on: no record converted by the edited code carries a Vb.
    edited_records = [
        r for r in inst.records() if r["software_ids"].get("remote_processing") == modified_id
    ]
    assert edited_records, "the edited processing converted nothing"
    assert all(r["vb"] is None and r["vb_unavailable"] for r in edited_records)


# -- Done when: a lying processing is caught by the fixed test cases ---------------------


@pytest.mark.mosquitto
@pytest.mark.timeout(120)
async def test_proc_lying_processing_is_caught_by_the_fixed_test_cases(
    mosquitto_broker: Callable[..., RunningBroker], instruments: Callable[..., Instrument]
) -> None:
    """OIML bulletin 2018 §4.3: fixed test cases catch what the identifier cannot.

    Timeline: the approved processing passes the known-answer tests at start.
    It is replaced by a double that reports the approved identifier (it *is*
    the approved code, signing with the real key) but returns volumes 0.2 %
    too large. Within one test period the mother unit logs the failure, counts
    it once, and stops indicating Vb. When the honest processing is back, Vb
    stays unavailable until the next full run of the test cases passes.
    """
    broker = mosquitto_broker()
    inst = instruments(broker)
    async with observe(broker, inst.topics) as obs:
        await start_instrument(inst, obs)
        await obs.until(
            "the fixed test cases pass at start, and the state shows the processing",
            lambda: bool(inst.entries("known_answer_test_passed"))
            and "remote_processing" in state(obs).software_ids,
        )
        before = state(obs).event_counter
        honest_id = state(obs).software_ids["remote_processing"]

        inst.stop("processing")
        liar = inst.start("processing", "lying_processing", pythonpath=DOUBLES)
        await obs.online("processing", liar.pid)
        took = await obs.until("fixed test cases failed", lambda: vb_unavailable(obs))
        print(f"lying processing caught {took:.2f} s after it came online")
        assert took <= KAT_PERIOD_S + 1.0  # the next run, plus its round trip under load

        s = state(obs)
        assert s.state == "DEGRADED"
        assert any("fixed test cases failed" in r for r in s.reasons)
        assert s.software_approved["remote_processing"] is True  # the identifier is no help here
        assert s.event_counter == before + 1
        (entry,) = inst.entries("known_answer_test_failed")
        assert entry.legally_relevant
        assert entry.data["software_id"] == honest_id
        assert {f["test"] for f in entry.data["failures"]} >= {"base-conditions", "large-index"}

        runs = counter(obs, "kat_runs")
        await obs.until("two more KAT runs", lambda: counter(obs, "kat_runs") >= runs + 2)
        assert state(obs).event_counter == before + 1  # once per cause, not per run
        assert len(inst.entries("known_answer_test_failed")) == 1

        # Recovery: only a full passing run makes Vb available again.
        inst.stop("processing")
        honest = inst.start("processing", "remote_processing")
        await obs.online("processing", honest.pid)
        await obs.until("Vb available after a passing run", lambda: not vb_unavailable(obs))
        assert len(inst.entries("known_answer_test_passed")) == 2
        assert state(obs).event_counter == before + 1


# -- Done when: replayed, forged, or re-ordered responses: none accepted --------------------


def forged(request: ConversionRequest, software_id: str, **overrides: Any) -> bytes:
    """A response for ``request`` with false results, signed by a key that is not ours."""
    response = ConversionResponse(
        request_id=request.request_id,
        component_id=overrides.pop("component_id", "processing"),
        software_id=software_id,
        parameter_version=PARAMS.version,
        inputs_digest=inputs_digest(request.inputs),
        results=[2 * convert_to_base(i.vm, i.p, i.t, PARAMS) for i in request.inputs],
        computed_at=time.time(),
    )
    signature = sign(
        response, Ed25519PrivateKey.generate(), CONTEXT_PROCESSING_RESULT, exclude={"signature"}
    )
    return encode(
        response.model_copy(update={"signature": base64.b64encode(signature).decode(), **overrides})
    )


@pytest.mark.mosquitto
@pytest.mark.timeout(120)
async def test_proc_forged_replayed_and_reordered_responses_are_never_accepted(
    mosquitto_broker: Callable[..., RunningBroker], instruments: Callable[..., Instrument]
) -> None:
    """T3/T4, A_Spoofing, A_Tampering_and_Injection with an ordinary MQTT client.

    Timeline: at 20 Hz the attacker records genuine responses. It replays them
    in reverse order. Then, while the processing is down and requests wait
    unanswered, it answers them itself: a genuine response moved to another
    request, results doubled and signed with its own key, the same claiming an
    unknown component, an unsigned one and garbage. The processing comes back.
    Invariant: every record stored carries the true conversion of its own
    sample, each sample exactly once; each attack is counted by its reason.
    """
    broker = mosquitto_broker()
    inst = instruments(broker)
    async with observe(broker, inst.topics) as obs:
        await start_instrument(inst, obs, sensor_rate_hz=20)
        await obs.until("genuine responses", lambda: len(obs.responses) >= 8)
        genuine = [decode(ConversionResponse, p, "t") for p in obs.responses[:8]]

        # Replayed, and re-ordered: every one of them was answered already. A copy of
        # an answer to a request the mother unit had resent passes for a late answer
        # (duplicate_expected), any other for a replay; neither is used.
        def copies() -> int:
            return rejected(obs, "duplicate_response") + counter(obs, "duplicate_expected")

        copies0 = copies()
        for response in reversed(genuine):
            await obs.inject(inst.topics.processing_response, encode(response))
        await obs.until("replays rejected", lambda: copies() >= copies0 + 8)

        # Forged answers to requests that really wait for one.
        inst.stop("processing")
        seen = len(obs.requests)

        def unanswered() -> list[ConversionRequest]:
            # A request published just before the stop may still have been answered
            # (its answer reaches us late): forge answers only to one that never was.
            answered = {decode(ConversionResponse, p, "t").request_id for p in obs.responses}
            later = [decode(ConversionRequest, p, "t") for p in obs.requests[seen:]]
            return [r for r in later if r.request_id not in answered]

        await obs.until("two unanswered requests", lambda: len(unanswered()) >= 2)
        waiting = unanswered()[-1]
        bad0, unknown0 = rejected(obs, "bad_signature"), rejected(obs, "unknown_component")
        attacks = [
            encode(genuine[0].model_copy(update={"request_id": waiting.request_id})),
            forged(waiting, genuine[0].software_id),
            forged(waiting, genuine[0].software_id, component_id="processing-2"),
            forged(waiting, genuine[0].software_id, signature=""),
            b'{"kind": "conversion_response", "garbage": ',
        ]
        for payload in attacks:
            await obs.inject(inst.topics.processing_response, payload)
        await obs.until(
            "forgeries rejected",
            lambda: (
                rejected(obs, "bad_signature") >= bad0 + 3
                and rejected(obs, "unknown_component") >= unknown0 + 1
                and rejected(obs, "malformed") >= 1
            ),
        )
        back = inst.start("processing", "remote_processing")
        await obs.online("processing", back.pid)

        inst.stop("sensor-1")
        accepted, records = await all_stored(obs, inst)
        assert state(obs).event_counter == 1  # the pairing; forgeries are no intervention

    keys = [(r["sensor_id"], r["sample_boot"], r["sample_seq"]) for r in records]
    assert len(keys) == len(set(keys)) == accepted
    for r in records:
        # No forged value reached the store (nor, so, the indication).
        assert r["vb"] is not None
        assert math.isclose(
            r["vb"], convert_to_base(r["vm"], r["p"], r["t"], PARAMS), rel_tol=1e-12
        )


# -- Done when: processing stopped during a 20 Hz run ------------------------------------------


@pytest.mark.mosquitto
@pytest.mark.timeout(120)
async def test_proc_outage_degrades_then_every_sample_is_converted_exactly_once(
    mosquitto_broker: Callable[..., RunningBroker], instruments: Callable[..., Instrument]
) -> None:
    """T8, T1: processing stopped for 20 s during a 20 Hz run.

    The state goes DEGRADED and names the processing; samples wait in the
    bounded queue; after the processing is back every accepted sample is
    converted and stored exactly once (requests are resent with the same id
    and only the first valid response per id counts).
    """
    outage_s = 20.0
    broker = mosquitto_broker()
    inst = instruments(broker)
    async with observe(broker, inst.topics) as obs:
        await start_instrument(inst, obs, sensor_rate_hz=20)
        await obs.until("conversions flow", lambda: counter(obs, "converted") >= 20)

        stopped_at = time.monotonic()
        inst.stop("processing")
        took = await obs.until(
            "DEGRADED: processing unavailable",
            lambda: (
                state(obs).state == "DEGRADED"
                and any(r.startswith("processing unavailable") for r in obs.reasons())
            ),
        )
        print(f"DEGRADED {took:.2f} s after the processing stopped")
        waiting_since = counter(obs, "converted")
        await obs.until(
            "samples wait",
            lambda: counter(obs, "accepted") >= waiting_since + 40,
        )
        assert counter(obs, "converted") == waiting_since
        await obs.until(
            "the outage lasted long enough",
            lambda: time.monotonic() - stopped_at >= outage_s,
            deadline_s=outage_s + 2,
        )
        back = inst.start("processing", "remote_processing")
        await obs.online("processing", back.pid)
        took = await obs.until(
            "OPERATIONAL again",
            lambda: state(obs).state == "OPERATIONAL",
        )
        print(f"OPERATIONAL {took:.2f} s after the processing was back")

        inst.stop("sensor-1")
        accepted, records = await all_stored(obs, inst)
        # Late answers to our own resends are expected, not replays. QoS 1 is at least
        # once, so a redelivery after the restart can still add a copy: never used.
        print(
            f"accepted {accepted}, late answers to resends {counter(obs, 'duplicate_expected')}, "
            f"other copies {rejected(obs, 'duplicate_response')}"
        )

    keys = [(r["sensor_id"], r["sample_boot"], r["sample_seq"]) for r in records]
    assert len(keys) == len(set(keys)) == accepted  # each sample exactly once
    seqs = sorted(k[2] for k in keys)
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # and none lost
    assert all(r["vb"] is not None for r in records)


# -- 4.4.4: a switch between two approved processing components -----------------------------


@pytest.mark.mosquitto
@pytest.mark.timeout(120)
async def test_proc_switch_between_approved_components_is_logged_and_counted(
    mosquitto_broker: Callable[..., RunningBroker],
    instruments: Callable[..., Instrument],
    tmp_path: Path,
    code: Path,
) -> None:
    """4.4.4: with several approved remote components, a change is evidence of an intervention.

    The approval lists two processing identifiers. Switching from one to the
    other is logged and counted once; Vb stays available (both are approved)
    and the fixed test cases run at once against the new component.
    """
    copy_root, second_id = modified_processing(tmp_path, code)
    ids = approved_ids(tmp_path, code)
    first_id = ids["remote_processing"][0]
    ids["remote_processing"].append(second_id)
    broker = mosquitto_broker()
    inst = instruments(broker, software_ids=ids)
    async with observe(broker, inst.topics) as obs:
        await start_instrument(inst, obs)
        await obs.until("identified", lambda: inst.entries("processing_identified"))
        before = state(obs).event_counter

        inst.stop("processing")
        second = inst.start("processing", "remote_processing", pythonpath=copy_root)
        await obs.online("processing", second.pid)
        await obs.until(
            "the switch is shown",
            lambda: state(obs).software_ids.get("remote_processing") == second_id,
        )
        (entry,) = inst.entries("processing_component_changed")
        assert entry.legally_relevant
        assert (entry.data["from_software_id"], entry.data["to_software_id"]) == (
            first_id,
            second_id,
        )
        runs = counter(obs, "kat_runs")
        await obs.until("two more KAT runs", lambda: counter(obs, "kat_runs") >= runs + 2)
        s = state(obs)
        assert s.event_counter == before + 1
        assert s.software_approved["remote_processing"] is True
        assert not vb_unavailable(obs)
        assert not inst.entries("known_answer_test_failed")
