"""What laneway tells operators: metrics, callbacks (Langfuse, webhook) and Slack alerts.

Engine-level pieces only (nothing here imports `handler/`); each module is imported when the
feature it serves is switched on, so importing this package costs nothing.
"""
