"""The ``spheredc`` command line (the front door; nothing imports it)."""
