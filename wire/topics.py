"""The topic tree of one instrument, in one place (see docs/topics.md).

Every topic starts with ``mi/<instrument>/``. The segment after it names the
component that *publishes* there, so that a broker ACL keyed on the
authenticated user name can give each component exactly its own subtree.

==========================================  ==============  ======  =========
topic                                       publisher       QoS     retained
==========================================  ==============  ======  =========
mi/<i>/status/<component-id>                each component  1       yes (LWT)
mi/<i>/sensor/<sensor-id>/data              sensor          1       no
mi/<i>/sensor/<sensor-id>/pairing           sensor          1       no
mi/<i>/mother/sensor/<sensor-id>/control    mother unit     1       no
mi/<i>/mother/sensor/<sensor-id>/pairing    mother unit     1       no
mi/<i>/mother/processing/request            mother unit     1       no
mi/<i>/mother/storage/records               mother unit     1       no
mi/<i>/mother/state                         mother unit     1       yes
mi/<i>/mother/indication                    mother unit     1       yes
mi/<i>/mother/checkpoint                    mother unit     1       yes
mi/<i>/mother/command/reply                 mother unit     1       no
mi/<i>/command                              operators       1       no
mi/<i>/processing/response                  processing      1       no
mi/<i>/storage/ack                          storage         1       no
mi/<i>/storage/query                        verifiers       1       no
mi/<i>/storage/reply/<client-id>            storage         1       no
==========================================  ==============  ======  =========
"""

from __future__ import annotations

from dataclasses import dataclass

ROOT = "mi"


def _check_segment(name: str, value: str) -> str:
    # A topic segment must not open a wildcard or a new level: an identifier
    # with "/", "+" or "#" would let one component speak in another's subtree.
    if not value or any(c in value for c in "/+#\x00") or len(value) > 64:
        raise ValueError(f"invalid {name} for a topic segment: {value!r}")
    return value


@dataclass(frozen=True)
class Topics:
    """Topic names for one instrument."""

    instrument: str

    def __post_init__(self) -> None:
        _check_segment("instrument id", self.instrument)

    @property
    def base(self) -> str:
        return f"{ROOT}/{self.instrument}"

    # -- availability -------------------------------------------------------
    def status(self, component_id: str) -> str:
        return f"{self.base}/status/{_check_segment('component id', component_id)}"

    @property
    def status_all(self) -> str:
        return f"{self.base}/status/+"

    # -- sensor -> mother unit -------------------------------------------------
    def sensor_data(self, sensor_id: str) -> str:
        return f"{self.base}/sensor/{_check_segment('sensor id', sensor_id)}/data"

    @property
    def sensor_data_all(self) -> str:
        return f"{self.base}/sensor/+/data"

    def sensor_pairing(self, sensor_id: str) -> str:
        return f"{self.base}/sensor/{_check_segment('sensor id', sensor_id)}/pairing"

    @property
    def sensor_pairing_all(self) -> str:
        return f"{self.base}/sensor/+/pairing"

    # -- mother unit -> others --------------------------------------------------
    def sensor_control(self, sensor_id: str) -> str:
        return f"{self.base}/mother/sensor/{_check_segment('sensor id', sensor_id)}/control"

    def mother_pairing(self, sensor_id: str) -> str:
        return f"{self.base}/mother/sensor/{_check_segment('sensor id', sensor_id)}/pairing"

    @property
    def processing_request(self) -> str:
        return f"{self.base}/mother/processing/request"

    @property
    def storage_records(self) -> str:
        return f"{self.base}/mother/storage/records"

    @property
    def state(self) -> str:
        return f"{self.base}/mother/state"

    @property
    def indication(self) -> str:
        return f"{self.base}/mother/indication"

    @property
    def checkpoint(self) -> str:
        return f"{self.base}/mother/checkpoint"

    @property
    def command(self) -> str:
        return f"{self.base}/command"

    @property
    def command_reply(self) -> str:
        return f"{self.base}/mother/command/reply"

    # -- processing, storage ------------------------------------------------------
    @property
    def processing_response(self) -> str:
        return f"{self.base}/processing/response"

    @property
    def storage_ack(self) -> str:
        return f"{self.base}/storage/ack"

    @property
    def storage_query(self) -> str:
        return f"{self.base}/storage/query"

    def storage_reply(self, client_id: str) -> str:
        return f"{self.base}/storage/reply/{_check_segment('client id', client_id)}"

    def sensor_id_of(self, topic: str) -> str | None:
        """The sensor id in ``mi/<i>/sensor/<id>/...``, or None for another topic."""
        parts = topic.split("/")
        if (
            len(parts) >= 5
            and parts[0] == ROOT
            and parts[1] == self.instrument
            and parts[2] == "sensor"
        ):
            return parts[3]
        return None
