"""The tenants' side of ingestion: client apps that a tenant runs on its own machine.

``producers.batch`` turns a tenant's source files (full Reddit records) into the tenant's own
format and drops them into staging atomically; ``producers.generate`` writes large synthetic files
with fresh keys, the value distributions of the real samples and deliberately awkward bodies
(both use only the standard library); ``producers.stream`` sends records as JSON messages to the
tenant's Kafka topic at a chosen rate and reports its own performance (it needs kafka-python).
"""
