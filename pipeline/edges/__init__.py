"""Edge sources: hyperlinks and titles, redirects, citations, TF-IDF neighbours, random links."""
