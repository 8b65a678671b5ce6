"""Red Hat Satellite 6 sources: the hosts a Satellite manages, listed and inspected over its API."""
