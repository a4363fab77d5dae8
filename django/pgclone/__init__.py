"""pgclone for Django: ``python manage.py pgclone``, run by the pgclone binary."""

default_app_config = "pgclone.apps.PGCloneConfig"
