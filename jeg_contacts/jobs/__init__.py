"""The one background job system: a durable `jobs` table that `flask worker` drains.

Features register their job kinds (`registry.register`); pages and commands enqueue jobs
(`services.enqueue`) and read their progress and result from the row; the runner claims,
leases and runs them. This package imports no feature."""
