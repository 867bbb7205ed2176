"""debrief: from a spoken sales-call debrief to the one step to fix."""

__version__ = "0.1.0"
