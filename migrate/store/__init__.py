"""PostgreSQL: connections, model engine's rows, the fleet stream, the journal, the run lock."""
