"""The HTTP server: user REST API, scanner API, error mapping, auth."""
