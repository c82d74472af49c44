"""interlock.yaml: the schema, the loader with file:line:column errors, and the planner."""
