"""Collectors: what scanners run against sources to find systems and their facts."""
