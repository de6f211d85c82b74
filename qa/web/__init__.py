"""The web server's parts that do not need the Gradio app around them.

``render`` builds the chat's HTML (always escaped), ``api_models`` checks JSON request bodies,
``guards`` holds the HTTP plumbing (body limit, root path, logins, admin calls), ``servers``
starts a real Ludao server in a subprocess (tests, docs, benchmarks) and ``load`` drives one
with concurrent questions. ``ui.py`` assembles them into the app; nothing here imports it.
"""
