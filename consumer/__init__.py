"""Faceguard: a Kafka worker that masks every face in the images it is pointed at."""

__version__ = "0.1.0"
