"""The serving layer: one store lookup, a 302 to the cached variant, the default otherwise.

This package owns the decision-record and manifest *read* contracts; the publisher and the
worker import it, never the reverse. Nothing here may import numpy, jinja2, boto3,
pydantic or the worker's model stack: the import set is tested.
"""
