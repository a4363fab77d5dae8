"""``python manage.py pgclone`` in a real Django project against the test PostgreSQL, with the
pgclone binary under test. Run by scripts/test.sh (PGCLONE_TEST_POSTGRES_URL, PGCLONE_TEST_BINARY)."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import uuid
from urllib.parse import urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
URL = os.environ.get("PGCLONE_TEST_POSTGRES_URL")
BINARY = os.environ.get("PGCLONE_TEST_BINARY")

SETTINGS = """
SECRET_KEY = "test"
INSTALLED_APPS = ["pgclone", "shop"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
DATABASES = {{
    "default": {{
        "ENGINE": "django.db.backends.postgresql",
        "NAME": {name!r},
        "USER": {user!r},
        "PASSWORD": {password!r},
        "HOST": {host!r},
        "PORT": {port!r},
    }}
}}
PGCLONE_BINARY = {binary!r}
PGCLONE_STORAGE_LOCATION = {storage!r}
"""


@unittest.skipUnless(URL and BINARY, "run with scripts/test.sh")
class DjangoAppTests(unittest.TestCase):
    """As the server's superuser."""

    #: Run as a new application role (LOGIN CREATEDB, password), not the superuser.
    as_application_role = False

    def setUp(self):
        self.server = urlsplit(URL)
        self.name = f"dj_{uuid.uuid4().hex[:8]}"
        self.user, self.password = self.server.username, self.server.password
        if self.as_application_role:
            self.user, self.password = f"app_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
            self.psql(f"CREATE ROLE \"{self.user}\" LOGIN CREATEDB PASSWORD '{self.password}'")
            self.addCleanup(self.psql, f'DROP ROLE IF EXISTS "{self.user}"')
        self.directory = tempfile.mkdtemp(prefix="pgclone-django-test-")
        self.project = os.path.join(self.directory, "project")
        shutil.copytree(os.path.join(HERE, "project"), self.project)
        os.remove(os.path.join(self.project, "0002_item_price.py"))
        self.write_settings("")
        self.psql(f'CREATE DATABASE "{self.name}" TEMPLATE template0 OWNER "{self.user}"')
        self.addCleanup(self.drop_databases)
        self.addCleanup(shutil.rmtree, self.directory, True)
        self.manage("migrate", "--verbosity", "0", check=True)
        self.psql("INSERT INTO shop_item (name) VALUES ('apple'), ('pear'); INSERT INTO shop_secret (value) VALUES ('s3cr3t')", self.name)

    def write_settings(self, extra):
        settings = SETTINGS.format(
            name=self.name,
            user=self.user,
            password=self.password,
            host=self.server.hostname,
            port=str(self.server.port),
            binary=BINARY,
            storage=os.path.join(self.directory, "dumps"),
        )
        with open(os.path.join(self.project, "settings.py"), "w") as file:
            file.write(settings + extra)

    def psql(self, sql, database="postgres"):
        environment = dict(os.environ, PGPASSWORD=self.server.password)
        result = subprocess.run(
            ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", self.server.hostname, "-p", str(self.server.port),
             "-U", self.server.username, "-d", database, "-c", sql],
            env=environment, capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise AssertionError(f"psql failed: {result.stderr}")
        return result.stdout.strip()

    def databases(self):
        return sorted(self.psql(f"SELECT datname FROM pg_database WHERE datname LIKE '{self.name}%'").split())

    def drop_databases(self):
        for database in self.databases() + [self.name + "_snap"]:
            self.psql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    def manage(self, *arguments, check=False):
        environment = {key: value for key, value in os.environ.items() if not key.startswith(("PG", "DATABASE_URL"))}
        result = subprocess.run(
            [sys.executable, "manage.py", *arguments], cwd=self.project, env=environment, capture_output=True, text=True
        )
        if check and result.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(arguments)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def migrations(self, database):
        return self.psql("SELECT string_agg(name, ',' ORDER BY name) FROM django_migrations WHERE app = 'shop'", database)

    def test_dump_ls_restore_with_the_migrate_hook_reversible_previous_and_copy(self):
        dumped = self.manage("pgclone", "dump", check=True)
        key = dumped.stdout.strip()
        self.assertTrue(key.startswith(f"{self.name}/") and key.endswith(".default.dump"), dumped)
        self.assertIn(key, self.manage("pgclone", "ls", check=True).stdout.split())
        self.assertEqual(self.manage("pgclone", "ls", "--only-db-names", check=True).stdout.split(), [self.name])

        # A new migration: the default pre-swap hook, migrate, applies it to the copy; the live
        # database (kept as :previous) never gets it.
        shutil.copy(os.path.join(HERE, "project", "0002_item_price.py"), os.path.join(self.project, "shop", "migrations"))
        restored = self.manage("pgclone", "restore", self.name, "--reversible", check=True)
        self.assertIn("pre-swap hook 1", restored.stderr)
        self.assertEqual(self.migrations(self.name), "0001_initial,0002_item_price")
        self.assertEqual(self.psql("SELECT string_agg(name || ':' || price, ',' ORDER BY name) FROM shop_item", self.name), "apple:0,pear:0")
        self.assertEqual(self.migrations(f"{self.name}__previous"), "0001_initial")
        self.assertIn(f":{self.name}__previous", self.manage("pgclone", "ls", "--local", check=True).stdout.split())

        # Back to the database as it was, with a hook that migrates nothing.
        self.manage("pgclone", "restore", ":previous", "--pre-swap-hook", "where", check=True)
        self.assertEqual(self.migrations(self.name), "0001_initial")

        self.manage("pgclone", "copy", f":{self.name}_snap", check=True)
        self.assertEqual(self.migrations(f"{self.name}_snap"), "0001_initial")
        self.assertEqual(self.psql("SELECT count(*) FROM shop_item", f"{self.name}_snap"), "2")

    def test_a_management_command_hook_reaches_the_copy_and_a_failing_one_changes_nothing(self):
        key = self.manage("pgclone", "dump", check=True).stdout.strip()
        restored = self.manage("pgclone", "restore", key, "--pre-swap-hook", "where", check=True)
        temporary = f"{self.name}__temp"
        self.assertIn(f"pgclone: pre-swap hook 1: settings NAME={temporary} current_database={temporary}", restored.stderr)

        self.psql("UPDATE shop_item SET name = 'changed'", self.name)
        failed = self.manage("pgclone", "restore", key, "--pre-swap-hook", "fail")
        self.assertEqual(failed.returncode, 1, failed)
        self.assertIn("this hook fails on purpose", failed.stderr)
        self.assertEqual(self.psql("SELECT string_agg(DISTINCT name, ',') FROM shop_item", self.name), "changed")
        self.assertEqual(self.databases(), [self.name])

    def test_another_alias_migrates_its_own_copy(self):
        second = f"{self.name}_2"
        self.psql(f'CREATE DATABASE "{second}" TEMPLATE template0 OWNER "{self.user}"')
        self.write_settings(
            f"""
DATABASES["second"] = dict(DATABASES["default"], NAME={second!r})
DATABASES["reader"] = dict(DATABASES["default"], NAME={second!r})
"""
        )
        self.manage("migrate", "--database", "second", "--verbosity", "0", check=True)
        key = self.manage("pgclone", "dump", "-d", "second", check=True).stdout.strip()
        self.assertTrue(key.startswith(f"{second}/"), key)
        shutil.copy(os.path.join(HERE, "project", "0002_item_price.py"), os.path.join(self.project, "shop", "migrations"))
        # The default hook migrates the alias's database (the copy); an alias for the same
        # database follows it into the copy.
        restored = self.manage("pgclone", "restore", second, "-d", "second", check=True)
        self.assertIn("migrate --database second", restored.stderr)
        self.assertEqual(self.migrations(second), "0001_initial,0002_item_price")
        self.assertEqual(self.migrations(self.name), "0001_initial")
        hooked = self.manage("pgclone", "restore", second, "-d", "second", "--pre-swap-hook", "where --database reader", check=True)
        self.assertIn(f"settings NAME={second}__temp current_database={second}__temp", hooked.stderr)

    def test_django_pgclones_own_dumps_keep_working(self):
        # django-pgclone 1.x's layout and archive: pg_dump -Fc under {db}/{time}.{config}.dump.
        key = f"{self.name}/2021_01_02_03_04_05_000006.default.dump"
        path = os.path.join(self.directory, "dumps", key)
        os.makedirs(os.path.dirname(path))
        environment = dict(os.environ, PGPASSWORD=self.server.password)
        subprocess.run(
            ["pg_dump", "-Fc", "--no-owner", "--no-acl", "-h", self.server.hostname, "-p", str(self.server.port),
             "-U", self.server.username, "-f", path, self.name],
            env=environment, check=True,
        )
        self.assertIn(key, self.manage("pgclone", "ls", self.name, check=True).stdout.split())
        self.psql("DELETE FROM shop_item", self.name)
        self.manage("pgclone", "restore", key, "--pre-swap-hook", "where", check=True)
        self.assertEqual(self.psql("SELECT string_agg(name, ',' ORDER BY name) FROM shop_item", self.name), "apple,pear")
        # An alias that is not in DATABASES: one line, pgclone not run.
        wrong = self.manage("pgclone", "ls", "-d", "replica")
        self.assertEqual(wrong.returncode, 2, wrong)
        self.assertEqual(wrong.stderr.strip().splitlines(), ["pgclone: error: there is no database 'replica' in settings.DATABASES; name one of default"])

    def test_named_configs_and_switches_come_from_settings(self):
        self.write_settings(
            """
PGCLONE_DUMP_CONFIGS = {"default": {"exclude_models": ["shop.Secret"], "pre_dump_hooks": ["mark"]}}
PGCLONE_RESTORE_CONFIGS = {"default": {"pre_swap_hooks": ["where"]}}
"""
        )
        key = self.manage("pgclone", "dump", check=True).stdout.strip()
        # The pre-dump hook ran against the source, before pg_dump.
        self.assertEqual(self.psql("SELECT count(*) FROM shop_log WHERE event = 'marked'", self.name), "1")
        self.manage("pgclone", "restore", key, check=True)
        self.assertEqual(self.psql("SELECT count(*) FROM shop_secret", self.name), "0")
        self.assertEqual(self.psql("SELECT count(*) FROM shop_item", self.name), "2")
        self.assertEqual(self.psql("SELECT count(*) FROM shop_log", self.name), "1")

        self.write_settings("PGCLONE_ALLOW_RESTORE = False\n")
        refused = self.manage("pgclone", "restore", key)
        self.assertEqual(refused.returncode, 3, refused)
        self.assertIn("restores are disabled here", refused.stderr)

        self.write_settings("PGCLONE_VALIDATE_DUMP_KEYS = True\n")
        unknown = self.manage("pgclone", "ls")
        self.assertEqual(unknown.returncode, 2, unknown)
        self.assertEqual(len(unknown.stderr.strip().splitlines()), 1, unknown)
        self.assertTrue(unknown.stderr.startswith("pgclone: error: settings.PGCLONE_VALIDATE_DUMP_KEYS has no equivalent in pgclone"), unknown)


class DjangoAppTestsAsApplicationRole(DjangoAppTests):
    """As a role with CREATEDB only, as on a managed server."""

    as_application_role = True


if __name__ == "__main__":
    unittest.main()
