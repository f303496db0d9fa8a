"""Logic shared by the HTTP routes and the CLI: access control, accounts, ingest, summaries."""
