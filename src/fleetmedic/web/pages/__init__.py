"""The dashboard's pages: Jinja2 templates (autoescaped) plus small scripts that draw the charts."""
