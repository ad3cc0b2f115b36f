# The JSON Schemas of the tool's JSON outputs ship inside the package as migrate.schemas.
