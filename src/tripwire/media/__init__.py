"""Media intake: sniff types from magic bytes, open images within limits, walk folders and archives."""
