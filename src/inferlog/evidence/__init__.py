"""Evidence packs for auditors: what a system did over a period, with the proofs, verifiable offline.

``build_pack`` writes a pack (a zip or a folder): the entries as JSON lines and Parquet, each with its
inclusion proof against one signed checkpoint, consistency proofs from earlier checkpoints, the
checkpoint notes and verifier key, the policy history, feedback and overrides, the access trail,
retention and erasure entries, the model lineage, an HTML report, a standalone verifier, and a
manifest of every file's SHA-256 signed with the log's key. ``verify_pack`` checks one with no
database; ``standalone.py`` (``verify_pack.py`` in every pack) does the same without inferlog.
"""

from inferlog.evidence.build import BuiltPack, build_pack
from inferlog.evidence.select import Selection
from inferlog.evidence.verify import PackProblem, PackReport, verify_pack

__all__ = ["BuiltPack", "PackProblem", "PackReport", "Selection", "build_pack", "verify_pack"]
