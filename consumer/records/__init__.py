"""One record's path: decode its reference, have it extracted, store its result or dead letter."""
