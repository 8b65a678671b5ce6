"""The scanner agent: pulls scanner jobs over HTTP and runs collectors."""
