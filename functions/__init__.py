"""The Lambda functions: each `app.py` mounts routers from the core layer and exports `handler`."""
