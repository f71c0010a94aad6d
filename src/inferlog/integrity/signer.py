"""The checkpoint signer: signs tree heads, and never one inconsistent with the last it signed.

It keeps its own record of the last size and root it signed (a state file beside its key, not in the
database), and demands a consistency proof from there to the new head before it signs. A database
rolled back, forked or rewritten therefore cannot get a signature for its new history.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

from inferlog.errors import IntegrityError
from inferlog.integrity.files import write_atomic
from inferlog.ledger.checkpoint import Checkpoint, NoteSigner, sign_checkpoint
from inferlog.ledger.merkle import ProofError, verify_consistency

ProveFrom = Callable[[int, int], list[bytes]]


class CheckpointSigner:
    """Signs checkpoints with one key, keeping the last signed head in ``state_path``."""

    def __init__(self, signer: NoteSigner, state_path: Path) -> None:
        self.signer = signer
        self.state_path = state_path

    @property
    def origin(self) -> str:
        return self.signer.name

    def last(self) -> tuple[int, bytes] | None:
        try:
            data = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return None
        return int(data["size"]), base64.b64decode(data["root"])

    def sign(self, size: int, root: bytes, prove: ProveFrom) -> bytes:
        """Sign (size, root) if it extends the last signed head; ``prove(a, b)`` gives the proof."""
        last = self.last()
        if last is not None:
            last_size, last_root = last
            if size < last_size:
                raise IntegrityError(
                    f"refusing to sign size {size}: already signed size {last_size} (the log shrank or was rolled back)"
                )
            try:
                verify_consistency(last_size, size, last_root, root, prove(last_size, size))
            except ProofError as exc:
                raise IntegrityError(
                    f"refusing to sign size {size}: it is not consistent with the signed size {last_size} ({exc})"
                ) from exc
        note = sign_checkpoint(Checkpoint(self.origin, size, root), self.signer)
        state = {"origin": self.origin, "size": size, "root": base64.b64encode(root).decode()}
        write_atomic(self.state_path, json.dumps(state).encode())
        return note

    @classmethod
    def beside_key(cls, signer: NoteSigner, key_path: Path) -> CheckpointSigner:
        return cls(signer, key_path.with_name(key_path.name + ".state"))
