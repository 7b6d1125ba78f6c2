"""Learning offline: replay of the event log, training examples, training, evaluation,
the model registry's promotions."""
