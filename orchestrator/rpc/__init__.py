"""JSON-RPC 2.0 over ZeroMQ: the worker, its methods, and the client."""
