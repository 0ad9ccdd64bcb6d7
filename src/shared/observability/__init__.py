"""What an operator sees: Prometheus metrics, OpenTelemetry traces, and the logs that join them.

Nothing here is imported by the domain or the application: the composition root
(``library.bootstrap.observability``) hooks these pieces onto the app, the pools and the use cases.
"""
