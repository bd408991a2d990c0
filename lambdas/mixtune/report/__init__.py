"""Every run's report: an HTML page, its Markdown twin and ``summary.json``.

Built from the run's item, the files its lineage points at (data report, mix manifest,
training metrics and progress, eval.json) and its execution history (state durations):
``inputs`` gathers, ``summary`` distils the facts, ``document`` lays them out in sections,
``render`` writes HTML and Markdown, ``publish`` stores them under ``reports/<run id>/``,
``links`` presigns links to the page. The service writes the report when a run's outcome is
announced; the demo and ``mixtune runs show --open`` fetch the same files.

Import the modules themselves: this package imports nothing, so a function that only signs
links (the API) loads no more than it uses.
"""
