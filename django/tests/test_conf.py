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
    def test_the_connection_goes_into_libpq_variables_and_overrides_the_callers(self):
        environment = conf.connection_environment("default")
        self.assertEqual(environment["PGDATABASE"], "app")
        self.assertEqual(environment["PGPASSWORD"], "s3cr3t")
        self.assertEqual(environment["PGPORT"], "5433")
        self.assertEqual(environment["PGSSLMODE"], "require")
        self.assertEqual(environment["PGCLONE_DJANGO_DATABASE"], "default")
        # Cleared, so that a DATABASE_URL or service of the caller's cannot send pgclone elsewhere.
        self.assertIsNone(environment["DATABASE_URL"])
        self.assertIsNone(environment["PGSERVICE"])
        with self.assertRaisesRegex(CommandError, "there is no database 'nope' in settings.DATABASES"):
            conf.connection_environment("nope")
        with self.assertRaisesRegex(CommandError, "pgclone works with PostgreSQL only"):
            conf.connection_environment("sqlite")

    def test_unknown_options_and_settings_are_errors_not_silence(self):
        options = settings.DATABASES["default"]["OPTIONS"]
        settings.DATABASES["default"]["OPTIONS"] = {"keepalives_idle": 5}
        try:
            with self.assertRaisesRegex(CommandError, r"\['OPTIONS'\]\['keepalives_idle'\] has no equivalent"):
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
        # migrate, unless a config says otherwise; and the default config always has it.
        self.assertEqual(content["restore_configs"]["fast"]["pre_swap_hooks"], [shlex.join(manage + ["migrate"])])
        self.assertEqual(content["restore_configs"]["none"]["pre_swap_hooks"], [])
        self.assertEqual(content["restore_configs"]["default"]["pre_swap_hooks"], [shlex.join(manage + ["migrate"])])
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
