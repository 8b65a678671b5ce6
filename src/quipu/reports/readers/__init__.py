"""The fingerprint readers of the API source types added after the first three, one module each."""
