"""The openshift collector."""
