"""An evidence pack carries the periods of use, the v2 biometric records, and who verified each match."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from inferlog.evidence import Selection, build_pack, layout
from inferlog.evidence.verify import verify_pack
from inferlog.integrity.checkpointer import Checkpointer
from inferlog.integrity.signer import CheckpointSigner
from inferlog.integrity.signing_keys import init_signer, load_verifiers
from inferlog.record.ids import uuid7
from inferlog.record.model import Biometric, FeedbackEntry, InferenceRecord, Model
from inferlog.record.periods import PERIOD_ENDED, PERIOD_STARTED, period_entry
from inferlog.record.validate import decode_entry
from inferlog.store import open_store
from inferlog.testing import prepare
from tests.helpers import backend_url
from tests.record.test_schema import V1_INFERENCE, biometric

DAY = dt.datetime(2026, 5, 1, 9, tzinfo=dt.UTC)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_pack_shows_periods_matches_and_two_person_verification(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    """summary.json and report.html list the period and each match's verifiers; v1 and v2 entries verify in the pack."""
    url = backend_url(request, tmp_path / "log.db", backend)
    key_path = tmp_path / "signer.key"
    signer = init_signer(key_path, origin="oversight.test/log")
    pid = uuid7()
    matched, unverified = (
        InferenceRecord(
            id=uuid7(),
            system="border-gate",
            ts=DAY + dt.timedelta(minutes=i),
            model=Model("face-match", "3.1"),
            biometric=msgspec.convert(biometric(), Biometric),
        )
        for i in (1, 2)
    )
    verifications = [
        FeedbackEntry(
            id=uuid7(),
            system="border-gate",
            ts=DAY + dt.timedelta(minutes=5),
            inference_id=inference.id,
            actor=actor,
            verification="confirmed",
        )
        for inference, actor in ((matched, "officer-1"), (matched, "officer-2"), (unverified, "officer-1"))
    ]
    store = open_store(url)
    try:
        store.append(
            prepare(
                decode_entry(V1_INFERENCE),
                period_entry(
                    id=uuid7(),
                    system="border-gate",
                    ts=DAY,
                    action=PERIOD_STARTED,
                    period=pid,
                    purpose="gate A3",
                ),
                matched,
                unverified,
                *verifications,
                period_entry(
                    id=uuid7(),
                    system="border-gate",
                    ts=DAY + dt.timedelta(hours=1),
                    action=PERIOD_ENDED,
                    period=pid,
                ),
            )
        )
        Checkpointer(store, CheckpointSigner.beside_key(signer, key_path)).checkpoint()
        out = tmp_path / "pack"
        built = build_pack(
            store,
            Selection("border-gate", DAY - dt.timedelta(days=1), DAY + dt.timedelta(days=1)),
            signer,
            out,
        )
    finally:
        store.close()
    assert built.entries == 8
    report = verify_pack(out, load_verifiers([str(tmp_path / "signer.pub")]))
    assert report.ok, report
    script = subprocess.run(
        [sys.executable, str(out / layout.VERIFIER_SCRIPT), str(out), "--key", signer.verifier_key_string()],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert script.returncode == 0, script.stdout + script.stderr
    oversight = json.loads((out / "summary.json").read_text())["oversight"]
    (period,) = oversight["periods"]
    assert (period["id"], period["purpose"], period["start"][:16]) == (pid, "gate A3", "2026-05-01T09:00")
    assert period["end"] is not None
    bio = oversight["biometric"]
    assert (bio["uses"], bio["matches"], bio["two_person_verified"]) == (2, 2, 1)
    by_id = {m["id"]: m for m in bio["matches_listed"]}
    assert by_id[matched.id]["confirmed_by"] == ["officer-1", "officer-2"]
    assert not by_id[unverified.id]["two_person"]
    html = (out / "report.html").read_text()
    assert "Periods of use" in html
    assert "1 confirmed by two distinct persons" in html
