"""A package of plugin folders, exposed as one entry point."""
