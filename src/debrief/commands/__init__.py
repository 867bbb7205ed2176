"""Command groups beyond `analyze`: each module here defines `register(app)`, which adds its commands.

Modules are found and registered by `debrief.cli`; keep their heavy imports inside the commands, so
that `debrief --help` and `debrief analyze notes.txt` stay fast.
"""
