"""`python -m debrief`: the same command line as the `debrief` script (cli.py)."""

from debrief.cli import app

app(prog_name="debrief")
