"""One record's work: the pipeline, the record processor, its outputs, retries and traces."""
