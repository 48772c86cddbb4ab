"""The archive store through the field's standard interfaces: a HAPI 3.1 server (:mod:`.hapi` for the protocol,
:mod:`.server` for HTTP, ``heliohub serve``)."""
