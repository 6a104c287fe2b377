"""The web console: the slot grid, a job's page, a slot's page, and the operator's actions
(pause, resume, run, rerun, replay), served by ``cronwright ui`` or beside a service
(``serve --ui-port``).

Built on aiohttp and Jinja2, both dependencies already: aiohttp serves ``/metrics`` and
the console shares its site set-up (:func:`engine.app.web.serve`: loopback by default, a
one-line error for a taken port, a 400 for a request it cannot parse); Jinja renders the
SQL templates and here renders HTML with autoescape on. An ASGI framework would add a
server, a framework and their upgrades for a dozen routes. The pages need no build step:
plain HTML, one stylesheet and one small script that polls the grid's fragment.

Every answer comes from the runtime's own functions (the scheduling core's statuses, the
ledger, the dead letters, the pauses, the rendered SQL) and every action from the
operator's functions the CLI calls (:mod:`engine.app.operator`).

- :mod:`.server`: opens the console; :mod:`.app`: routes and the error policy;
- :mod:`.pages`: what reads; :mod:`.acting`: signing in and acting; :mod:`.actions`;
- :mod:`.auth`: the token, sessions, CSRF; :mod:`.views`: the pages' data;
- :mod:`.grid`: the grid's shape; :mod:`.ranges`: the range picker.
"""
