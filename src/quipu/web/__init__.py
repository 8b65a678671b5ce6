"""The web UI: pages rendered by the server itself at ``/``, beside the API.

Pages call the same services as the API, so they meet the same rules and refusals; a
session cookie carries the same login token the API hands out, and every state-changing
request must carry the session's CSRF token. Templates escape everything they print; the
little JavaScript there is (``static/quipu.js``) refreshes a scan job's panel while it runs.
"""

from quipu.web.app import install

__all__ = ["install"]
