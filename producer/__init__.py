"""What upstream services embed to publish document references: imports only ``schemas``, never the SDK."""

from producer.publisher import Publisher

__all__ = ["Publisher"]
