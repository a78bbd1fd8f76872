"""One module per external system; every client is created lazily through the registry."""
