"""Batch scoring jobs: a score.py (`init()`, `run(mini_batch)`) over many files, as Azure ML batch
deployments run it, with their log layout and with telemetry to the collector.

`insights batch run` (cli.py) checks the settings (settings.py), splits the input into mini-batches
(inputs.py) and hands them to the orchestrator (orchestrator.py), which runs N worker processes
(worker.py, speaking protocol.py), writes the output rows and the log layout (layout.py, overview.py),
samples resources (monitor.py) and reports each mini-batch to the collector through the scoring
wrapper's own telemetry stages (telemetry.py). `insights batch status` reads a job back (status.py).
"""
