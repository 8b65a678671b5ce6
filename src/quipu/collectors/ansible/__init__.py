"""The ansible collector."""
