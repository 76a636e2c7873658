"""A plugin that fails to import: the worker must log it and carry on."""

raise ImportError("this plugin is broken on purpose")
