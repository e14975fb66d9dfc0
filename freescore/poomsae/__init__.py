"""The FreeScore layer: what worldclass, freestyle and grassroots share, written once.

The three FreeScore services (recognized, freestyle and traditional poomsae)
serve the same kind of pages from the same kind of data folder; they differ in
their division file format and their scoring rules. What they share lives here:

    settings   FreeScoreSettings: the table base (data root, CORS, idle time, single node)
    ids        RequestError, UnknownRequest, SaveError, Ring, check_db / check_divid / parse_ring, group_id
    routes     Route, parse_route(path, service, with_role=True)   (`/<service>[/request]/<db>/<ring>[/<role>]`)
    requests   decode_request, handler_name, request_kind, require, to_int / to_float / to_bool
    frames     Update, update_frame(type, key, payload, request, **extra), canonical, frame, digest_of,
               error_frame, processing_error, unknown_command(prefix, path), utc_time
    progress   parse_progress / format_progress (progress.txt), current_divid
    layout     Layout(root, forms): tournament / ring folders, division file names; ring_folder
    rings      RingFolder: a ring's divisions, progress and autopilot generation as plain state
    users      Client (identity, pings, health), users_list, users_frame, ping_frame (optional)
    session    the optional PHP session check: session_from_cookie, parse_php_session, session_allows
    store      DataStore(layout): the only file access (sync a RingFolder, atomic writes, moves, discovery)
    adapter    FreeScoreProtocol, FreeScoreHttp (`/status`, unknown-command JSON with the service's prefix)
    service    FreeScoreService: ring groups, group commit, the apply_effects loop, autopilot timers by
               ring, idle timeout, optional pings/users and session check, the dedicated-listener rule

A FreeScore service supplies its settings (a `FreeScoreSettings`), its wire (its
requests and frames, on top of `requests`/`frames`), its logic (a `service.Rules`:
rules answering `freescore.effects.Effects`), its store (a `DataStore` with its
division file format and forms folder, `Layout(root, "forms-<service>")`) and a
`FreeScoreService` subclass naming its route and error prefix. Every module here
but `store`, `adapter` and `service` is pure: no Twisted, no Autobahn, no file
access (tests/test_shape.py).
"""
