"""Reports: the self-contained HTML review and chart images."""
