"""Typed records, output schemas, settings and the data files the stages apply."""
