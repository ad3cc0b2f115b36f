# The runbooks ship inside the package as migrate.runbooks (`bundle-migrate runbook`).
