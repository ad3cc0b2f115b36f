"""Model engine's HTTP API: redeploy an endpoint and watch it come back healthy."""
