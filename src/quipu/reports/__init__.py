"""Reports: fingerprints, deduplication and merge, details and deployments."""

from quipu.reports.builders import SourceFacts, build_deployments, build_details
from quipu.reports.fields import FIELDS, InfrastructureType
from quipu.reports.fingerprint import Fingerprint, fingerprint
from quipu.reports.writers import DEPLOYMENT_CSV_COLUMNS, build_tarball, write_deployments_csv

__all__ = [
    "DEPLOYMENT_CSV_COLUMNS",
    "FIELDS",
    "Fingerprint",
    "InfrastructureType",
    "SourceFacts",
    "build_deployments",
    "build_details",
    "build_tarball",
    "fingerprint",
    "write_deployments_csv",
]
