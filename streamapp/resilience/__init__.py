"""Handling records that cannot be processed: today set aside (logged and counted);
the retry/dead-letter issue routes them to retry topics and ``<topic>.dlq`` here."""
