"""Model engine --enforce-eager migration tool."""
