"""Creates docmill's topics when they are missing and reports what exists."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from producer.kafka_io import admin_client
from schemas.limits import DLQ_MAX_MESSAGE_BYTES
from schemas.settings import KafkaSettings, TopicSettings

# Results are keyed by document id and only the latest matters; dead letters
# are kept a fortnight so an operator has time to fix a cause and replay.
_TOPIC_CONFIGS = {
    "documents": {},
    "results": {"cleanup.policy": "compact"},
    # Dead letters carry the original value verbatim, so they may be larger than the 1 MB default.
    "dlq": {"retention.ms": str(14 * 24 * 3600 * 1000), "max.message.bytes": str(DLQ_MAX_MESSAGE_BYTES)},
    "jobs": {"cleanup.policy": "compact"},
}
# One record per job, read whole by `docmill status`: a single partition keeps it simple.
_FIXED_PARTITIONS = {"jobs": 1}


class TopicCreationError(Exception):
    """The broker refused to create a topic (bad partition count, authorization, ...)."""


@dataclass(frozen=True)
class TopicState:
    name: str
    role: str
    partitions: int
    created: bool


async def ensure_topics(
    kafka: KafkaSettings, names: TopicSettings, *, partitions: int, replication_factor: int
) -> list[TopicState]:
    """Creates each of docmill's topics that does not exist; returns every topic's state."""
    wanted = {
        "documents": names.documents_topic,
        "results": names.results_topic,
        "dlq": names.dlq_topic,
        "jobs": names.jobs_topic,
    }
    async with admin_client(kafka) as admin:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name=topic,
                num_partitions=_FIXED_PARTITIONS.get(role, partitions),
                replication_factor=replication_factor,
                topic_configs=_TOPIC_CONFIGS[role],
            )
            for role, topic in wanted.items()
            if topic not in existing
        ]
        created: set[str] = set()
        if missing:
            response = await admin.create_topics(missing)
            # The versioned response classes define their fields at run time.
            for name, code, *rest in response.topic_errors:  # type: ignore[attr-defined]
                if code == 0:
                    created.add(name)
                elif code != TopicAlreadyExistsError.errno:
                    # Another replica may have created it meanwhile (errno above); else fail.
                    message = rest[0] if rest and rest[0] else f"error code {code}"
                    raise TopicCreationError(f"could not create topic {name}: {message}")
        described = await admin.describe_topics(list(wanted.values()))
        partition_counts = {d["topic"]: len(d["partitions"]) for d in described}
        return [
            TopicState(topic, role, partition_counts.get(topic, 0), topic in created)
            for role, topic in wanted.items()
        ]
