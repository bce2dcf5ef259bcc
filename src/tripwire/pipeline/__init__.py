"""The scan pipeline: sources -> items -> extractors (in worker processes) -> stages -> store -> reports."""
