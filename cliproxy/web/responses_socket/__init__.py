"""The Responses WebSocket mode (`GET /v1/responses` upgraded; core.md §1.10).

`resource` takes the upgrade, `protocol` runs a session's turns through the router,
`relay` sends an upstream stream as text frames, `transcript` keeps the conversation.
"""

from cliproxy.web.responses_socket.resource import ResponsesSocket, wants_websocket

__all__ = ["ResponsesSocket", "wants_websocket"]
