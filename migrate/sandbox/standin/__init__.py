"""A model engine stand-in: the LLM endpoint API over a sandbox database, with faults on demand.

It follows the semantics in shared/reference/model-engine-api.md: HTTP Basic
with the API key as the user name, the owner's team only (another team's
endpoint answers 404), `PUT` setting `UPDATE_PENDING` and a build that ends in
`READY` or `UPDATE_FAILED` with a reason, `force_bundle_recreation` building a
new bundle, simulated pods that come up or crash-loop, and transient 429, 502
and 503 answers when asked for. Tests, the sandbox and the demo rehearse the
rollout against it; it is not part of the production install's path.
"""
