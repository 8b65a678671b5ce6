"""Use cases: what an operator or a scanner asks of the server, over the store."""
