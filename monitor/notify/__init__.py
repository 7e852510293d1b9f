"""Alert delivery: the durable outbox dispatcher, message templates and the sinks.

``outbox`` (the dispatcher, one lane per sink), ``flush`` (deliver now and exit), ``templates``
(the ``Message`` of each event kind, per language), ``sinks/`` (one module per platform).
``monitor.bootstrap`` builds them from the settings.
"""
