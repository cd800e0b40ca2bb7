"""Hostile review of the keyed reads, bulk writes, held uploads, mapped files and era groups."""
