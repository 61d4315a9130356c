"""linkbert report: an HTML data report of a pipeline output directory."""
