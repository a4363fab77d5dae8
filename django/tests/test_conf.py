"""How the app turns Django's settings into pgclone's environment and config file (no server)."""

import json
import os
import shlex
import sys
import unittest

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        INSTALLED_APPS=[],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": "app",
                "USER": "app",
                "PASSWORD": "s3cr3t",
                "HOST": "db.internal",
                "PORT": 5433,
                "OPTIONS": {"sslmode": "require", "isolation_level": 1},
            },
            "sqlite": {"ENGINE": "django.db.backends.sqlite3", "NAME": "x.db"},
        },
    )
    django.setup()

from django.core.management.base import CommandError  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

from pgclone import conf  # noqa: E402


class ConfTests(unittest.TestCase):
    def test_the_connection_is_a_connection_string_in_the_environment_that_wins_over_a_service(self):
        environment = conf.connection_environment("default")
        # Parameters, not PG* variables: a service's dbname cannot win over NAME, as in Django.
        self.assertEqual(
            environment["DATABASE_URL"],
            "dbname='app' user='app' password='s3cr3t' host='db.internal' port='5433' sslmode='require'",
        )
        self.assertEqual(environment["PGCLONE_DJANGO_DATABASE"], "default")
        # Cleared, so that the caller's variables cannot add to it.
        for variable in ("PGSERVICE", "PGDATABASE", "PGHOST", "PGUSER", "PGPASSWORD", "PGCLONE_HOOK_DATABASE"):
            self.assertIsNone(environment[variable], variable)
        database = settings.DATABASES["default"]
        saved = dict(database)
        database.update(NAME=None, PASSWORD="it's \\ odd", OPTIONS={"service": "prod", "keepalives": 1})
        try:
            self.assertEqual(
                conf.connection_environment("default")["DATABASE_URL"],
                "user='app' password='it\\'s \\\\ odd' host='db.internal' port='5433' service='prod' keepalives='1'",
            )
        finally:
            database.clear()
            database.update(saved)
        with self.assertRaisesRegex(CommandError, "there is no database 'nope' in settings.DATABASES"):
            conf.connection_environment("nope")
        with self.assertRaisesRegex(CommandError, "pgclone works with PostgreSQL only"):
            conf.connection_environment("sqlite")

    def test_unknown_options_and_settings_are_errors_not_silence(self):
        options = settings.DATABASES["default"]["OPTIONS"]
        settings.DATABASES["default"]["OPTIONS"] = {"keepalives_idle": 5}
        try:
            conf.connection_environment("default")
            settings.DATABASES["default"]["OPTIONS"] = {"keepalive": 5}
            with self.assertRaisesRegex(CommandError, r"\['OPTIONS'\]\['keepalive'\] is not a libpq connection parameter"):
                conf.connection_environment("default")
        finally:
            settings.DATABASES["default"]["OPTIONS"] = options
        with override_settings(PGCLONE_VALIDATE_DUMP_KEYS=True):
            with self.assertRaisesRegex(CommandError, "settings.PGCLONE_VALIDATE_DUMP_KEYS has no equivalent in pgclone"):
                conf.check_settings()
        with override_settings(PGCLONE_S3_CONFIG={"config": object()}):
            with self.assertRaisesRegex(CommandError, r"PGCLONE_S3_CONFIG\['config'\] has no equivalent"):
                conf.settings_environment()
        with override_settings(PGCLONE_DUMP_CONFIGS={"default": {"exclude_modles": []}}):
            with self.assertRaisesRegex(CommandError, "has 'exclude_modles', which pgclone has no equivalent for"):
                conf.config_file_content()
        with override_settings(PGCLONE_ALLOW_RESTORE="no"):
            with self.assertRaisesRegex(CommandError, "settings.PGCLONE_ALLOW_RESTORE must be True or False"):
                conf.settings_environment()
        # Checked here, so that the error names the setting, not pgclone's config file.
        for configs, message in [
            ({"default": {"reversible": "yes"}}, r"PGCLONE_RESTORE_CONFIGS\['default'\]\['reversible'\] must be True or False"),
            ({"default": {"role": None}}, r"PGCLONE_RESTORE_CONFIGS\['default'\]\['role'\] must be a name"),
        ]:
            with override_settings(PGCLONE_RESTORE_CONFIGS=configs):
                with self.assertRaisesRegex(CommandError, message):
                    conf.config_file_content()
        with override_settings(PGCLONE_STATEMENT_TIMEOUT=1.5):
            with self.assertRaisesRegex(CommandError, "settings.PGCLONE_STATEMENT_TIMEOUT must be milliseconds"):
                conf.config_file_content()

    @override_settings(
        PGCLONE_STORAGE_LOCATION="s3://bucket/prefix",
        PGCLONE_ALLOW_RESTORE=False,
        PGCLONE_S3_CONFIG={"region_name": "eu-west-1", "aws_access_key_id": "AKIA", "endpoint_url": "http://127.0.0.1:9000"},
    )
    def test_settings_become_pgclones_variables(self):
        self.assertEqual(
            conf.settings_environment(),
            {
                "PGCLONE_STORAGE_LOCATION": "s3://bucket/prefix",
                "PGCLONE_ALLOW_RESTORE": "false",
                "AWS_REGION": "eu-west-1",
                "AWS_ACCESS_KEY_ID": "AKIA",
                "PGCLONE_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
            },
        )

    @override_settings(
        PGCLONE_DUMP_CONFIGS={"default": {"exclude_models": ["auth.User"], "pre_dump_hooks": "anonymize"}},
        PGCLONE_RESTORE_CONFIGS={"fast": {"reversible": True}, "none": {"pre_swap_hooks": []}},
        PGCLONE_STATEMENT_TIMEOUT=30000,
        PGCLONE_LOCK_TIMEOUT="5s",
    )
    def test_configs_become_pgclones_config_file_with_management_command_hooks(self):
        content = json.loads(conf.config_file_content())
        manage = [sys.executable, os.path.abspath(sys.argv[0])]
        if os.path.basename(manage[1]) != "manage.py":
            manage = [sys.executable, "-m", "django"]
        self.assertEqual(content["dump_configs"]["default"]["exclude_models"], ["auth.User"])
        self.assertEqual(content["dump_configs"]["default"]["pre_dump_hooks"], [shlex.join(manage + ["anonymize"])])
        # As django-pgclone: a config runs the hooks it names; without a config of its own, a
        # restore migrates the alias's database.
        self.assertNotIn("pre_swap_hooks", content["restore_configs"]["fast"])
        self.assertEqual(content["restore_configs"]["none"]["pre_swap_hooks"], [])
        self.assertEqual(content["restore_configs"]["default"]["pre_swap_hooks"], [shlex.join(manage + ["migrate"])])
        other = json.loads(conf.config_file_content("replica"))
        self.assertEqual(other["restore_configs"]["default"]["pre_swap_hooks"], [shlex.join(manage + ["migrate", "--database", "replica"])])
        self.assertEqual(content["statement_timeout"], "30000ms")
        self.assertEqual(content["lock_timeout"], "5s")
        self.assertNotIn("s3cr3t", conf.config_file_content())

    def test_a_hook_with_arguments_and_odd_characters_stays_one_command(self):
        command = conf.hook_command("migrate --no-input 'it''s'")
        self.assertEqual(shlex.split(command)[-2:], ["--no-input", "its"])
        with self.assertRaisesRegex(CommandError, "a hook is the name of a management command"):
            conf.hook_command(" ")


if __name__ == "__main__":
    unittest.main()
