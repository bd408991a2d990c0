"""The `mixtune demo`: the whole pipeline on generated data, followed live, with a report."""
