"""One module per input format. Each exposes a PTransform that reads files and returns a dict of
PCollections: ``documents`` (rows of the documents schema), ``errors`` (dead-letter records, see
``pipeline.records.error_record``) and, where the format has them, ``redirects``."""
