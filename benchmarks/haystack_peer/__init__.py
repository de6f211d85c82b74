"""Ludao and Haystack side by side: same passages, same models, same questions, one run.

``python -m benchmarks.haystack_peer`` creates ``.venv-haystack/`` if needed, exports Ludao's
reader to a plain folder for Haystack's reader, then asks every question of each corpus to both
systems in turn and writes ``benchmarks/results/haystack_side_by_side.{json,md}``. Modules:

- ``provision``: the Haystack virtualenv and the exported reader;
- ``runner``: the Haystack pipeline, run inside the Haystack venv, spoken to over JSON lines;
- ``compare``: both systems on one corpus, alternating per question, and the scores;
- ``report``: the Markdown table.
"""
