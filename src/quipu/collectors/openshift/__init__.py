"""OpenShift sources: a cluster's nodes, operators and workloads, read over its Kubernetes API."""
