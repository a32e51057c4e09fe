"""Faceguard: masks every face in the images a Kafka request or an HTTP call points it at.

The version is the installed distribution's (`engine.service.package_version`), declared once, in pyproject.toml.
"""
