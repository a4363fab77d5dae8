"""django-pgclone's settings, turned into what the pgclone binary reads: its environment (the
connection, the storage location, the allow switches, S3) and a config file (the named dump and
restore configs, whose hooks are management commands, and the timeouts)."""

import json
import os
import shlex
import shutil
import sys

from django.conf import settings
from django.core.management.base import CommandError

#: django-pgclone's settings (and this app's PGCLONE_BINARY); any other PGCLONE_* is an error.
KNOWN_SETTINGS = {
    "PGCLONE_STORAGE_LOCATION",
    "PGCLONE_DUMP_CONFIGS",
    "PGCLONE_RESTORE_CONFIGS",
    "PGCLONE_ALLOW_DUMP",
    "PGCLONE_ALLOW_RESTORE",
    "PGCLONE_ALLOW_COPY",
    "PGCLONE_S3_CONFIG",
    "PGCLONE_S3_ENDPOINT_URL",
    "PGCLONE_STATEMENT_TIMEOUT",
    "PGCLONE_LOCK_TIMEOUT",
    "PGCLONE_BINARY",
}

#: Keys of a dump config: django-pgclone's, and pgclone's own.
DUMP_CONFIG_KEYS = {"exclude_models", "pre_dump_hooks", "exclude_tables", "exclude_extensions", "no_owner", "no_acl"}
#: Keys of a restore config: django-pgclone's, and pgclone's own.
RESTORE_CONFIG_KEYS = {"pre_swap_hooks", "reversible", "dump_config", "role", "no_owner", "no_acl"}

#: libpq's keywords a DATABASES entry's OPTIONS may hold, and the variables that set them.
LIBPQ_OPTIONS = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
    "sslnegotiation": "PGSSLNEGOTIATION",
    "application_name": "PGAPPNAME",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "options": "PGOPTIONS",
    "passfile": "PGPASSFILE",
    "service": "PGSERVICE",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "channel_binding": "PGCHANNELBINDING",
    "gssencmode": "PGGSSENCMODE",
    "krbsrvname": "PGKRBSRVNAME",
    "client_encoding": "PGCLIENTENCODING",
}
#: OPTIONS Django itself consumes: nothing for libpq.
DJANGO_OPTIONS = {"isolation_level", "assume_role", "server_side_binding", "pool", "cursor_factory"}

#: boto3 client arguments of PGCLONE_S3_CONFIG, and the variables pgclone reads them from.
S3_CONFIG = {
    "aws_access_key_id": "AWS_ACCESS_KEY_ID",
    "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "aws_session_token": "AWS_SESSION_TOKEN",
    "region_name": "AWS_REGION",
    "endpoint_url": "PGCLONE_S3_ENDPOINT_URL",
}


def check_settings():
    """Refuses a PGCLONE_* setting that pgclone has no equivalent for."""
    unknown = sorted(name for name in dir(settings) if name.startswith("PGCLONE_") and name not in KNOWN_SETTINGS)
    if unknown:
        raise CommandError(
            f"settings.{unknown[0]} has no equivalent in pgclone; remove it "
            f"(the settings are {', '.join(sorted(KNOWN_SETTINGS))})"
        )


def binary():
    """The pgclone binary: settings.PGCLONE_BINARY, the PGCLONE_BINARY variable, else PATH's."""
    path = getattr(settings, "PGCLONE_BINARY", None) or os.environ.get("PGCLONE_BINARY") or shutil.which("pgclone")
    if not path:
        raise CommandError("the pgclone binary is not on PATH; install it, or set PGCLONE_BINARY to its path")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise CommandError(f"PGCLONE_BINARY is {path!r}, which is not an executable file; give the pgclone binary's path")
    return path


def connection_environment(alias):
    """libpq's variables for DATABASES[alias] (the password included: never argv), with those of
    the caller's environment that would override them cleared (DATABASE_URL, which pgclone
    prefers, and a service not asked for)."""
    if alias not in settings.DATABASES:
        raise CommandError(f"there is no database {alias!r} in settings.DATABASES; name one of {', '.join(settings.DATABASES)}")
    database = settings.DATABASES[alias]
    engine = database.get("ENGINE", "")
    if not any(engine.endswith(suffix) for suffix in ("postgresql", "postgis", "postgresql_psycopg2")):
        raise CommandError(f"DATABASES[{alias!r}] uses {engine!r}; pgclone works with PostgreSQL only")
    environment = {"DATABASE_URL": None, "PGSERVICE": None, "PGDATABASE": None, "PGHOST": None, "PGPORT": None,
                   "PGUSER": None, "PGPASSWORD": None}
    for key, variable in (("NAME", "PGDATABASE"), ("USER", "PGUSER"), ("PASSWORD", "PGPASSWORD"), ("HOST", "PGHOST"), ("PORT", "PGPORT")):
        value = database.get(key)
        if value not in (None, ""):
            environment[variable] = str(value)
    for key, value in (database.get("OPTIONS") or {}).items():
        if key in DJANGO_OPTIONS:
            continue
        if key not in LIBPQ_OPTIONS:
            raise CommandError(
                f"DATABASES[{alias!r}]['OPTIONS'][{key!r}] has no equivalent in pgclone's connection; "
                f"the libpq options it passes on are {', '.join(sorted(LIBPQ_OPTIONS))}"
            )
        environment[LIBPQ_OPTIONS[key]] = str(value)
    if not environment["PGDATABASE"]:
        raise CommandError(f"DATABASES[{alias!r}] names no database (NAME)")
    # The alias, for hooks: their manage.py points it at the hook's database (apps.py).
    environment["PGCLONE_DJANGO_DATABASE"] = alias
    return environment


def settings_environment():
    """The storage location, allow switches and S3 settings as pgclone's variables."""
    environment = {}
    location = getattr(settings, "PGCLONE_STORAGE_LOCATION", None)
    if location:
        environment["PGCLONE_STORAGE_LOCATION"] = str(location)
    for name in ("PGCLONE_ALLOW_DUMP", "PGCLONE_ALLOW_RESTORE", "PGCLONE_ALLOW_COPY"):
        value = getattr(settings, name, None)
        if value is not None:
            if not isinstance(value, bool):
                raise CommandError(f"settings.{name} must be True or False (it is {value!r})")
            environment[name] = "true" if value else "false"
    endpoint = getattr(settings, "PGCLONE_S3_ENDPOINT_URL", None)
    if endpoint:
        environment["PGCLONE_S3_ENDPOINT_URL"] = str(endpoint)
    s3 = getattr(settings, "PGCLONE_S3_CONFIG", None) or {}
    if not isinstance(s3, dict):
        raise CommandError("settings.PGCLONE_S3_CONFIG must be a dict of boto3 client arguments")
    for key, value in s3.items():
        if key not in S3_CONFIG:
            raise CommandError(
                f"settings.PGCLONE_S3_CONFIG[{key!r}] has no equivalent in pgclone; "
                f"it takes {', '.join(sorted(S3_CONFIG))} (or the AWS_* variables and ~/.aws files)"
            )
        if value is not None:
            environment[S3_CONFIG[key]] = str(value)
    return environment


def hook_command(hook):
    """A management command (``migrate``, ``anonymize --fast``) as the shell command pgclone runs:
    this project's manage.py with the same Python."""
    if not isinstance(hook, str) or not hook.strip():
        raise CommandError(f"a hook is the name of a management command (it is {hook!r})")
    program = os.path.abspath(sys.argv[0])
    if os.path.basename(program) == "manage.py":
        prefix = [sys.executable, program]
    else:
        # django-admin: the settings module is in the environment, which hooks inherit.
        prefix = [sys.executable, "-m", "django"]
    return shlex.join(prefix + shlex.split(hook))


def hooks(value, where):
    """django-pgclone's hooks: one management command name or a list of them."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise CommandError(f"{where} must be a management command's name or a list of them")
    return [hook_command(hook) for hook in value]


def _config_section(configs, setting, keys, translate):
    if configs is None:
        return {}
    if not isinstance(configs, dict):
        raise CommandError(f"settings.{setting} must be a dict of config names to dicts")
    section = {}
    for name, config in configs.items():
        config = config or {}
        if not isinstance(config, dict):
            raise CommandError(f"settings.{setting}[{name!r}] must be a dict")
        unknown = sorted(set(config) - keys)
        if unknown:
            raise CommandError(
                f"settings.{setting}[{name!r}] has {unknown[0]!r}, which pgclone has no equivalent for; "
                f"the keys are {', '.join(sorted(keys))}"
            )
        section[name] = translate(name, dict(config))
    return section


def _dump_config(name, config):
    if "pre_dump_hooks" in config:
        config["pre_dump_hooks"] = hooks(config["pre_dump_hooks"], f"settings.PGCLONE_DUMP_CONFIGS[{name!r}]['pre_dump_hooks']")
    return config


def _restore_config(name, config):
    # As django-pgclone: migrate runs before the swap unless the config says otherwise.
    config["pre_swap_hooks"] = hooks(
        config.get("pre_swap_hooks", ["migrate"]), f"settings.PGCLONE_RESTORE_CONFIGS[{name!r}]['pre_swap_hooks']"
    )
    return config


def _timeout(name):
    value = getattr(settings, name, None)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise CommandError(f"settings.{name} must be milliseconds (an int) or a duration like '30s' (it is {value!r})")
    return f"{value}ms" if isinstance(value, int) else value


def config_file_content():
    """pgclone's config file (JSON, which YAML reads) for the named configs and timeouts."""
    restore_configs = _config_section(
        getattr(settings, "PGCLONE_RESTORE_CONFIGS", None), "PGCLONE_RESTORE_CONFIGS", RESTORE_CONFIG_KEYS, _restore_config
    )
    restore_configs.setdefault("default", _restore_config("default", {}))
    content = {
        "dump_configs": _config_section(
            getattr(settings, "PGCLONE_DUMP_CONFIGS", None), "PGCLONE_DUMP_CONFIGS", DUMP_CONFIG_KEYS, _dump_config
        ),
        "restore_configs": restore_configs,
    }
    for setting, key in (("PGCLONE_STATEMENT_TIMEOUT", "statement_timeout"), ("PGCLONE_LOCK_TIMEOUT", "lock_timeout")):
        value = _timeout(setting)
        if value is not None:
            content[key] = value
    if not content["dump_configs"]:
        del content["dump_configs"]
    return json.dumps(content, indent=2, sort_keys=True)
