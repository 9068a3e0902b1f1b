"""Entry points: the command line and (later) the REST service, wiring ingest and query to the stores."""
