"""Package data: the web console's stylesheet and script, served as they are."""
