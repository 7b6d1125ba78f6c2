"""Deciding ahead of time: events in, ranked decisions per user and placement out.

So far: hand-written decisions (`edgepick pin`). The stream consumer, feature store and
ranker build on the same record and key contract from edge_functions.
"""
