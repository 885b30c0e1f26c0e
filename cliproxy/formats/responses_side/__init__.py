"""Response translation: upstream answers (whole or streamed) into the client's format.

See `translate` for the entry points, `ir` for the neutral form they pass through,
`passthrough` for the same-format fast path and `aggregate` for stream → whole response.
"""

from cliproxy.formats.responses_side.aggregate import AggregateError, Aggregator, aggregate_stream
from cliproxy.formats.responses_side.ir import ClientTool, Usage
from cliproxy.formats.responses_side.stream import StreamTranslator
from cliproxy.formats.responses_side.translate import (
    error_event,
    stream_translator,
    translate_response,
)

__all__ = [
    "AggregateError",
    "Aggregator",
    "ClientTool",
    "StreamTranslator",
    "Usage",
    "aggregate_stream",
    "error_event",
    "stream_translator",
    "translate_response",
]
