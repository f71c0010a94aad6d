"""The console's status pages: integrity (checkpoints, verification, off-box copies), retention, keys.

"Verify now" runs the same whole-log audit as ``inferlog verify`` in the server (auditor or admin,
as ``POST /v1/checkpoint``); its outcome is kept in memory and shown as the last verification.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from inferlog.apikeys import list_keys
from inferlog.integrity.publish import DirectoryPublisher, WebhookPublisher
from inferlog.integrity.verify import audit
from inferlog.server.console.web import Who, check_csrf, mark_console, read_form, render, secure
from inferlog.server.deps import State
from inferlog.server.state import ServerState

router = APIRouter(include_in_schema=False, dependencies=[Depends(mark_console)])
CHECKPOINTS_SHOWN = 10


@dataclass(frozen=True)
class Verification:
    """The outcome of the last "verify now": when, by whom, and what the audit found."""

    at: dt.datetime
    by: str
    seconds: float
    entries: int
    checkpoints: int
    problems: tuple[str, ...]
    warnings: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


_verify_lock = threading.Lock()  # one audit at a time: a second click waits for the first


def _offbox(state: ServerState) -> list[dict[str, Any]]:
    """Where checkpoints are copied off this box, and what each copy holds."""
    if state.checkpointer is None:
        return []
    copies: list[dict[str, Any]] = []
    for publisher in state.checkpointer.publishers:
        if isinstance(publisher, DirectoryPublisher):
            try:
                notes = publisher.notes()
            except OSError as exc:
                copies.append({"kind": "folder", "where": str(publisher.directory), "error": str(exc)})
                continue
            newest = notes[-1].split(b"\n")[1].decode() if notes else None
            copies.append(
                {"kind": "folder", "where": str(publisher.directory), "count": len(notes), "newest": newest}
            )
        elif isinstance(publisher, WebhookPublisher):
            copies.append({"kind": "webhook", "where": publisher.url})
        else:
            copies.append({"kind": type(publisher).__name__, "where": repr(publisher)})
    return copies


@router.get("/integrity")
def integrity(request: Request, state: State, viewer: Who) -> Response:
    checkpoints = state.store.checkpoints()
    size = state.store.size()
    newest = checkpoints[-1] if checkpoints else None
    return render(
        request,
        "integrity.html",
        viewer,
        {
            "title": "Integrity",
            "size": size,
            "checkpoints": checkpoints[-CHECKPOINTS_SHOWN:][::-1],
            "checkpoint_count": len(checkpoints),
            "newest": newest,
            "uncovered": size - (newest.size if newest else 0),
            "signer": state.checkpointer.signer.signer.verifier().to_key_string()
            if state.checkpointer
            else None,
            "offbox": _offbox(state),
            "publish_failures": state.checkpointer.publish_failures if state.checkpointer else 0,
            "last": getattr(request.app.state, "console_last_verify", None),
            "can_verify": viewer.can("auditor", "admin"),
        },
    )


def _verify(state: ServerState, by: str) -> Verification:
    verifiers = [state.checkpointer.signer.signer.verifier()] if state.checkpointer else []
    offbox: list[bytes] = []
    for publisher in state.checkpointer.publishers if state.checkpointer else ():
        if isinstance(publisher, DirectoryPublisher):
            offbox.extend(publisher.notes())
    with _verify_lock:
        started = time.monotonic()
        report = audit(state.store, verifiers, offbox)
        return Verification(
            at=dt.datetime.now(dt.UTC), by=by, seconds=time.monotonic() - started, entries=report.entries,
            checkpoints=report.checkpoints, problems=tuple(str(p) for p in report.problems),
            warnings=tuple(report.warnings),
        )  # fmt: skip


@router.post("/integrity/verify")
async def verify_now(request: Request, state: State, viewer: Who) -> Response:
    form = await read_form(request)
    check_csrf(form, viewer)
    viewer.principal.require("auditor", "admin")
    request.app.state.console_last_verify = await run_in_threadpool(_verify, state, viewer.principal.name)
    return secure(request, RedirectResponse("/integrity#last-verify", status_code=303), viewer)


@router.get("/retention")
def retention(request: Request, state: State, viewer: Who) -> Response:
    """The retention each system has, the legal holds, and the key store's presence (auditor, admin)."""
    viewer.principal.require("auditor", "admin")
    policy = None if state.protection is None else state.protection.policy
    systems = []
    holds = []
    if policy is not None:
        for system in policy.all_systems():
            if "*" in viewer.principal.systems or viewer.principal.covers(system.name):
                systems.append(system)
        holds = sorted(policy.holds, key=lambda h: h.name)
    return render(
        request,
        "retention.html",
        viewer,
        {
            "title": "Retention and holds",
            "policy": policy,
            "systems": systems,
            "holds": holds,
            "source": policy.source if policy is not None else None,
        },
    )


@router.get("/keys")
def keys(request: Request, state: State, viewer: Who) -> Response:
    """API keys, never their secrets (admin, as ``GET /v1/keys``)."""
    viewer.principal.require("admin")
    return render(request, "keys.html", viewer, {"title": "API keys", "keys": list_keys(state.store)})
