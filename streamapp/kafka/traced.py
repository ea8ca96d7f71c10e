"""The faust Topic every streamapp app uses: sends carry the current ``traceparent``.

Set as the app's ``Topic`` class, so every ``topic.send`` of every agent, view and timer
gets the header without each call site passing it (streamapp.tracing.context). A send
with explicit headers (a retry or dead letter keeping the record's own) is left as is;
faust's changelog writes go through ``send_soon`` and stay untouched.
"""

from __future__ import annotations

from typing import Any

import faust

from streamapp.tracing.context import outgoing


class TracedTopic(faust.Topic):
    async def send(self, *, headers: Any = None, **kwargs: Any) -> Any:
        if headers is None:
            headers = outgoing()
        return await super().send(headers=headers, **kwargs)
