"""RPC namespaces, one module each; every Namespace subclass here is registered."""
