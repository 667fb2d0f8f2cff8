"""Getting a document's bytes safely, and finding out from them what the document is."""
