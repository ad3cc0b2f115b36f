"""Plans made, applied stage by stage, rolled back and reported, one endpoint at a time."""
