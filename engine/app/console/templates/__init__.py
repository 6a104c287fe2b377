"""Package data: the web console's Jinja templates (HTML, autoescaped)."""
