"""What the API and the CLI call: create, validate and upload input, estimate, read results,
retry."""
