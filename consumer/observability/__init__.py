"""Metrics, health probes and logs."""
