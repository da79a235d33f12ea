"""The tenants' side of batch ingestion: client apps that prepare files for the staging folder.

``producers.batch`` turns a tenant's source files (full Reddit records) into the tenant's own
format and drops them into staging atomically; ``producers.generate`` writes large synthetic files
with fresh keys, the value distributions of the real samples and deliberately awkward bodies.
These modules use only the standard library: a tenant runs them on its own machine.
"""
