"""The status page on the health port: ``/`` (HTML) and ``/api/status`` (JSON).

``api`` builds the JSON from a read-only store connection of its own and the daemon's
in-memory health, cached per poll; ``chart`` keeps each rule's downsampled window; ``svg``
draws it on the server; ``page`` is the self-contained HTML (no external scripts or fonts);
``access`` decides who may see it (open on loopback, a token elsewhere).
"""
