"""The coach's web desk (`debrief serve`): upload recordings, see the walk and the fix, and each rep's history.

Needs the `web` extra (FastAPI, uvicorn, python-multipart, Jinja2). `create_app` in `app.py` builds it.
"""
