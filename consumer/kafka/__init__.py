"""The Kafka boundary: the only package that imports confluent_kafka."""
