"""Integrations of koodrive_async with other frameworks, each behind its own extra.

- ``koodrive_async.contrib.temporal`` (extra ``koodrive-async[temporal]``): durable waits on
  Temporal, activities and a workflow helper.

Each module imports only the public ``koodrive_async`` package.
"""
