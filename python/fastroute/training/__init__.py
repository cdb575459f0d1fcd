"""Training and evaluation of the complexity router (offline tools; never imported by the server)."""
