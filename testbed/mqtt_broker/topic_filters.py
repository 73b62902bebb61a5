"""Topic filters (MQTT 3.1.1 §4.7): which are valid, and who subscribed to a topic.

``Subscriptions`` answers "which sessions want this topic, at what QoS" from a
cache keyed by topic name: the instruments publish on a few fixed topics per
component, so nearly every lookup is a dictionary hit, and any (rare)
SUBSCRIBE or UNSUBSCRIBE clears the cache.
"""

from __future__ import annotations

# A topic flood must not grow the cache without bound.
CACHE_MAX = 10_000


def valid_filter(topic_filter: str) -> bool:
    """§4.7.1: '#' only as the last level, '+' and '#' only as whole levels."""
    if not topic_filter:
        return False
    levels = topic_filter.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            return False
        if "+" in level and level != "+":
            return False
    return True


def matches(topic_filter: str, topic: str) -> bool:
    """Whether ``topic`` (a name, no wildcards) matches ``topic_filter``."""
    if "+" not in topic_filter and "#" not in topic_filter:
        return topic_filter == topic
    if topic.startswith("$") and topic_filter[0] in "+#":
        return False  # §4.7.2: wildcards at the first level skip $-topics
    wanted = topic_filter.split("/")
    levels = topic.split("/")
    for i, want in enumerate(wanted):
        if want == "#":
            return True  # also matches the parent: "a/#" matches "a"
        if i >= len(levels) or (want != "+" and want != levels[i]):
            return False
    return len(levels) == len(wanted)


class Subscriptions:
    """Topic filter -> {client id: granted QoS}, with a per-topic lookup cache."""

    def __init__(self) -> None:
        self._by_filter: dict[str, dict[str, int]] = {}
        self._cache: dict[str, dict[str, int]] = {}

    def add(self, client_id: str, topic_filter: str, qos: int) -> None:
        self._by_filter.setdefault(topic_filter, {})[client_id] = qos
        self._cache.clear()

    def remove(self, client_id: str, topic_filter: str) -> None:
        subscribers = self._by_filter.get(topic_filter)
        if subscribers is not None and subscribers.pop(client_id, None) is not None:
            if not subscribers:
                del self._by_filter[topic_filter]
            self._cache.clear()

    def remove_client(self, client_id: str, filters: list[str]) -> None:
        for topic_filter in filters:
            self.remove(client_id, topic_filter)

    def subscribers(self, topic: str) -> dict[str, int]:
        """Each session that subscribed to ``topic`` once, at the highest QoS granted."""
        hit = self._cache.get(topic)
        if hit is not None:
            return hit
        found: dict[str, int] = {}
        for topic_filter, clients in self._by_filter.items():
            if matches(topic_filter, topic):
                for client_id, qos in clients.items():
                    if qos > found.get(client_id, -1):
                        found[client_id] = qos
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        self._cache[topic] = found
        return found
