"""Placeholder; see README."""
