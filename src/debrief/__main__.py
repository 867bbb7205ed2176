from debrief.cli import app

app(prog_name="debrief")
