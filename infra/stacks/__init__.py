"""The mixtune stacks, split by concern: storage, pipeline, API."""
