"""The processing process: answer each conversion request with a signed, bound result (4.4)."""

from __future__ import annotations

import math
import time

import structlog

from remote_processing.conversion import ConversionParameters, convert
from remote_processing.result import signed_response
from security_module.identity import DeviceIdentity
from wire.client import MqttLink
from wire.codec import RejectedPayload, decode
from wire.messages import ConversionRequest

log = structlog.get_logger()


class ProcessingService:
    """Converts what it is asked; test requests (fixed test cases) exactly like the others.

    ``request.test`` only selects the counter: a fixed test case is a test of
    this software only if it takes the same path as a measurement (OIML
    bulletin 2018 §4.3, remote testing of logical modules).
    """

    def __init__(
        self,
        link: MqttLink,
        params: ConversionParameters,
        identity: DeviceIdentity,
        software_id: str,
    ) -> None:
        self.link = link
        self.params = params
        self.identity = identity
        self.software_id = software_id
        link.route(link.topics.processing_request, self.on_request)

    async def on_request(self, topic: str, payload: bytes) -> None:
        try:
            request = decode(ConversionRequest, payload, topic)
        except RejectedPayload as e:
            self.link.counters["rejected"] += 1
            self.link.counters[f"rejected.{e.reason}"] += 1
            log.warning("payload_rejected", reason=e.reason, topic=topic, detail=e.detail)
            return
        results = [convert(i.vm, i.p, i.t, self.params) for i in request.inputs]
        if not all(math.isfinite(r) for r in results):
            # T6: a value that cannot be represented must not leave as a result.
            self.link.counters["rejected"] += 1
            self.link.counters["rejected.not_finite"] += 1
            log.warning("result_not_finite", request_id=request.request_id)
            return
        response = signed_response(
            request,
            results,
            component_id=self.identity.device_id,
            software_id=self.software_id,
            parameter_version=self.params.version,
            computed_at=time.time(),
            key=self.identity.private_key,
        )
        self.link.counters["requests"] += 1
        self.link.counters["tests" if request.test else "conversions"] += len(results)
        # The next request need not wait for this result's PUBACK.
        await self.link.publish_soon(self.link.topics.processing_response, response)
