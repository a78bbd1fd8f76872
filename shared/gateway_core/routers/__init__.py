"""HTTP routers: one per capability; each function mounts its own."""
