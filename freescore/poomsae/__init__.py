"""The FreeScore layer: what worldclass, freestyle and grassroots share, written once.

The three FreeScore services (recognized, freestyle and traditional poomsae)
serve the same kind of pages from the same kind of data folder; they differ in
their division file format and their scoring rules. What they share lives here:

    ids        RequestError, Ring, check_db / check_divid / parse_ring, group_id
    routes     Route, parse_route(path, service, with_role=True)   (`/<service>[/request]/<db>/<ring>[/<role>]`)
    requests   decode_request, handler_name, request_kind, require, to_int / to_float / to_bool
    frames     canonical, frame, digest_of, update_frame(type, key, payload, request, **extra),
               error_frame, processing_error, unknown_command(prefix, path), utc_time
    progress   parse_progress / format_progress (progress.txt), current_divid
    layout     Layout(root, forms): tournament / ring folders, division file names; ring_folder
    session    the optional PHP session check: session_from_cookie, parse_php_session, session_allows
    store      the only module here that touches files: stamps, atomic writes (fsync, mode 0666),
               tournament folder safety, ring and division discovery

A FreeScore service supplies its settings, its wire (its requests and frames,
on top of `requests`/`frames`), its logic (rules), its division file format and
its forms folder name (`Layout(root, "forms-<service>")`). Every module here but
`store` is pure: no Twisted, no Autobahn, no file access (tests/test_shape.py).
"""
