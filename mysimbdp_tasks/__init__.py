"""mysimbdp: a multi-tenant ingestion platform (batch files and Kafka messages into Cassandra)."""

__version__ = "0.1.0"
