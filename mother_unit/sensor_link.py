"""The link to the sensors (WELMEC 7.3 §4.1, extension T).

Classifies every message on ``sensor/+/data``: from a paired sensor and
authentic under its pairing key (T2–T4, P8/U8), new (exactly once: the sensor
tracks replace a fixed replay window, T1/T3), well-formed (T6), timely (T7);
and watches each paired sensor's liveness (T8). Accepted samples go to
``submit``; nothing else ever leaves this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import structlog

from mother_unit.availability import Availability
from mother_unit.core import Core
from mother_unit.evidence import Evidence
from mother_unit.records_log import Watermark, Watermarks
from mother_unit.sensor_track import SensorTrack, Verdict
from mother_unit.timing import CLOCK_AHEAD_MS, DelayStats
from security_module.envelope import Opener, SealedEnvelope, Sealer
from security_module.errors import AuthenticationFailed
from security_module.pairing_store import PairingRecord
from wire.client import LinkDown
from wire.codec import RejectedPayload, decode, encode
from wire.messages import CONTROL_MSG_TYPE, SAMPLE_MSG_TYPE, Sample, SensorControl

log = structlog.get_logger()

# An unchanged acknowledgement is repeated this often, not on every control tick: with
# 1,000 sensors the tick otherwise seals and publishes thousands of identical control
# messages a second (docs/performance.md). New acks and retransmit requests go at once.
ACK_REFRESH_S = 2.0

Submit = Callable[[Sample, float], bool]  # False: no room now, ask the sensor again later
WatermarkSource = Callable[[], Watermarks]


def ack_point(boot: int, stored_upto: int, persisted: Watermark | None) -> tuple[int, int]:
    """L1: the (boot, seq) a sensor may be acknowledged up to.

    What the store holds for it (``boot``, ``stored_upto``), but never beyond the
    acknowledged point on disk (``persisted``): after a restart the mother unit asks
    again for every sample beyond that point, so a sample acknowledged beyond it
    would be gone from the sensor and lost. (boot, seq) pairs compare in order: an
    acknowledgement of a boot drops every earlier boot at the sensor. With nothing
    of this sensor on disk, nothing is acknowledged: (0, -1) (boots start at 1).
    """
    if persisted is None:
        return (0, -1)
    return min((max(boot, 0), stored_upto), (persisted.boot, persisted.stored_upto))


class SensorLink:
    def __init__(
        self,
        core: Core,
        evidence: Evidence,
        submit: Submit,
        availability: Availability,
        *,
        boot: int,
        persisted: WatermarkSource,
        persist: Callable[[], Awaitable[None]],
    ) -> None:
        self.core = core
        self.evidence = evidence
        self.boot = boot  # our own boot counter: nonces of the control messages we seal
        self.sealers: dict[str, Sealer] = {}
        self.submit = submit
        self.availability = availability
        self.persisted = persisted  # the watermarks of the acknowledged point on disk (L1)
        self.persist = persist
        self.openers: dict[str, Opener] = {}  # one per paired sensor (P8/U8)
        self.key_ids: dict[str, str] = {}
        self.tracks: dict[str, SensorTrack] = {}
        self.t7 = DelayStats()
        self._last_ack: dict[str, tuple[int, int, float]] = {}  # (boot, upto, monotonic)
        core.link.route(core.topics.sensor_data_all, self.on_sensor_data)

    def paired(self, record: PairingRecord) -> None:
        """Accept data from this sensor under this pairing key from now on."""
        me = self.core.link.client_id
        self.openers[record.peer_id] = Opener(record.key, record.peer_id, me)
        self.sealers[record.peer_id] = Sealer(record.key, me, record.peer_id, self.boot)
        self.key_ids[record.peer_id] = record.key_id
        self.tracks.pop(record.peer_id, None)  # a new key starts a new sequence space

    def unpaired(self, sensor_id: str) -> None:
        self.openers.pop(sensor_id, None)
        self.sealers.pop(sensor_id, None)
        self.key_ids.pop(sensor_id, None)

    def open_sample(self, topic: str, payload: bytes) -> Sample:
        """Authenticate and decode a sealed sample; raises RejectedPayload with the reason."""
        envelope = decode(SealedEnvelope, payload, topic)
        sender = self.core.topics.sensor_id_of(topic)
        if envelope.sender != sender:
            raise RejectedPayload("wrong_topic", topic, f"sender {envelope.sender}")
        opener = self.openers.get(envelope.sender)
        if opener is None:
            raise RejectedPayload("not_paired", topic, envelope.sender)
        if envelope.recipient != self.core.link.client_id or envelope.msg_type != SAMPLE_MSG_TYPE:
            raise RejectedPayload("misaddressed", topic)
        try:
            plaintext = opener.authenticate(envelope, topic)
        except AuthenticationFailed as e:
            raise RejectedPayload("authentication", topic) from e
        sample = decode(Sample, plaintext, topic)
        if (sample.sensor_id, sample.boot, sample.seq) != (
            envelope.sender,
            envelope.boot,
            envelope.seq,
        ):
            raise RejectedPayload("header_mismatch", topic)
        return sample

    async def on_sensor_data(self, topic: str, payload: bytes) -> None:
        core = self.core
        received_at = time.time()
        try:
            sample = self.open_sample(topic, payload)
        except RejectedPayload as e:
            core.reject(e.reason, topic=topic, link="sensor")
            return
        if core.status.is_inhibited():
            # 4.1: an inhibited instrument does not function; the sample stays with
            # the sensor and is asked for again once the instrument may work.
            self.tracks.setdefault(sample.sensor_id, SensorTrack(sample.sensor_id))
            core.count("held_while_inhibited")
            return
        track = self.tracks.setdefault(sample.sensor_id, SensorTrack(sample.sensor_id))
        verdict = track.check(sample.boot, sample.seq)
        if verdict in (Verdict.DUPLICATE, Verdict.OLD_BOOT):
            core.reject(verdict.value, sensor=sample.sensor_id, boot=sample.boot, seq=sample.seq)
            return
        if verdict is Verdict.NEW and sample.boot > track.boot >= 0 and track.missing:
            lost = sorted(track.missing)
            track.gaps_unrecoverable += len(lost)
            self._gap_lost(
                track.sensor_id, track.boot, lost, "sensor restarted before retransmitting"
            )
        delay_ms = (received_at - sample.created_at) * 1000.0
        late = delay_ms > core.limits.t7_max_ms
        ahead = delay_ms < -CLOCK_AHEAD_MS  # stamped in the future: a wrong sensor clock
        if (late or ahead) and core.limits.t7_reject:
            # T7 "reject" policy: a sample whose time cannot be right is not used; it
            # is accounted for (counted, summarised in the logbook) and acknowledged so
            # the sensor does not offer it again.
            why = "late" if late else "clock_ahead"
            core.count(why)
            core.reject(why, sensor=sample.sensor_id, seq=sample.seq, delay_ms=int(delay_ms))
            new_gap = track.accept(sample.boot, sample.seq)
            track.mark_stored(sample.seq)
            if new_gap:
                await self._request(track, new_gap)
            return
        if not self.submit(sample, received_at):
            # No room without risking loss: leave it with the sensor, ask again later (T1, L8).
            track.defer(sample.seq, boot=sample.boot)
            core.count("deferred")
            return
        new_gap = track.accept(sample.boot, sample.seq)
        if new_gap:
            core.count("gaps_detected", len(new_gap))
            await self._request(track, new_gap)
        self.t7.add(delay_ms)
        if late:
            core.count("late")  # T7 "flag" policy: counted; the record keeps both times
        elif ahead:
            core.count("clock_ahead")  # A_RTC: flagged likewise; the record keeps both times
        core.count("accepted")

    def _gap_lost(self, sensor: str, boot: int, seqs: list[int], cause: str) -> None:
        """T1: a gap that cannot be filled is evidence, never silently skipped."""
        self.core.count("gaps_unrecoverable", len(seqs))
        self.evidence.record(
            "gap_unrecoverable",
            {
                "sensor": sensor,
                "boot": boot,
                "count": len(seqs),
                "first": seqs[0],
                "last": seqs[-1],
                "cause": cause,
            },
            intervention=False,
        )

    # -- stored watermarks across restarts (4.2, L1), persisted by the records log ---------

    def watermarks(self) -> Watermarks:
        """Per sensor what is stored: the acknowledged point (persisted by the records log)."""
        return {
            s: Watermark(t.boot, t.stored_upto, t.stored_ranges())
            for s, t in self.tracks.items()
            if t.boot >= 0
        }

    def restore_watermarks(self, marks: Watermarks) -> None:
        """After a restart: samples not stored at the persisted point become records again."""
        for sensor_id, mark in marks.items():
            track = self.tracks.setdefault(sensor_id, SensorTrack(sensor_id))
            track.restore(mark.boot, mark.stored_upto, mark.beyond)

    def recovered(self, sensor_id: str, boot: int, seq: int) -> None:
        """The store already holds this sample's record (adopted at start)."""
        self.tracks.setdefault(sensor_id, SensorTrack(sensor_id)).recovered(boot, seq)

    def stored(self, sensor_id: str, boot: int, seq: int) -> None:
        """The store acknowledged the record of this sample: the sensor may forget it."""
        track = self.tracks.get(sensor_id)
        if track is not None and track.boot == boot:
            track.mark_stored(seq)

    def _ack_point(self, track: SensorTrack) -> tuple[int, int]:
        return ack_point(track.boot, track.stored_upto, self.persisted().get(track.sensor_id))

    async def _request(self, track: SensorTrack, seqs: list[int]) -> None:
        ack_boot, ack_upto = self._ack_point(track)
        control = SensorControl(
            ack_boot=ack_boot,
            ack_upto=ack_upto,
            retransmit=[(track.boot, s) for s in seqs[:4096]],
        )
        sealer = self.sealers.get(track.sensor_id)
        if sealer is None:
            return  # unpaired meanwhile: nothing to acknowledge to it
        topic = self.core.topics.sensor_control(track.sensor_id)
        envelope = sealer.seal(CONTROL_MSG_TYPE, topic, encode(control))
        with contextlib.suppress(LinkDown):  # the control loop asks again
            await self.core.link.publish(topic, envelope)
            self._last_ack[track.sensor_id] = (
                control.ack_boot, control.ack_upto, time.monotonic()
            )

    def _ack_due(self, track: SensorTrack, now: float) -> bool:
        """Something new to acknowledge, or the last acknowledgement is getting old."""
        last = self._last_ack.get(track.sensor_id)
        return (
            last is None
            or last[:2] != self._ack_point(track)
            or now - last[2] >= ACK_REFRESH_S
        )

    async def control_loop(self) -> None:
        """Acknowledge stored samples to each sensor; re-ask for gaps; give up old ones; T8."""
        core = self.core
        while True:
            # Often enough that loss is seen within 1.5 heartbeats (T8; see availability).
            await asyncio.sleep(min(0.25, core.link.heartbeat_s / 4))
            # L1: what this round acknowledges must be on disk first (store acks since
            # the last round, and watermarks moved by a gap given up or a late sample).
            await self.persist()
            now = time.monotonic()
            for track in list(self.tracks.values()):
                # Only a sensor that is there and still does not deliver loses a gap;
                # while it is away, it keeps what we asked for (T1, T8).
                if self.availability.alive(track.sensor_id) is not False:
                    lost = track.expire(now - core.limits.gap_timeout_s)
                    if lost:
                        self._gap_lost(
                            track.sensor_id, track.boot, lost, "not retransmitted in time"
                        )
                retry = sorted(s for s, t in track.missing.items() if now - t > 0.5)
                if retry or self._ack_due(track, now):
                    await self._request(track, retry)
            self.watch_availability()

    def watch_availability(self) -> None:
        """T8: a paired sensor whose Last Will came or whose heartbeats stopped is lost."""
        core = self.core
        for sensor in self.openers:
            key = f"sensor:{sensor}"
            if self.availability.alive(sensor) is False:
                if core.status.degrade(key, f"sensor {sensor} unavailable"):
                    log.warning("sensor_unavailable", sensor=sensor)
                    core.changed()
            elif core.status.clear(key):
                log.info("sensor_available", sensor=sensor)
                core.changed()
