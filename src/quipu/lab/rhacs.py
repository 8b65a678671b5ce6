"""A fake Red Hat Advanced Cluster Security (RHACS) Central: its REST API over real HTTPS on
loopback, for tests and demos.

It answers the calls a discovery tool makes, in the shapes of the RHACS API reference (the
gRPC gateway's JSON: 64-bit integers as strings, errors as ``{code, message, details}``):
``GET /v1/metadata`` (open to anonymous callers, who get no version, as Central does),
``GET /v1/auth/status``, ``GET /v1/administration/usage/secured-units/current``,
``GET /v1/administration/usage/secured-units/max`` (``from`` and ``to``, RFC 3339) and
``GET /v1/clusters``. Every call but the metadata needs the API token as a bearer token.

Secured clusters are generated from their position alone, so two runs with the same count
agree; so are the usage figures: the current ones are the clusters' nodes and CPU units, and
a fixed monthly history has its node peak and its CPU peak at known times.
:func:`expected_facts` gives, from the same description, the facts a collector should report;
:class:`Behaviour` switches on the faults a real Central shows (an expired token, a token
without the Administration permission, a token check that lists no permissions, a 500, a slow
answer, malformed JSON, latency).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import secrets
import ssl
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from quipu.lab.https import FakeService, Reply, Request, json_reply, serving

CENTRAL_VERSION = "4.5.1"
METADATA = "/v1/metadata"
AUTH_STATUS = "/v1/auth/status"
USAGE_CURRENT = "/v1/administration/usage/secured-units/current"
USAGE_MAX = "/v1/administration/usage/secured-units/max"
CLUSTERS = "/v1/clusters"
USAGE_PATHS = (USAGE_CURRENT, USAGE_MAX)

NODE_PEAK = 2
"""The history's node peak is this many nodes above the current count."""
CPU_PEAK = 8
"""The history's CPU peak is this many CPU units above the current count."""
_HISTORY_START = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
_HISTORY_MONTHS = 12
_NODE_PEAK_MONTH, _CPU_PEAK_MONTH = 6, 9
_LAST_CONTACT = datetime.datetime(2025, 11, 30, 12, 0, tzinfo=datetime.UTC)
_TOKEN_EXPIRES = datetime.datetime(2099, 1, 1, tzinfo=datetime.UTC)
_NAMESPACE = uuid.UUID("6f1e0c7a-8d51-4a57-9b1e-3c6f2a9d4e10")

# (cluster type, provider, region, OpenShift version or None) per position, cycling.
_KINDS = (
    ("OPENSHIFT4_CLUSTER", "aws", "us-east-1", "4.14.12"),
    ("KUBERNETES_CLUSTER", "google", "europe-west1", None),
    ("OPENSHIFT4_CLUSTER", "azure", "eastus", "4.15.3"),
    ("KUBERNETES_CLUSTER", None, None, None),
)
_KUBERNETES = {"4.14.12": "v1.27.10+28ed2d7", "4.15.3": "v1.28.6+6216ea1", None: "v1.29.4"}
_CPUS_PER_NODE = (4, 8, 16)

_GRPC_UNAUTHENTICATED, _GRPC_PERMISSION_DENIED, _GRPC_NOT_FOUND = 16, 7, 5
_GRPC_INVALID_ARGUMENT, _GRPC_INTERNAL = 3, 13


@dataclasses.dataclass(frozen=True, kw_only=True)
class Behaviour:
    """How the fake departs from a healthy Central; path switches name one API path."""

    latency_s: float = 0.0
    """Added to every request before it is answered (a remote, busy Central)."""
    expired_token: bool = False
    """Every authenticated call answers 401, as for an expired or revoked API token."""
    usage_forbidden: bool = False
    """The usage endpoints answer 403, as for a token whose role lacks Administration read."""
    lists_permissions: bool = True
    """``/v1/auth/status`` lists the token's permissions (False: it names the user only)."""
    failing_path: str | None = None
    """This path answers HTTP 500."""
    slow_path: str | None = None
    """This path is answered only after ``slow_s``."""
    slow_s: float = 5.0
    malformed_path: str | None = None
    """This path answers cut-off JSON."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Cluster:
    """One generated secured cluster: its API answer and its expected facts come from it."""

    index: int
    name: str
    id: str
    type: str
    provider: str | None
    region: str | None
    openshift_version: str | None
    kubernetes_version: str
    nodes: int
    cpus_per_node: int
    healthy: bool

    @property
    def cpu_units(self) -> int:
        return self.nodes * self.cpus_per_node

    @property
    def zone(self) -> str | None:
        return None if self.region is None else f"{self.region}-{'abc'[self.index % 3]}"

    @property
    def provider_cluster_id(self) -> str:
        return str(uuid.uuid5(_NAMESPACE, f"provider/{self.name}"))


def _cluster(index: int) -> _Cluster:
    kind, provider, region, openshift = _KINDS[index % len(_KINDS)]
    name = f"secured-{index + 1:02d}"
    return _Cluster(
        index=index,
        name=name,
        id=str(uuid.uuid5(_NAMESPACE, name)),
        type=kind,
        provider=provider,
        region=region,
        openshift_version=openshift,
        kubernetes_version=_KUBERNETES[openshift],
        nodes=3 + index % 4,
        cpus_per_node=_CPUS_PER_NODE[index % len(_CPUS_PER_NODE)],
        healthy=index % 5 != 4,
    )


def _time(moment: datetime.datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _month(month: int) -> datetime.datetime:
    return _HISTORY_START + datetime.timedelta(days=30 * month)


def _history(clusters: list[_Cluster]) -> list[tuple[datetime.datetime, int, int]]:
    """(time, nodes, CPU units) of the usage Central stored month by month: at or below
    today's figures except at the two peaks."""
    nodes = sum(c.nodes for c in clusters)
    cpus = sum(c.cpu_units for c in clusters)
    rows = []
    for month in range(_HISTORY_MONTHS):
        month_nodes = nodes + NODE_PEAK if month == _NODE_PEAK_MONTH else max(0, nodes - month % 3)
        month_cpus = cpus + CPU_PEAK if month == _CPU_PEAK_MONTH else max(0, cpus - 4 * (month % 2))
        rows.append((_month(month), month_nodes, month_cpus))
    return rows


def _parse_time(value: str) -> datetime.datetime:
    moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(value)
    return moment


def _cluster_json(cluster: _Cluster) -> dict[str, Any]:
    """One cluster of ``GET /v1/clusters``, as Central's storage.Cluster renders it."""
    health = "HEALTHY" if cluster.healthy else "UNHEALTHY"
    provider: dict[str, Any] = {}
    if cluster.provider is not None:
        provider = {
            "region": cluster.region,
            "zone": cluster.zone,
            "verified": True,
            "cluster": {
                "type": "OCP" if cluster.openshift_version else "GKE",
                "name": cluster.name,
                "id": cluster.provider_cluster_id,
            },
        }
        provider[cluster.provider] = {
            "aws": {"accountId": "123456789012"},
            "google": {"project": "acme-prod", "clusterName": cluster.name},
            "azure": {"subscriptionId": "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"},
        }[cluster.provider]
    last_contact = _time(_LAST_CONTACT - datetime.timedelta(minutes=cluster.index))
    return {
        "id": cluster.id,
        "name": cluster.name,
        "type": cluster.type,
        "labels": {"env": "prod" if cluster.index % 2 == 0 else "test"},
        "mainImage": "registry.redhat.io/advanced-cluster-security/rhacs-main-rhel8",
        "collectorImage": "registry.redhat.io/advanced-cluster-security/rhacs-collector-rhel8",
        "centralApiEndpoint": "central.stackrox.svc:443",
        "runtimeSupport": True,
        "collectionMethod": "CORE_BPF",
        "admissionController": cluster.index % 2 == 0,
        "admissionControllerUpdates": False,
        "admissionControllerEvents": True,
        "status": {
            "sensorVersion": CENTRAL_VERSION,
            "DEPRECATEDLastContact": None,
            "providerMetadata": provider or None,
            "orchestratorMetadata": {
                "version": cluster.kubernetes_version,
                "openshiftVersion": cluster.openshift_version or "",
                "buildDate": "2024-03-01T10:00:00Z",
                "apiVersions": ["apps/v1", "v1"],
            },
            "upgradeStatus": {"upgradability": "UP_TO_DATE", "mostRecentProcess": None},
            "certExpiryStatus": {
                "sensorCertExpiry": "2026-11-01T00:00:00Z",
                "sensorCertNotBefore": "2025-11-01T00:00:00Z",
            },
        },
        "tolerationsConfig": {"disabled": False},
        "priority": str(cluster.index + 1),
        "healthStatus": {
            "id": cluster.id,
            "collectorHealthInfo": {
                "version": CENTRAL_VERSION,
                "totalDesiredPods": cluster.nodes,
                "totalReadyPods": cluster.nodes if cluster.healthy else cluster.nodes - 1,
                "totalRegisteredNodes": cluster.nodes,
                "statusErrors": [],
            },
            "sensorHealthStatus": health,
            "collectorHealthStatus": health,
            "overallHealthStatus": health,
            "admissionControlHealthStatus": "HEALTHY",
            "scannerHealthStatus": "UNINITIALIZED",
            "lastContact": last_contact,
            "healthInfoComplete": True,
        },
        "slimCollector": False,
        "helmConfig": None,
        "managedBy": "MANAGER_TYPE_MANUAL",
        "sensorCapabilities": [],
    }


def _expected_cluster(cluster: _Cluster) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "id": cluster.id,
        "name": cluster.name,
        "type": cluster.type,
        "labels": {"env": "prod" if cluster.index % 2 == 0 else "test"},
        "health_status": "HEALTHY" if cluster.healthy else "UNHEALTHY",
        "last_contact": _time(_LAST_CONTACT - datetime.timedelta(minutes=cluster.index)),
        "sensor_version": CENTRAL_VERSION,
        "kubernetes_version": cluster.kubernetes_version,
        "openshift_version": cluster.openshift_version,
        "nodes": cluster.nodes,
        "provider": cluster.provider,
        "region": cluster.region,
        "zone": cluster.zone,
        "provider_cluster_id": None if cluster.provider is None else cluster.provider_cluster_id,
        "admission_controller": cluster.index % 2 == 0,
        "collection_method": "CORE_BPF",
        "managed_by": "MANAGER_TYPE_MANUAL",
    }
    return {key: value for key, value in facts.items() if value is not None}


def expected_facts(
    *, clusters: int, host: str, port: int, behaviour: Behaviour | None = None
) -> dict[str, Any]:
    """The facts a collector should report for the Central at ``host:port``.

    Written from the clusters' description, not from the API answers, so that a collector
    is checked against what the estate is rather than against its own reading of the JSON.
    A failing, slow or malformed ``/v1/clusters`` leaves the clusters out.
    """
    behaviour = behaviour or Behaviour()
    generated = [_cluster(i) for i in range(clusters)]
    nodes = sum(c.nodes for c in generated)
    cpus = sum(c.cpu_units for c in generated)
    facts: dict[str, Any] = {
        "central": {
            "host": host,
            "port": port,
            "version": CENTRAL_VERSION,
            "build_flavor": "release",
            "release_build": True,
            "license_status": "VALID",
        },
        "secured_units_current": {"numNodes": str(nodes), "numCpuUnits": str(cpus)},
        "secured_units_max": {
            "maxNodesAt": _time(_month(_NODE_PEAK_MONTH)),
            "maxNodes": str(nodes + NODE_PEAK),
            "maxCpuUnitsAt": _time(_month(_CPU_PEAK_MONTH)),
            "maxCpuUnits": str(cpus + CPU_PEAK),
        },
        "clusters": [_expected_cluster(c) for c in generated],
    }
    if CLUSTERS in (behaviour.failing_path, behaviour.slow_path, behaviour.malformed_path):
        del facts["clusters"]
    return facts


def _error(status: int, code: int, message: str) -> Reply:
    return json_reply(status, {"code": code, "message": message, "details": []})


class FakeCentral(FakeService):
    """Answers Central's API for ``clusters`` generated secured clusters; counts what it serves."""

    name = "fake RHACS Central"

    def __init__(self, *, clusters: int, token: str, behaviour: Behaviour) -> None:
        super().__init__(latency_s=behaviour.latency_s)
        self.clusters = [_cluster(i) for i in range(clusters)]
        self.behaviour = behaviour
        self._authorization = f"Bearer {token}"
        self.queries: dict[str, Mapping[str, str]] = {}
        """The query string of the last request per path, for tests of what was asked."""

    def route(self, request: Request) -> Reply:
        behaviour, path = self.behaviour, request.path
        self.queries[path] = dict(request.query)
        if path == behaviour.slow_path:
            self.pause(behaviour.slow_s)
        authenticated = (
            request.headers.get("Authorization") == self._authorization
            and not behaviour.expired_token
        )
        if path == METADATA and request.method == "GET":
            # Central answers anyone, and tells its version to logged-in callers only.
            return self._answer(path, self._metadata(authenticated=authenticated))
        if not authenticated:
            return _error(
                401,
                _GRPC_UNAUTHENTICATED,
                "credentials not found: token validation failed: token expired",
            )
        if behaviour.usage_forbidden and path in USAGE_PATHS:
            return _error(
                403,
                _GRPC_PERMISSION_DENIED,
                'access for this user is not authorized: not authorized to "view" '
                '"Administration" resource',
            )
        if request.method != "GET":
            return _error(405, _GRPC_NOT_FOUND, "Method Not Allowed")
        if path == AUTH_STATUS:
            return self._answer(path, self._auth_status())
        if path == USAGE_CURRENT:
            return self._answer(path, self._current())
        if path == USAGE_MAX:
            return self._max(request.query)
        if path == CLUSTERS:
            return self._answer(
                path,
                {
                    "clusters": [_cluster_json(c) for c in self.clusters],
                    "clusterIdToRetentionInfo": {},
                },
            )
        return _error(404, _GRPC_NOT_FOUND, "Not Found")

    def _answer(self, path: str, value: Any) -> Reply:
        if path == self.behaviour.failing_path:
            return _error(
                500, _GRPC_INTERNAL, "could not query the database: connection reset by peer"
            )
        if path == self.behaviour.malformed_path:
            return Reply(200, json.dumps(value).encode()[:-7])
        return json_reply(200, value)

    @staticmethod
    def _metadata(*, authenticated: bool) -> dict[str, Any]:
        return {
            "version": CENTRAL_VERSION if authenticated else "",
            "buildFlavor": "release",
            "releaseBuild": True,
            "licenseStatus": "VALID",
        }

    def _auth_status(self) -> dict[str, Any]:
        administration = "NO_ACCESS" if self.behaviour.usage_forbidden else "READ_ACCESS"
        permissions = {"Administration": administration, "Cluster": "READ_ACCESS"}
        return {
            "userId": "auth-token:" + str(uuid.uuid5(_NAMESPACE, "token")),
            "serviceId": None,
            "expires": _time(_TOKEN_EXPIRES),
            "refreshUrl": "",
            "authProvider": {"id": "", "name": "", "type": "api-token"},
            "userInfo": {
                "username": "quipu-scan",
                "friendlyName": "quipu-scan",
                "permissions": (
                    {"resourceToAccess": permissions} if self.behaviour.lists_permissions else None
                ),
                "roles": [{"name": "Analyst"}],
            },
            "userAttributes": [],
        }

    def _current(self) -> dict[str, Any]:
        return {
            "numNodes": str(sum(c.nodes for c in self.clusters)),
            "numCpuUnits": str(sum(c.cpu_units for c in self.clusters)),
        }

    def _max(self, query: Mapping[str, str]) -> Reply:
        """The peaks in ``[from, to]``, walked as Central walks its stored figures (a later
        equal figure wins); ``from`` defaults to the beginning of time, ``to`` to now."""
        start = datetime.datetime.min.replace(tzinfo=datetime.UTC)
        end = datetime.datetime.now(datetime.UTC)
        try:
            if query.get("from"):
                start = _parse_time(query["from"])
            if query.get("to"):
                end = _parse_time(query["to"])
        except ValueError:
            return _error(400, _GRPC_INVALID_ARGUMENT, "invalid value in from or to parameter")
        if not start < end:
            return _error(400, _GRPC_INVALID_ARGUMENT, "bad combination of from and to parameters")
        peak: dict[str, Any] = {
            "maxNodesAt": None,
            "maxNodes": 0,
            "maxCpuUnitsAt": None,
            "maxCpuUnits": 0,
        }
        for moment, nodes, cpus in _history(self.clusters):
            if not start <= moment <= end:
                continue
            if nodes >= peak["maxNodes"]:
                peak["maxNodes"], peak["maxNodesAt"] = nodes, _time(moment)
            if cpus >= peak["maxCpuUnits"]:
                peak["maxCpuUnits"], peak["maxCpuUnitsAt"] = cpus, _time(moment)
        peak["maxNodes"], peak["maxCpuUnits"] = str(peak["maxNodes"]), str(peak["maxCpuUnits"])
        return self._answer(USAGE_MAX, peak)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunningCentral:
    """A fake Central that is up: where it listens, its API token, what it should yield."""

    host: str
    port: int
    token: str = dataclasses.field(repr=False)
    cert_path: Path
    """Its self-signed certificate (PEM), usable as a CA file."""
    clusters: int
    behaviour: Behaviour
    central: FakeCentral

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def expected(self) -> dict[str, Any]:
        """The facts a collector should report for this Central."""
        return expected_facts(
            clusters=self.clusters, host=self.host, port=self.port, behaviour=self.behaviour
        )

    @property
    def cluster_names(self) -> list[str]:
        return [c.name for c in self.central.clusters]


@contextlib.contextmanager
def running_central(
    *,
    clusters: int = 3,
    port: int = 0,
    token: str | None = None,
    behaviour: Behaviour | None = None,
    tls: bool = True,
    tls_version: ssl.TLSVersion | None = None,
) -> Iterator[RunningCentral]:
    """A fake Central on ``127.0.0.1:port`` (0: any free port), stopped on exit.

    ``tls`` False serves plain HTTP; ``tls_version`` accepts that TLS version only.
    """
    if clusters < 0:
        raise ValueError(f"clusters must be at least 0 (got {clusters}).")
    behaviour = behaviour or Behaviour()
    token = token or secrets.token_urlsafe(32)
    central = FakeCentral(clusters=clusters, token=token, behaviour=behaviour)
    with serving(central, port=port, tls=tls, tls_version=tls_version) as served:
        yield RunningCentral(
            host=served.host,
            port=served.port,
            token=token,
            cert_path=served.cert_path,
            clusters=clusters,
            behaviour=behaviour,
            central=central,
        )
