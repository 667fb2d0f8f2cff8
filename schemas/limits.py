"""Size limits that several parts of docmill must agree on, derived from one figure.

The Messages API accepts requests of at most 32 MB; a larger document can
never be extracted, so it is the fetch limit too. A dead letter keeps the
original record value verbatim, so the dead-letter topic and the consumer's
producer are sized from the same figure.
"""

from __future__ import annotations

from typing import Final

MIB: Final = 1024 * 1024

# The Messages API's largest request (see shared/ANTHROPIC-API.md).
MAX_API_REQUEST_BYTES: Final = 32 * MIB
# The largest document docmill fetches by default: one that fits a request.
MAX_DOCUMENT_BYTES: Final = MAX_API_REQUEST_BYTES
# Largest message the dead-letter topic is created to accept.
DLQ_MAX_MESSAGE_BYTES: Final = MAX_API_REQUEST_BYTES
# Values up to this size travel verbatim in their dead letter: base64 grows a
# binary value by a third, and the letter's own fields need room beside it.
MAX_VERBATIM_BYTES: Final = DLQ_MAX_MESSAGE_BYTES // 2
# What is kept of a larger value, or of any value when the cluster refuses the letter.
TRUNCATED_VALUE_BYTES: Final = 64 * 1024
# The consumer's producer must be able to send the largest dead letter, with its headers.
PRODUCER_MAX_REQUEST_BYTES: Final = DLQ_MAX_MESSAGE_BYTES + 2 * MIB
