"""Default topic names and the header names docmill writes on Kafka records."""

from typing import Final

DOCUMENTS_TOPIC: Final = "docmill.documents"
RESULTS_TOPIC: Final = "docmill.results"
DLQ_TOPIC: Final = "docmill.dlq"
JOBS_TOPIC: Final = "docmill.jobs"


class Header:
    """Header names on dead letters (and results) so tools can filter without decoding."""

    ERROR_CLASS: Final = "docmill.error.class"
    ERROR_MESSAGE: Final = "docmill.error.message"
    RETRYABLE: Final = "docmill.error.retryable"
    ATTEMPTS: Final = "docmill.attempts"
    SOURCE_TOPIC: Final = "docmill.source.topic"
    SOURCE_PARTITION: Final = "docmill.source.partition"
    SOURCE_OFFSET: Final = "docmill.source.offset"
    SOURCE_TIMESTAMP: Final = "docmill.source.timestamp"
    CONSUMER_ID: Final = "docmill.consumer.id"
    JOB_ID: Final = "docmill.job.id"
    SCHEMA_VERSION: Final = "docmill.schema.version"
    REPLAY_COUNT: Final = "docmill.replay.count"


# What docmill says about a failure, on every dead letter (beside the original
# record's own headers). A replay drops exactly these: the original headers go
# back out as they came in.
FAILURE_HEADERS: Final = (
    Header.ERROR_CLASS,
    Header.ERROR_MESSAGE,
    Header.RETRYABLE,
    Header.ATTEMPTS,
    Header.SOURCE_TOPIC,
    Header.SOURCE_PARTITION,
    Header.SOURCE_OFFSET,
    Header.SOURCE_TIMESTAMP,
    Header.CONSUMER_ID,
)
