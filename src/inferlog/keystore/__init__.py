"""Key stores: where the keys that seal entries live, apart from the log database.

The log's database and its backups hold only wrapped data keys; the keys that unwrap them live here,
so destroying one here shreds every copy of what it sealed. :func:`open_keystore` picks an
implementation by URL scheme (a file path means the local SQLite key store); a cloud KMS plugs in
through the same :class:`KeyStore` protocol.

These are the *encryption* keys (sealing payloads, pseudonymizing subjects, sealing spool frames);
erasure and retention destroy them. They are not the Ed25519 *signing* key that signs checkpoints (a
file, see :mod:`inferlog.integrity`), nor the *API keys* callers present to the server (rows in the
log's store, see :mod:`inferlog.apikeys`).
"""

from __future__ import annotations

from inferlog.keystore.base import KeyInfo, KeyStore, open_keystore
from inferlog.keystore.local import LocalKeyStore

__all__ = ["KeyInfo", "KeyStore", "LocalKeyStore", "open_keystore"]
