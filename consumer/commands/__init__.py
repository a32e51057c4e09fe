"""The command line's jobs: submit, collect, dead letters, anonymize files."""
