"""The application layer: the operations the faces (the CLI, the admin API, the coming web page) run,
their arguments, sync, and the one composition root (``app.root``) that wires store, services,
pipeline and servers. It knows both the domain (``node``) and the network (``federation``); neither
of those knows it."""
