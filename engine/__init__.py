"""Tuneloom engine: models, data, methods, training. Import-light at package level."""
