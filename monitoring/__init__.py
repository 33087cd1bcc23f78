"""Model monitoring (issue 17): data drift, prediction drift and data quality of what score.py's
collectors sent (`modelData`), against a frozen reference, per feature, per window; results in
`modelMonitorResults`. A collector extension (extension.py: MonitoringExtension) with its API
(api.py) and CLI (cli.py). Nothing is imported here, so that the CLI does not load what a run needs."""
