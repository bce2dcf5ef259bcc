"""``tripwire serve``: the scan pipeline behind an authenticated HTTP API, plus the review console.

:func:`tripwire.service.app.create_app` builds the FastAPI application; :mod:`tripwire.cli.service` holds the
``serve``, ``keys`` and ``audit`` commands. Importing this package does not import FastAPI (the CLI stays fast).
"""
