"""The message-broker path: what the SDK's NATS transport and ``inferlog worker`` share.

:mod:`inferlog.broker.wire` is the contract between them (the URL, the stream, the message: one entry
as msgpack, ``Nats-Msg-Id`` = its id); :mod:`inferlog.broker.loop` runs nats-py's asyncio client in one
named thread so that the synchronous shipper and worker can use it. A Kafka transport would take the
same shape: the wire contract, a client thread, and a ``Transport`` (see docs/deployment.md).
"""
