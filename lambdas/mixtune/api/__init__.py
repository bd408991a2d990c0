"""The REST API's models, errors and dry-run validation; the routes are in :mod:`mixtune.handlers.api`."""
