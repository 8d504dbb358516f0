"""Pipeline assembly and the `news-ingest` command line."""
