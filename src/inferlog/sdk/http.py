"""Talking to an ``inferlog serve``: the HTTP transport (the shipper's) and a reader (the caller's).

The transport sends NDJSON batches to ``POST /v1/records``. Anything but a clear answer raises, so the
shipper keeps the batch in the spool and retries with backoff; the server deduplicates by id, so
at-least-once delivery ends exactly-once in the store. A record the server refuses (422) is answered
``invalid`` for that record alone and the rest of the batch is sent again; a batch over the server's
size limit (413) is split in halves.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import msgspec

from inferlog.errors import ModelConflict, NotFound, RecordInvalid, StoreUnavailable, UsageError
from inferlog.lineage import Registration
from inferlog.model_schemas import ModelSchema, SchemaSource
from inferlog.record.canonical import canonical_json
from inferlog.record.model import Entry, StoredEntry
from inferlog.record.validate import decode_entry
from inferlog.store.base import AppendResult, Page

_TIMEOUT = httpx.Timeout(30.0, connect=5.0)


def _client(base_url: str, api_key: str | None) -> httpx.Client:
    headers = {"User-Agent": "inferlog-sdk"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=_TIMEOUT)


_inherited: list[httpx.Client] = []  # clients a forked child inherited: their sockets are the parent's


class _PerProcess:
    """Holds an httpx client for this process: a forked child makes its own instead of sharing the
    parent's keep-alive sockets (and the pool lock a parent thread may have held at the fork)."""

    def __init__(self, base_url: str, api_key: str | None) -> None:
        self._args = (base_url, api_key)
        self._pid = os.getpid()
        self._http = _client(base_url, api_key)

    def _client(self) -> httpx.Client:
        if self._pid != os.getpid():
            _inherited.append(self._http)  # set aside, not closed: closing would touch the parent's
            self._http = _client(*self._args)
            self._pid = os.getpid()
        return self._http

    def close(self) -> None:
        if self._pid == os.getpid():
            self._http.close()


class HttpTransport(_PerProcess):
    """Delivers batches to an inferlog server."""

    def __init__(self, base_url: str, api_key: str | None = None) -> None:
        super().__init__(base_url, api_key)
        self.base_url = base_url

    def send(self, batch: Sequence[Entry]) -> list[AppendResult]:
        results: dict[int, AppendResult] = {}
        self._send(list(enumerate(batch)), results)
        return [results[i] for i in range(len(batch))]

    def _send(self, items: list[tuple[int, Entry]], results: dict[int, AppendResult]) -> None:
        while items:
            body = b"\n".join(msgspec.json.encode(entry) for _, entry in items)
            try:
                response = self._client().post(
                    "/v1/records", content=body, headers={"Content-Type": "application/x-ndjson"}
                )
            except httpx.HTTPError as exc:
                raise StoreUnavailable(f"cannot reach {self.base_url}: {exc}") from exc
            if response.status_code == 200:
                answers = response.json()["results"]
                for (index, _), answer in zip(items, answers, strict=True):
                    results[index] = AppendResult(
                        answer["id"], answer["seq"], answer["status"], answer.get("reason")
                    )
                return
            if response.status_code == 413 and len(items) > 1:
                half = len(items) // 2
                self._send(items[:half], results)
                items = items[half:]
                continue
            detail = _detail(response)
            bad = detail.get("index")
            if response.status_code in (413, 422) and (
                (isinstance(bad, int) and 0 <= bad < len(items)) or len(items) == 1
            ):
                position = bad if isinstance(bad, int) else 0
                index, entry = items.pop(position)
                results[index] = AppendResult(entry.id, None, "invalid", detail.get("message", response.text))
                continue
            raise StoreUnavailable(
                f"{self.base_url} answered {response.status_code}: {detail.get('message', response.text[:200])}"
            )


class HttpReader(_PerProcess):
    """Reads through the server's API; every read states a purpose and is audited there."""

    def __init__(self, base_url: str, api_key: str | None = None) -> None:
        super().__init__(base_url, api_key)
        self.base_url = base_url

    def get(self, entry_id: str, purpose: str) -> StoredEntry | None:
        """The entry with this id, as the same :class:`StoredEntry` ``log.get`` answers (``.output``)."""
        response = self._request("GET", f"/v1/records/{entry_id}", params={"purpose": purpose})
        if response.status_code == 404:
            return None
        return self._stored(response.json())

    def query(self, purpose: str, **params: Any) -> Page:
        """A page of entries, as the same :class:`Page` ``log.query`` answers (``next_cursor`` continues)."""
        response = self._request("GET", "/v1/records", params={"purpose": purpose, **params})
        data = response.json()
        return Page([self._stored(item) for item in data["entries"]], data.get("next_cursor"))

    def models(self) -> list[Registration]:
        """The server's registered models (``GET /v1/models``)."""
        return [_registration(item) for item in self._request("GET", "/v1/models").json()]

    def register_model(
        self,
        name: str,
        version: str,
        *,
        digest: str,
        uri: str | None,
        card: dict[str, Any] | None,
        schema: Mapping[str, Any] | None = None,
    ) -> Registration:
        """Register a model version through the server (``POST /v1/models``, an admin key)."""
        body = {"name": name, "version": version, "digest": digest, "uri": uri, "card": card}
        if schema is not None:
            body["schema"] = dict(schema)
        return _registration(self._request("POST", "/v1/models", json=body).json())

    def record_schema(
        self, name: str, version: str, schema: Mapping[str, Any], source: SchemaSource = "user"
    ) -> ModelSchema:
        """Record a model version's schema through the server (``POST /v1/models/schemas``, an admin key)."""
        body = {"name": name, "version": version, "schema": dict(schema), "source": source}
        return _model_schema(self._request("POST", "/v1/models/schemas", json=body).json())

    def model_schemas(self) -> list[ModelSchema]:
        """The latest schema of each model version (``GET /v1/models/schemas``)."""
        return [_model_schema(item) for item in self._request("GET", "/v1/models/schemas").json()]

    def _stored(self, data: dict[str, Any]) -> StoredEntry:
        """An entry as the server showed it to this key, in the type a store read gives.

        The server does not send the leaf: ``leaf`` and ``leaf_hash`` are empty here (ask for the
        inclusion proof, ``GET /v1/records/{id}/proof``, to check an entry against a checkpoint).
        """
        fields = dict(data)
        seq = fields.pop("seq")
        logged_at = dt.datetime.fromisoformat(fields.pop("logged_at"))
        purged = fields.pop("purged", False)
        unreadable = fields.pop("unreadable", None)  # a sealed entry the server could not open
        try:
            entry = decode_entry(msgspec.json.encode(fields))
        except RecordInvalid as exc:
            raise StoreUnavailable(f"{self.base_url} answered an entry this SDK cannot read: {exc}") from None
        body = None if purged else canonical_json(entry)
        return StoredEntry(
            seq=seq,
            entry=entry,
            logged_at=logged_at,
            body=body,
            leaf=b"",
            leaf_hash=b"",
            unreadable=unreadable,
        )

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client().request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise StoreUnavailable(f"cannot reach {self.base_url}: {exc}") from exc
        if response.status_code == 409:
            raise ModelConflict(_detail(response).get("message", response.text[:200]))
        if response.status_code in (200, 201, 404):
            if response.status_code == 404 and "/v1/records/" not in path:
                raise NotFound(_detail(response).get("message", "not found"))
            return response
        message = _detail(response).get("message", response.text[:200])
        if response.status_code in (400, 401, 403, 422):
            raise UsageError(f"{self.base_url} refused the read ({response.status_code}): {message}")
        raise StoreUnavailable(f"{self.base_url} answered {response.status_code}: {message}")


def _model_schema(data: dict[str, Any]) -> ModelSchema:
    at = data.get("recorded_at")
    return ModelSchema(
        name=data["name"],
        version=data["version"],
        source=data["source"],
        inputs=data["inputs"],
        outputs=data["outputs"],
        sha256=data["sha256"],
        actor=data.get("recorded_by"),
        ts=dt.datetime.fromisoformat(at) if at else None,
        entry_id=data.get("entry_id"),
        changed=bool(data.get("changed")),
    )


def _registration(data: dict[str, Any]) -> Registration:
    at = data.get("registered_at")
    return Registration(
        name=data["name"],
        version=data["version"],
        digest=data["digest"],
        uri=data.get("uri"),
        card=data.get("card"),
        actor=data.get("registered_by"),
        ts=dt.datetime.fromisoformat(at) if at else None,
        entry_id=data.get("entry_id"),
    )


def _detail(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
