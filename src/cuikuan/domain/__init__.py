"""Pure rules: no files, no database, no network. Everything here can be tested with values alone."""
