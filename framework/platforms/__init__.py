"""One package per platform (aws, gcp, azure, vercel), each exposing one PLATFORM (see base.py),
listed once in registry.py."""
