"""A fake OpenShift 4 cluster: its Kubernetes API and OAuth login over real HTTPS on loopback.

It answers the calls a discovery tool makes, in the shapes of the Kubernetes and OpenShift
API reference: ``GET /version``, ClusterVersion ``version``, and the listings of nodes,
namespaces, pods, deployments, ClusterOperators, OLM Subscriptions and
ClusterServiceVersions, each paged with ``limit`` and ``continue`` (``metadata.continue``)
as the API server pages. API calls need a bearer token; errors are Kubernetes ``Status``
objects. ``oc login``'s way in is served too: ``/.well-known/oauth-authorization-server``
and ``/oauth/authorize`` for the ``openshift-challenging-client``, which trades a username
and password (basic auth, with ``X-CSRF-Token``) for a token in a redirect's fragment.

The cluster is generated from its node count alone, so any two runs with the same count
agree: three control-plane nodes, then workers (every fourth also infra, every fifth arm64,
every sixth bare metal, the others vSphere VMs); the ClusterOperators of a 4.15 cluster; a
few OLM operators; system namespaces and one application namespace per node, with pods and
deployments. :func:`expected_facts` gives, from the same description, the facts a collector
should report; :class:`Behaviour` switches on the faults a real cluster shows.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import datetime
import json
import logging
import secrets
import ssl
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from quipu.lab.https import FakeService, Reply, Request, json_reply, serving

log = logging.getLogger(__name__)

OPENSHIFT_VERSION = "4.15.18"
KUBERNETES_VERSION = "v1.28.10+a2c84a5"
CLUSTER_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "https://quipu.lab/openshift/cluster"))
CONTROL_PLANE_NODES = 3
OAUTH_CLIENT = "openshift-challenging-client"

_EPOCH = datetime.datetime(2024, 5, 6, 8, 0, tzinfo=datetime.UTC)
_OS_IMAGE = "Red Hat Enterprise Linux CoreOS 415.92.202406251950-0 (Plow)"
_KERNEL = "5.14.0-284.73.1.el9_2"
_CLUSTER_OPERATORS = (
    "authentication",
    "cloud-credential",
    "console",
    "dns",
    "etcd",
    "image-registry",
    "ingress",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "machine-config",
    "monitoring",
    "network",
    "openshift-apiserver",
    "operator-lifecycle-manager",
    "storage",
)
_OLM_OPERATORS = (
    # (namespace, subscription, package, channel, version, display name)
    ("openshift-logging", "cluster-logging", "cluster-logging", "stable-5.9", "5.9.3",
     "Red Hat OpenShift Logging"),
    ("openshift-operators", "rhacs-operator", "rhacs-operator", "stable", "4.5.2",
     "Advanced Cluster Security for Kubernetes"),
    ("openshift-gitops-operator", "openshift-gitops-operator", "openshift-gitops-operator",
     "latest", "1.12.3", "Red Hat OpenShift GitOps"),
    ("openshift-storage", "odf-operator", "odf-operator", "stable-4.15", "4.15.3",
     "OpenShift Data Foundation"),
)  # fmt: skip
_SYSTEM_NAMESPACES = (
    "default",
    "kube-system",
    "openshift-apiserver",
    "openshift-etcd",
    "openshift-gitops-operator",
    "openshift-ingress",
    "openshift-logging",
    "openshift-monitoring",
    "openshift-operator-lifecycle-manager",
    "openshift-operators",
    "openshift-storage",
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Behaviour:
    """How the fake departs from a healthy cluster."""

    expired_token: bool = False
    """Every bearer token is refused (HTTP 401 on every API call), as once it expired."""
    forbidden: str | None = None
    """Listing this resource (its plural: ``clusteroperators``, ``pods``, ``nodes``) is
    refused with HTTP 403, as for a credential without the cluster-reader role."""
    failing_path: str | None = None
    """This path answers HTTP 500."""
    slow_path: str | None = None
    """This path is answered only after ``slow_s``."""
    slow_s: float = 5.0
    malformed_path: str | None = None
    """This path answers cut-off JSON."""
    page_size: int | None = None
    """Pages of every listing hold at most this many items, whatever ``limit`` asks."""
    latency_s: float = 0.0
    """Added to every request before it is answered (a remote, busy API server)."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Node:
    """One generated node: everything both its API item and its expected facts come from."""

    name: str
    roles: tuple[str, ...]
    internal_ip: str
    external_ip: str | None
    cpu: int
    memory_kib: int
    architecture: str
    machine_id: str
    system_uuid: str
    """Upper-case, as the kubelet reports what the firmware says."""
    provider_id: str
    created: str

    @property
    def kernel(self) -> str:
        return f"{_KERNEL}.{'aarch64' if self.architecture == 'arm64' else 'x86_64'}"

    @property
    def labels(self) -> dict[str, str]:
        labels = {
            "beta.kubernetes.io/arch": self.architecture,
            "beta.kubernetes.io/os": "linux",
            "kubernetes.io/arch": self.architecture,
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "node.openshift.io/os_id": "rhcos",
        }
        labels.update({f"node-role.kubernetes.io/{role}": "" for role in self.roles})
        return labels

    @property
    def taints(self) -> list[dict[str, str]]:
        if "master" not in self.roles:
            return []
        return [{"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}]

    @property
    def addresses(self) -> list[dict[str, str]]:
        found = [{"type": "InternalIP", "address": self.internal_ip}]
        if self.external_ip is not None:
            found.append({"type": "ExternalIP", "address": self.external_ip})
        return [*found, {"type": "Hostname", "address": self.name}]

    def allocatable(self) -> dict[str, str]:
        return {
            "cpu": f"{self.cpu * 1000 - 500}m",
            "memory": f"{self.memory_kib - 1048576}Ki",
            "pods": "250",
            "ephemeral-storage": "114396791822",
        }

    def capacity(self) -> dict[str, str]:
        return {
            "cpu": str(self.cpu),
            "memory": f"{self.memory_kib}Ki",
            "pods": "250",
            "ephemeral-storage": "125293548Ki",
        }


def _stamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _node(index: int) -> _Node:
    """The node at ``index``: control plane first, then workers."""
    worker = index - CONTROL_PLANE_NODES
    roles: tuple[str, ...]
    if worker < 0:
        name, roles = f"ocp-lab-master-{index}", ("control-plane", "master")
    else:
        name = f"ocp-lab-worker-{worker}"
        roles = ("infra", "worker") if worker % 4 == 3 else ("worker",)
    arm = worker >= 0 and worker % 5 == 4
    bare_metal = worker >= 0 and worker % 6 == 5
    identity = uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.ocp.lab.invalid")
    system_uuid = str(uuid.uuid5(identity, "firmware")).upper()
    provider = (
        f"baremetalhost:///openshift-machine-api/{name}/{uuid.uuid5(identity, 'bmh')}"
        if bare_metal
        else f"vsphere://{system_uuid.lower()}"
    )
    return _Node(
        name=name,
        roles=roles,
        internal_ip=f"10.40.{index // 200}.{index % 200 + 10}",
        external_ip=f"198.51.100.{worker % 250 + 1}" if worker >= 0 and worker % 3 == 0 else None,
        cpu=8 if worker < 0 else (32 if arm else 16),
        memory_kib=32863724 if worker < 0 else 65843548,
        architecture="arm64" if arm else "amd64",
        machine_id=uuid.uuid5(identity, "machine-id").hex,
        system_uuid=system_uuid,
        provider_id=provider,
        created=_stamp(_EPOCH + datetime.timedelta(minutes=7 * index)),
    )


def _namespaces(nodes: int) -> list[str]:
    return sorted([*_SYSTEM_NAMESPACES, *(f"app-{i}" for i in range(nodes))])


def _workloads(namespace: str) -> tuple[int, int]:
    """(pods, deployments) of one namespace: every sixth application namespace is empty."""
    seed = sum(map(ord, namespace))
    if namespace.startswith("app-"):
        number = int(namespace[4:])
        if number % 6 == 5:
            return 0, 0
        deployments = number % 3 + 1
        return deployments * 2, deployments
    deployments = seed % 3 + 1
    return deployments + seed % 2, deployments


def _olm_operators(nodes: int) -> tuple[tuple[str, str, str, str, str, str], ...]:
    return _OLM_OPERATORS[: min(len(_OLM_OPERATORS), 1 + nodes // 3)]


# Expected facts.


def expected_facts(*, nodes: int) -> dict[str, dict[str, Any]]:
    """The facts an OpenShift collector should report, by system: each node and the
    cluster's own record (``cluster:<id>``) of a healthy cluster of ``nodes`` nodes.

    Written from the cluster's description, not from the API answers, so that a collector is
    checked against what the cluster is rather than against its own reading of the JSON.
    """
    found = {node.name: {"node": _expected_node(node)} for node in map(_node, range(nodes))}
    found[f"cluster:{CLUSTER_ID}"] = expected_cluster(nodes=nodes)
    return found


def _expected_node(node: _Node) -> dict[str, Any]:
    return {
        "kind": "node",
        "name": node.name,
        "cluster_uuid": CLUSTER_ID,
        "creation_timestamp": node.created,
        "labels": node.labels,
        "roles": sorted(node.roles),
        "addresses": node.addresses,
        "allocatable": {
            "kind": "node-resources",
            "cpu": node.cpu - 0.5,
            "memory_in_bytes": (node.memory_kib - 1048576) * 1024,
            "pods": 250,
        },
        "capacity": {
            "kind": "node-resources",
            "cpu": node.cpu,
            "memory_in_bytes": node.memory_kib * 1024,
            "pods": 250,
        },
        "architecture": node.architecture,
        "kernel_version": node.kernel,
        "machine_id": node.machine_id,
        "system_uuid": node.system_uuid,
        "operating_system": "linux",
        "os_image": _OS_IMAGE,
        "provider_id": node.provider_id,
        "taints": node.taints,
        "errors": {},
    }


def expected_operators(*, nodes: int) -> list[dict[str, Any]]:
    """The operators of the cluster's record: ClusterOperators by name, then OLM ones by
    namespace and name."""
    cluster = [
        {
            "kind": "cluster-operator",
            "name": name,
            "version": OPENSHIFT_VERSION,
            "created_at": _stamp(_EPOCH),
            "updated_at": _stamp(_EPOCH + datetime.timedelta(days=30, seconds=i)),
        }
        for i, name in enumerate(_CLUSTER_OPERATORS)
    ]
    olm = [
        {
            "kind": "olm-operator",
            "name": name,
            "version": version,
            "created_at": _stamp(_EPOCH + datetime.timedelta(days=2)),
            "updated_at": _stamp(_EPOCH + datetime.timedelta(days=40)),
            "display_name": display,
            "package": package,
            "source": "redhat-operators",
            "channel": channel,
            "namespace": namespace,
        }
        for namespace, name, package, channel, version, display in sorted(_olm_operators(nodes))
    ]
    return cluster + olm


def expected_namespaces(*, nodes: int) -> list[dict[str, Any]]:
    return [
        {
            "kind": "namespace",
            "name": name,
            "pod_count": _workloads(name)[0],
            "deployment_count": _workloads(name)[1],
        }
        for name in _namespaces(nodes)
    ]


def expected_cluster(*, nodes: int) -> dict[str, Any]:
    return {
        "cluster": {
            "kind": "cluster",
            "uuid": CLUSTER_ID,
            "version": OPENSHIFT_VERSION,
            "kubernetes_version": KUBERNETES_VERSION,
            "errors": {},
        },
        "operators": expected_operators(nodes=nodes),
        "namespaces": expected_namespaces(nodes=nodes),
    }


# API answers.


def _node_item(node: _Node) -> dict[str, Any]:
    return {
        "metadata": {
            "name": node.name,
            "uid": str(uuid.uuid5(uuid.NAMESPACE_OID, node.name)),
            "resourceVersion": "48213",
            "creationTimestamp": node.created,
            "labels": node.labels,
            "annotations": {"machineconfiguration.openshift.io/state": "Done"},
        },
        "spec": {"providerID": node.provider_id, "taints": node.taints}
        if node.taints
        else {"providerID": node.provider_id},
        "status": {
            "capacity": node.capacity(),
            "allocatable": node.allocatable(),
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                    "lastHeartbeatTime": _stamp(_EPOCH + datetime.timedelta(days=60)),
                    "lastTransitionTime": node.created,
                }
            ],
            "addresses": node.addresses,
            "nodeInfo": {
                "machineID": node.machine_id,
                "systemUUID": node.system_uuid,
                "bootID": str(uuid.uuid5(uuid.NAMESPACE_OID, f"{node.name}/boot")),
                "kernelVersion": node.kernel,
                "osImage": _OS_IMAGE,
                "containerRuntimeVersion": "cri-o://1.28.8-5.rhaos4.15.git3c0f4c3.el9",
                "kubeletVersion": KUBERNETES_VERSION,
                "kubeProxyVersion": KUBERNETES_VERSION,
                "operatingSystem": "linux",
                "architecture": node.architecture,
            },
        },
    }


def _cluster_operator_item(index: int) -> dict[str, Any]:
    name = _CLUSTER_OPERATORS[index]
    changed = _stamp(_EPOCH + datetime.timedelta(days=30, seconds=index))
    return {
        "apiVersion": "config.openshift.io/v1",
        "kind": "ClusterOperator",
        "metadata": {"name": name, "creationTimestamp": _stamp(_EPOCH)},
        "spec": {},
        "status": {
            "conditions": [
                {"type": "Degraded", "status": "False", "lastTransitionTime": _stamp(_EPOCH)},
                {"type": "Available", "status": "True", "lastTransitionTime": changed},
                {"type": "Progressing", "status": "False", "lastTransitionTime": _stamp(_EPOCH)},
            ],
            "versions": [
                {"name": "raw-internal", "version": OPENSHIFT_VERSION},
                {"name": "operator", "version": OPENSHIFT_VERSION},
            ],
        },
    }


def _subscription_item(operator: Sequence[str]) -> dict[str, Any]:
    namespace, name, package, channel, version, _ = operator
    return {
        "apiVersion": "operators.coreos.com/v1alpha1",
        "kind": "Subscription",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "creationTimestamp": _stamp(_EPOCH + datetime.timedelta(days=2)),
        },
        "spec": {
            "channel": channel,
            "installPlanApproval": "Automatic",
            "name": package,
            "source": "redhat-operators",
            "sourceNamespace": "openshift-marketplace",
        },
        "status": {
            "currentCSV": f"{package}.v{version}",
            "installedCSV": f"{package}.v{version}",
            "state": "AtLatestKnown",
            "lastUpdated": _stamp(_EPOCH + datetime.timedelta(days=40)),
        },
    }


def _csv_item(operator: Sequence[str]) -> dict[str, Any]:
    namespace, _, package, _, version, display = operator
    return {
        "apiVersion": "operators.coreos.com/v1alpha1",
        "kind": "ClusterServiceVersion",
        "metadata": {"name": f"{package}.v{version}", "namespace": namespace},
        "spec": {"displayName": display, "version": version, "provider": {"name": "Red Hat"}},
        "status": {"phase": "Succeeded", "reason": "InstallSucceeded"},
    }


def _namespace_item(name: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/metadata.name": name},
            "creationTimestamp": _stamp(_EPOCH),
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def _pod_item(namespace: str, index: int, *, nodes: int) -> dict[str, Any]:
    deployment = index // 2
    return {
        "metadata": {
            "name": f"web-{deployment}-7d9f8b6c5-{index:05d}",
            "namespace": namespace,
            "labels": {"app": f"web-{deployment}"},
            "creationTimestamp": _stamp(_EPOCH + datetime.timedelta(days=3)),
        },
        "spec": {
            "nodeName": _node((index + len(namespace)) % max(1, nodes)).name,
            "containers": [{"name": "web", "image": "registry.access.redhat.com/ubi9/httpd-24"}],
        },
        "status": {"phase": "Running"},
    }


def _deployment_item(namespace: str, index: int) -> dict[str, Any]:
    return {
        "metadata": {"name": f"web-{index}", "namespace": namespace, "generation": 1},
        "spec": {"replicas": 2},
        "status": {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2},
    }


def _status(code: int, reason: str, message: str) -> Reply:
    """A Kubernetes ``Status`` error answer."""
    return json_reply(
        code,
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        },
    )


@dataclasses.dataclass(frozen=True, slots=True)
class _Listing:
    """One listable resource: its List kind, apiVersion, API group, and items by position."""

    kind: str
    api_version: str
    group: str
    count: int
    item: Callable[[int], dict[str, Any]]


class FakeOpenShift(FakeService):
    """Answers an OpenShift cluster's API for ``nodes`` generated nodes; counts what it serves."""

    name = "fake OpenShift"

    def __init__(
        self, *, nodes: int, token: str, username: str, password: str, behaviour: Behaviour
    ) -> None:
        super().__init__(latency_s=behaviour.latency_s)
        self.nodes = nodes
        self.behaviour = behaviour
        self.scheme = "https"
        self._tokens = {token}
        self._tokens_lock = threading.Lock()
        self._basic = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self.username = username
        self._listings = self._build_listings()

    def _build_listings(self) -> dict[str, _Listing]:
        nodes = self.nodes
        namespaces = _namespaces(nodes)
        pods = [(ns, i) for ns in namespaces for i in range(_workloads(ns)[0])]
        deployments = [(ns, i) for ns in namespaces for i in range(_workloads(ns)[1])]
        olm = _olm_operators(nodes)
        config, olm_group = "config.openshift.io/v1", "operators.coreos.com/v1alpha1"
        return {
            "/api/v1/nodes": _Listing("NodeList", "v1", "", nodes, lambda i: _node_item(_node(i))),
            "/api/v1/namespaces": _Listing(
                "NamespaceList", "v1", "", len(namespaces), lambda i: _namespace_item(namespaces[i])
            ),
            "/api/v1/pods": _Listing(
                "PodList", "v1", "", len(pods), lambda i: _pod_item(*pods[i], nodes=nodes)
            ),
            "/apis/apps/v1/deployments": _Listing(
                "DeploymentList",
                "apps/v1",
                "apps",
                len(deployments),
                lambda i: _deployment_item(*deployments[i]),
            ),
            "/apis/config.openshift.io/v1/clusteroperators": _Listing(
                "ClusterOperatorList",
                config,
                "config.openshift.io",
                len(_CLUSTER_OPERATORS),
                _cluster_operator_item,
            ),
            "/apis/operators.coreos.com/v1alpha1/subscriptions": _Listing(
                "SubscriptionList",
                olm_group,
                "operators.coreos.com",
                len(olm),
                lambda i: _subscription_item(olm[i]),
            ),
            "/apis/operators.coreos.com/v1alpha1/clusterserviceversions": _Listing(
                "ClusterServiceVersionList",
                olm_group,
                "operators.coreos.com",
                len(olm),
                lambda i: _csv_item(olm[i]),
            ),
        }

    def issue_token(self) -> str:
        """A new token that the API accepts, as the OAuth server issues at a login."""
        token = "sha256~" + secrets.token_urlsafe(32)
        with self._tokens_lock:
            self._tokens.add(token)
        return token

    def route(self, request: Request) -> Reply:
        path, behaviour = request.path, self.behaviour
        if path == behaviour.slow_path:
            self.pause(behaviour.slow_s)
        if path == "/.well-known/oauth-authorization-server":
            return self._discovery(request)
        if path == "/oauth/authorize":
            return self._authorize(request)
        user = self._user(request)
        if user is None:
            return _status(401, "Unauthorized", "Unauthorized")
        if path == behaviour.failing_path:
            return _status(
                500, "InternalError", "Internal error occurred: etcdserver: leader changed"
            )
        if path == behaviour.malformed_path:
            return Reply(200, b'{"kind": "List", "apiVersion": "v1", "items": [{"metadata": {"na')
        if path == "/version":
            return json_reply(200, self._version())
        resource = _resource(path)
        if user == "system:anonymous" or resource == behaviour.forbidden:
            group = next((lst.group for p, lst in self._listings.items() if p == path), "")
            return _status(
                403,
                "Forbidden",
                f'{resource}{"." + group if group else ""} is forbidden: User "{user}" cannot '
                f'list resource "{resource}" in API group "{group}" at the cluster scope',
            )
        if path == "/apis/config.openshift.io/v1/clusterversions/version":
            return json_reply(200, self._cluster_version())
        listing = self._listings.get(path)
        if listing is None:
            return _status(404, "NotFound", "the server could not find the requested resource")
        return self._page(path, listing, request.query)

    def _user(self, request: Request) -> str | None:
        """Who the request authenticates as; None when its token is refused."""
        header = request.headers.get("Authorization") or ""
        if header.startswith("Bearer "):
            if self.behaviour.expired_token:
                return None
            with self._tokens_lock:
                known = header[len("Bearer ") :] in self._tokens
            return self.username if known else None
        # The API server has no password authenticator: a request without a token is
        # anonymous, and anonymous users may read the version only.
        return "system:anonymous"

    def _base(self, request: Request) -> str:
        return f"{self.scheme}://{request.headers.get('Host') or '127.0.0.1'}"

    def _discovery(self, request: Request) -> Reply:
        base = self._base(request)
        return json_reply(
            200,
            {
                "issuer": base,
                "authorization_endpoint": f"{base}/oauth/authorize",
                "token_endpoint": f"{base}/oauth/token",
                "scopes_supported": ["user:check-access", "user:full", "user:info"],
                "response_types_supported": ["code", "token"],
                "grant_types_supported": ["authorization_code", "implicit"],
                "code_challenge_methods_supported": ["plain", "S256"],
            },
        )

    def _authorize(self, request: Request) -> Reply:
        query = request.query
        if query.get("client_id") != OAUTH_CLIENT or query.get("response_type") != "token":
            return json_reply(400, {"error": "unsupported_response_type"})
        challenge = (("WWW-Authenticate", 'Basic realm="openshift"'),)
        if not request.headers.get("X-CSRF-Token"):
            return Reply(
                401,
                b"A non-empty X-CSRF-Token header is required to receive basic-auth challenges",
                "text/plain; charset=utf-8",
                challenge,
            )
        if request.headers.get("Authorization") != self._basic:
            return Reply(401, b"", "text/plain; charset=utf-8", challenge)
        token = self.issue_token()
        location = (
            f"{self._base(request)}/oauth/token/implicit#access_token={quote(token)}"
            "&expires_in=86400&scope=user%3Afull&token_type=Bearer"
        )
        return Reply(302, b"", "text/plain; charset=utf-8", (("Location", location),))

    def _version(self) -> dict[str, Any]:
        return {
            "major": "1",
            "minor": "28",
            "gitVersion": KUBERNETES_VERSION,
            "gitCommit": "a2c84a5b6f1e0c9d8e7f6a5b4c3d2e1f0a9b8c7d",
            "gitTreeState": "clean",
            "buildDate": "2024-06-20T13:57:10Z",
            "goVersion": "go1.20.12 X:strictfipsruntime",
            "compiler": "gc",
            "platform": "linux/amd64",
        }

    def _cluster_version(self) -> dict[str, Any]:
        image = f"quay.io/openshift-release-dev/ocp-release@sha256:{'ab' * 32}"
        return {
            "apiVersion": "config.openshift.io/v1",
            "kind": "ClusterVersion",
            "metadata": {"name": "version", "creationTimestamp": _stamp(_EPOCH)},
            "spec": {"channel": "stable-4.15", "clusterID": CLUSTER_ID},
            "status": {
                "desired": {"version": OPENSHIFT_VERSION, "image": image},
                "history": [
                    {
                        "state": "Completed",
                        "version": OPENSHIFT_VERSION,
                        "image": image,
                        "startedTime": _stamp(_EPOCH),
                        "completionTime": _stamp(_EPOCH + datetime.timedelta(hours=1)),
                        "verified": False,
                    }
                ],
                "observedGeneration": 2,
                "versionHash": "Mf3n4fBqGkY=",
            },
        }

    def _page(self, path: str, listing: _Listing, query: Mapping[str, str]) -> Reply:
        try:
            limit = int(query.get("limit") or 0)
        except ValueError:
            return _status(400, "BadRequest", f"invalid limit {query.get('limit')!r}")
        limit = limit if limit > 0 else listing.count
        if self.behaviour.page_size:
            limit = min(limit, self.behaviour.page_size)
        offset = 0
        if query.get("continue"):
            offset_or_none = _offset(query["continue"], path=path)
            if offset_or_none is None:
                return _status(400, "BadRequest", "continue key is not valid")
            offset = offset_or_none
        end = min(offset + limit, listing.count)
        metadata: dict[str, Any] = {"resourceVersion": "48213"}
        if end < listing.count:
            metadata["continue"] = _continue(path=path, offset=end)
            metadata["remainingItemCount"] = listing.count - end
        return json_reply(
            200,
            {
                "kind": listing.kind,
                "apiVersion": listing.api_version,
                "metadata": metadata,
                "items": [listing.item(i) for i in range(offset, end)],
            },
        )


def _resource(path: str) -> str:
    """The resource a path lists or reads (its plural): ``/api/v1/nodes`` -> ``nodes``."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 3:
        return parts[2]
    if parts[:1] == ["apis"] and len(parts) >= 4:
        return parts[3]
    return path


def _continue(*, path: str, offset: int) -> str:
    """An opaque continue token, as the API server's are."""
    raw = json.dumps({"v": "meta.k8s.io/v1", "path": path, "start": offset}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _offset(token: str, *, path: str) -> int | None:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(decoded, dict) or decoded.get("path") != path:
        return None
    start = decoded.get("start")
    return start if type(start) is int and start >= 0 else None


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunningOpenShift:
    """A fake cluster that is up: where it listens, how to log in, what it should yield."""

    host: str
    port: int
    token: str = dataclasses.field(repr=False)
    username: str
    password: str = dataclasses.field(repr=False)
    cert_path: Path
    """Its self-signed certificate (PEM), usable as a CA file."""
    nodes: int
    behaviour: Behaviour
    service: FakeOpenShift

    @property
    def names(self) -> list[str]:
        """The node names, control plane first."""
        return [_node(i).name for i in range(self.nodes)]

    @property
    def cluster_system(self) -> str:
        """The system key of the cluster's own record."""
        return f"cluster:{CLUSTER_ID}"

    @property
    def cluster_id(self) -> str:
        return CLUSTER_ID

    @property
    def expected(self) -> dict[str, dict[str, Any]]:
        """The facts a collector should report for each system of a healthy cluster."""
        return expected_facts(nodes=self.nodes)


@contextlib.contextmanager
def running_openshift(
    *,
    nodes: int = 5,
    port: int = 0,
    token: str | None = None,
    username: str = "kubeadmin",
    password: str | None = None,
    behaviour: Behaviour | None = None,
    tls: bool = True,
    tls_version: ssl.TLSVersion | None = None,
) -> Iterator[RunningOpenShift]:
    """A fake cluster on ``127.0.0.1:port`` (0: any free port), stopped on exit.

    ``token`` is accepted as a bearer token (default: a new random one); ``username`` and
    ``password`` log in through its OAuth server. ``tls`` False serves plain HTTP.
    """
    if nodes < 0:
        raise ValueError(f"nodes must be at least 0 (got {nodes}).")
    behaviour = behaviour or Behaviour()
    token = token or "sha256~" + secrets.token_urlsafe(32)
    password = password or secrets.token_urlsafe(12)
    service = FakeOpenShift(
        nodes=nodes, token=token, username=username, password=password, behaviour=behaviour
    )
    service.scheme = "https" if tls else "http"
    with serving(service, port=port, tls=tls, tls_version=tls_version) as served:
        yield RunningOpenShift(
            host=served.host,
            port=served.port,
            token=token,
            username=username,
            password=password,
            cert_path=served.cert_path,
            nodes=nodes,
            behaviour=behaviour,
            service=service,
        )
