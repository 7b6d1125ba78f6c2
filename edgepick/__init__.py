"""The `edgepick` command line: a thin shell over the three packages."""
