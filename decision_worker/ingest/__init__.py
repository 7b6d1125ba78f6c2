"""Events in: the Segment contract, the events API's ingestion, the durable event log."""
