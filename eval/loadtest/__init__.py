"""Overload test of the gateway's admission control with locust (`python -m eval.loadtest`)."""
