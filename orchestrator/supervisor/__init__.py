"""supervisord, the master daemon: its config, its lifecycle and its XML-RPC interface."""
