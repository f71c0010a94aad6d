"""Producers' common path: every way in converts to entries and hands them to one Ingestor."""

from inferlog.ingest.service import Ingestor

__all__ = ["Ingestor"]
