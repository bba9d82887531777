"""The county's monitoring report: where the network works and where it fails, from the
audit log's metadata, protected so that no figure reveals a small group of people."""
