"""The station's API for staff (issue 20): HTTP/JSON on a Unix socket, served by the daemon.

Like Docker's engine API: ``curl --unix-socket /run/evidock/api.sock http://localhost/v1/whoami``.
The caller is who the kernel says (``SO_PEERCRED`` of the connection, ``peer``); the config gives
their role and unit and one table says what each role may do (``roles``); ``routes`` holds the
handlers of the versioned paths, ``server`` the app and its start and stop in a thread of its own.
"""
