"""The Nua orchestrator: the control plane of a Nua host."""

__version__ = "0.1.0"
