"""Run a generated app on 127.0.0.1 in its platform's real runtime (or its closest faithful form)."""
