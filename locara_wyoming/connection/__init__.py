"""One client connection: the bounded reader, the writer, and the dispatch to programs."""
