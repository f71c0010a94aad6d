"""Wrappers that log inferences of popular model libraries without touching their code."""
