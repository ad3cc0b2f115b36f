"""Reconciliation: is the fleet still on the new rule, does the journal hold; converge slowly."""
