"""The rhacs collector."""
