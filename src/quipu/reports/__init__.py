"""Reports: fingerprints, deduplication and merge, details and deployments."""
