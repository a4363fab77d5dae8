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
    the source before a dump. pgclone names it in ``PGCLONE_HOOK_DATABASE`` (hooks alone get it);
    ``manage.py pgclone`` names the alias in ``PGCLONE_DJANGO_DATABASE``. Runs at start-up, before
    any connection is opened."""
    database = os.environ.get("PGCLONE_HOOK_DATABASE")
    alias = os.environ.get("PGCLONE_DJANGO_DATABASE")
    if not database or not alias:
        return
    from django.conf import settings
    from django.db import connections

    if alias not in settings.DATABASES:
        return
    settings.DATABASES[alias]["NAME"] = database
    connections[alias].settings_dict["NAME"] = database
