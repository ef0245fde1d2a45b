"""The one request middleware: request id, in-flight bound, error mapping and metrics, in one layer.

Each aiohttp middleware is a further coroutine and `functools.partial` call on every request, so
the four concerns of the request envelope share one function; each concern's logic stays in its
own module (`errors`, `limits`, `metrics`). Order, from the outside in: the connection's head
deadline stops (`kms_api.http.protocol`), the latency clock starts, the request id is made, the
in-flight bound admits the request, the handler runs; any failure, including a refused
admission, becomes the API's JSON error with the request id; the reply is counted by operation,
status class and algorithm.

Security property: every reply, success or failure, carries the request id and no exception
text (see `kms_api.http.error_replies`); a saturated process refuses at once instead of queueing.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from kms_api.appstate import EXCHANGE, Exchange
from kms_api.http.error_replies import HEADER, error_response, new_request_id
from kms_api.http.limits import InFlight
from kms_api.http.protocol import request_finished, request_started
from kms_api.observe import metrics


def request_middleware(max_concurrency: int) -> Any:
    """The middleware; `max_concurrency` <= 0 leaves the number of in-flight requests unbounded."""
    in_flight = InFlight(max_concurrency)

    @web.middleware
    async def envelope(request: web.Request, handler: Any) -> web.StreamResponse:
        # The head is complete: the connection's head deadline stops while the request is served.
        guard = request_started(request)
        started = time.perf_counter()
        req_id = new_request_id()
        request[EXCHANGE] = Exchange(req_id, started=started, guarded=guard is not None)
        response: web.StreamResponse
        try:
            if in_flight.enter(request):
                try:
                    response = await handler(request)
                finally:
                    in_flight.leave()
            else:
                response = await handler(request)
            response.headers[HEADER] = req_id
        except Exception as exc:  # BaseException (cancellation) passes through untouched
            response = error_response(request, req_id, exc)
        finally:
            request_finished(guard)
        metrics.observe_request(request, response, started)
        return response

    return envelope
