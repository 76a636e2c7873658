"""The sentinel: a watchdog for what supervisord cannot see."""
