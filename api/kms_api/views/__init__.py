"""Route handlers: parse nothing (routes did), call one service method, encode the result."""
