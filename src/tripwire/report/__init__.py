"""Case reports: items.jsonl and items.csv for machines, report.html for people. No media is ever shown."""
