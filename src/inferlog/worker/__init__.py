"""``inferlog worker``: the ingest path run in other processes, fed by a NATS JetStream stream.

See :mod:`inferlog.worker.consumer` for the loop and its guarantees, :mod:`inferlog.worker.signing`
for how exactly one worker signs checkpoints, and docs/deployment.md for running a fleet.
"""

from inferlog.worker.consumer import Worker, WorkerOptions
from inferlog.worker.deadletter import DEAD_LETTER_ACTION, DEAD_LETTER_ATTRIBUTE
from inferlog.worker.metrics import MetricsServer, WorkerMetrics
from inferlog.worker.signing import SignerElection

__all__ = [
    "DEAD_LETTER_ACTION",
    "DEAD_LETTER_ATTRIBUTE",
    "MetricsServer",
    "SignerElection",
    "Worker",
    "WorkerMetrics",
    "WorkerOptions",
]
