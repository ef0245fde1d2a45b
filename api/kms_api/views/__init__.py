"""Route handlers and encoders: a handler calls one service method with the caller's identity
and returns its `Outcome`; an encoder turns that outcome into the reply body."""
