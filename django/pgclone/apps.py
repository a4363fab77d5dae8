import os

from django.apps import AppConfig


class PGCloneConfig(AppConfig):
    name = "pgclone"
    verbose_name = "pgclone"

    def ready(self):
        redirect_hook_connection()


def redirect_hook_connection():
    """In a hook pgclone runs (a management command before a dump or a swap), point the alias's
    connection at the hook's database, whatever ``DATABASES`` says: ``D__temp`` before the swap,
    the source before a dump. pgclone names it to hooks alone (``PGCLONE_HOOK_DATABASE``, with
    ``PGCLONE_HOOK_PHASE``); ``manage.py pgclone`` names the alias (``PGCLONE_DJANGO_DATABASE``).
    Every alias configured for the same database (a read-only user's, say) follows. Runs at
    start-up, before any connection is opened."""
    import sys

    database = os.environ.get("PGCLONE_HOOK_DATABASE")
    alias = os.environ.get("PGCLONE_DJANGO_DATABASE")
    if not database or not alias or not os.environ.get("PGCLONE_HOOK_PHASE"):
        return
    if len(sys.argv) > 1 and sys.argv[1] == "pgclone":
        # pgclone run from a hook acts on the databases as configured.
        return
    from django.conf import settings
    from django.db import connections

    if alias not in settings.DATABASES:
        return
    chosen = settings.DATABASES[alias]
    place = (chosen.get("NAME"), chosen.get("HOST"), chosen.get("PORT"), (chosen.get("OPTIONS") or {}).get("service"))
    for name, entry in settings.DATABASES.items():
        if name != alias and (entry.get("NAME"), entry.get("HOST"), entry.get("PORT"), (entry.get("OPTIONS") or {}).get("service")) != place:
            continue
        for target in (entry, connections[name].settings_dict):
            target["NAME"] = database
            options = target.get("OPTIONS") or {}
            if "service" in options:
                # The service file is not the hook's (pgclone clears PGSERVICEFILE): where it
                # pointed comes from pgclone's resolved connection instead.
                target["OPTIONS"] = {key: value for key, value in options.items() if key != "service"}
                for key, variable in (("HOST", "PGHOST"), ("PORT", "PGPORT"), ("USER", "PGUSER")):
                    if not target.get(key) and os.environ.get(variable):
                        target[key] = os.environ[variable]
