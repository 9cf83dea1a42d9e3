"""Running the product: settings, topic registry, the local broker and the command line."""
