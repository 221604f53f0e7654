"""The transactional outbox: every task a service enqueues is a row written in the service's own transaction, and a
relay hands the rows to Celery. A broker outage delays the work; it never fails the request or loses the work."""
