"""Beam stages, one module each: feeds, fetch, clean, classify, dedup, write.

Each module exports one composite PTransform plus the plain functions it
applies, which tests call directly.
"""
