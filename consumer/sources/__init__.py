"""Where images come from: file, http(s) and s3 references, behind one fetch policy."""
