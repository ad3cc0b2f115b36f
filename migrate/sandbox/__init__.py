"""Somewhere safe to rehearse: an embedded PostgreSQL, a synthetic fleet, the demo.

Off to one side: nothing outside the command line imports it.
"""
