"""Every way a record can fail, as typed exceptions.

Each class is one ``ErrorClass`` (its name is the ``error_class`` operators
see in dead letters, metrics and logs, so names are part of the contract).
What becomes of a record that meets one is decided by the fate table
(``consumer.fate.table``), not here: a ``PermanentError`` is one retrying
cannot fix, a ``TransientError`` one that may pass.
"""

from __future__ import annotations

from typing import ClassVar

from schemas.error_classes import ErrorClass


class ProcessingError(Exception):
    """Base of every classified failure of a record."""

    # Whether replaying the dead letter later may succeed (the letter's ``retryable`` flag).
    retryable: ClassVar[bool] = False
    # A finer reason than the class, where the failure has one (e.g. a refusal's category).
    category: str | None = None

    @property
    def error_class(self) -> ErrorClass:
        return ErrorClass(type(self).__name__)


class PermanentError(ProcessingError):
    """Retrying cannot help."""


class TransientError(ProcessingError):
    """May succeed later; the server may say when (``retry_after``, seconds)."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# --- the message itself ----------------------------------------------------


class InvalidMessage(PermanentError):
    """The value is not UTF-8 JSON, or not a JSON object."""


class MessageValidationError(PermanentError):
    """A required field is missing or has the wrong type."""


class UnsupportedSchemaVersion(PermanentError):
    """The message uses a schema_version newer than this consumer understands."""


class UnknownExtractionSchema(PermanentError):
    """The message names an extraction schema this consumer does not have."""


# --- fetching the document ------------------------------------------------


class UnsupportedUriScheme(PermanentError):
    """The URI's scheme is not one docmill fetches (or is disabled)."""


class PathOutsideAllowedRoots(PermanentError):
    """A file:// reference resolves outside every configured root (also via .. or symlinks)."""


class DocumentNotFound(PermanentError):
    """The referenced file or URL does not exist."""


class ForbiddenAddress(PermanentError):
    """A remote reference points at a private, loopback, link-local or metadata address."""


class FetchFailed(PermanentError):
    """The remote server answered with a client error."""


class FetchUnavailable(TransientError):
    """The remote server could not be reached or answered with a server error."""


# --- the document's content --------------------------------------------------


class EmptyDocument(PermanentError):
    """The document has zero bytes."""


class UnsupportedDocumentType(PermanentError):
    """The bytes are not a type docmill extracts (PDF, JPEG, PNG, GIF, WebP, plain text)."""


class CorruptDocument(PermanentError):
    """The bytes claim a type but cannot be parsed as it (truncated PDF, broken image)."""


class EncryptedDocument(PermanentError):
    """The PDF is encrypted and cannot be read without a password."""


class DocumentTooLarge(PermanentError):
    """The document exceeds a limit of the API or of docmill (bytes, pages or pixels)."""


class ContentTypeMismatch(PermanentError):
    """The declared content type (reference or HTTP header) contradicts the bytes."""


class UnsupportedByBackend(PermanentError):
    """The configured backend cannot read this kind of document (e.g. a schema `local` lacks)."""


class NothingExtracted(PermanentError):
    """The document was read but holds nothing to extract: a blank or unreadable page, or no
    field's label on it (the `local` backend)."""


class OcrTimeout(PermanentError):
    """Reading the document's pages took longer than DOCMILL_OCR_TIMEOUT_SECONDS.

    Retrying cannot make the same pages faster, but a replay after raising the limit can."""

    retryable = True


# --- the extraction ----------------------------------------------------------


class ApiRequestRejected(PermanentError):
    """The API refused the request as invalid (400, 404, 413, 422)."""


class ApiAuthenticationFailed(PermanentError):
    """The API refused the credentials or the permission (401, 403)."""


class OutputValidationFailed(PermanentError):
    """The model's reply did not match the extraction schema, also after a second try."""


class Refused(PermanentError):
    """The model declined the document (HTTP 200, ``stop_reason: "refusal"``), also on the
    fallback model when one is configured. ``category`` is the API's reason, when it gives one."""

    def __init__(self, message: str, category: str | None = None) -> None:
        super().__init__(message)
        self.category = category


class RateLimited(TransientError):
    """The API answered 429 with a retry-after."""


class SpendLimitReached(TransientError):
    """The organisation's spend cap is reached: nothing works until an operator acts."""


class ApiUnavailable(TransientError):
    """The API answered 5xx or 529 (overloaded), or a retriable 408/409."""


class ApiTimeout(TransientError):
    """The API call exceeded its time limit."""


class ApiConnectionFailed(TransientError):
    """The API could not be reached."""


class PublishRejected(PermanentError):
    """Kafka refused to store the outcome for good (e.g. larger than the topic accepts)."""


class KafkaUnavailable(TransientError):
    """A retriable Kafka error (leader moved, broker unreachable, request timed out)."""


# --- none of the above --------------------------------------------------------


class UnexpectedError(ProcessingError):
    """An exception no class above foresaw: a bug in docmill or a library, not a bad record.

    Retryable: once the bug is fixed, the letter can be replayed.
    """

    retryable = True
