"""Build and release tooling, importable as `async_jobs_tools` (see pyproject.toml).

The Lambda sources live in the subfolders: one per function, `shared/` (the `async_jobs`
package) and `local/` (the local runtime, never zipped).
"""
