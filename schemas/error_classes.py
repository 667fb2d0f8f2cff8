"""The names of every way a record can fail: the ``error_class`` of dead letters, metrics and logs.

These names are a contract: operators filter dead letters by them (`docmill
dlq replay --error-class ...`), alert rules and dashboards group by them. The
consumer's exception classes carry these names (one class per member); a
dead letter's ``error_class`` stays a plain string so that a tool reading
letters written by a newer consumer still reads them.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorClass(StrEnum):
    # the message itself
    INVALID_MESSAGE = "InvalidMessage"
    MESSAGE_VALIDATION_ERROR = "MessageValidationError"
    UNSUPPORTED_SCHEMA_VERSION = "UnsupportedSchemaVersion"
    UNKNOWN_EXTRACTION_SCHEMA = "UnknownExtractionSchema"
    # fetching the document
    UNSUPPORTED_URI_SCHEME = "UnsupportedUriScheme"
    PATH_OUTSIDE_ALLOWED_ROOTS = "PathOutsideAllowedRoots"
    DOCUMENT_NOT_FOUND = "DocumentNotFound"
    FORBIDDEN_ADDRESS = "ForbiddenAddress"
    FETCH_FAILED = "FetchFailed"
    FETCH_UNAVAILABLE = "FetchUnavailable"
    # the document's content
    EMPTY_DOCUMENT = "EmptyDocument"
    UNSUPPORTED_DOCUMENT_TYPE = "UnsupportedDocumentType"
    CORRUPT_DOCUMENT = "CorruptDocument"
    ENCRYPTED_DOCUMENT = "EncryptedDocument"
    DOCUMENT_TOO_LARGE = "DocumentTooLarge"
    CONTENT_TYPE_MISMATCH = "ContentTypeMismatch"
    UNSUPPORTED_BY_BACKEND = "UnsupportedByBackend"
    NOTHING_EXTRACTED = "NothingExtracted"
    OCR_TIMEOUT = "OcrTimeout"
    # the extraction
    API_REQUEST_REJECTED = "ApiRequestRejected"
    API_AUTHENTICATION_FAILED = "ApiAuthenticationFailed"
    OUTPUT_VALIDATION_FAILED = "OutputValidationFailed"
    REFUSED = "Refused"
    RATE_LIMITED = "RateLimited"
    SPEND_LIMIT_REACHED = "SpendLimitReached"
    API_UNAVAILABLE = "ApiUnavailable"
    API_TIMEOUT = "ApiTimeout"
    API_CONNECTION_FAILED = "ApiConnectionFailed"
    # storing the outcome
    PUBLISH_REJECTED = "PublishRejected"
    KAFKA_UNAVAILABLE = "KafkaUnavailable"
    # a bug: nothing above
    UNEXPECTED_ERROR = "UnexpectedError"
