"""Publishing document references to Kafka (CLI and async API), and topic administration."""

from producer.publisher import Publisher

__all__ = ["Publisher"]
