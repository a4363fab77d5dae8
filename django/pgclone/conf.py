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

#: libpq's connection keywords a DATABASES entry's OPTIONS may hold (libpq's "Parameter Key
#: Words"); pgclone's libpq refuses one it does not know, in one line.
LIBPQ_KEYWORDS = {
    "hostaddr", "passfile", "channel_binding", "connect_timeout", "client_encoding", "options", "application_name",
    "fallback_application_name", "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count",
    "tcp_user_timeout", "gssencmode", "sslmode", "requiressl", "sslcompression", "sslcert", "sslkey", "sslpassword",
    "sslcertmode", "sslrootcert", "sslcrl", "sslcrldir", "sslsni", "sslnegotiation", "requirepeer",
    "ssl_min_protocol_version", "ssl_max_protocol_version", "krbsrvname", "gsslib", "gssdelegation", "service",
    "target_session_attrs", "load_balance_hosts", "require_auth",
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


def _conninfo_value(value):
    """A value as libpq's key=value syntax quotes it."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def connection_environment(alias):
    """DATABASES[alias] as a libpq connection string in DATABASE_URL, which pgclone reads (an
    environment variable: the password never reaches a command line). Its NAME, USER, HOST and
    PORT are parameters, so that, as in Django, they win over a service's; the caller's PG*
    variables that would add to them (PGSERVICE, PGDATABASE, …) are cleared."""
    if alias not in settings.DATABASES:
        raise CommandError(f"there is no database {alias!r} in settings.DATABASES; name one of {', '.join(settings.DATABASES)}")
    database = settings.DATABASES[alias]
    engine = database.get("ENGINE", "")
    if not any(engine.endswith(suffix) for suffix in ("postgresql", "postgis", "postgresql_psycopg2")):
        raise CommandError(f"DATABASES[{alias!r}] uses {engine!r}; pgclone works with PostgreSQL only")
    parameters = {}
    for key, keyword in (("NAME", "dbname"), ("USER", "user"), ("PASSWORD", "password"), ("HOST", "host"), ("PORT", "port")):
        value = database.get(key)
        if value not in (None, ""):
            parameters[keyword] = str(value)
    options = database.get("OPTIONS") or {}
    if not isinstance(options, dict):
        raise CommandError(f"DATABASES[{alias!r}]['OPTIONS'] must be a dict")
    for key, value in options.items():
        if key in DJANGO_OPTIONS:
            continue
        if key not in LIBPQ_KEYWORDS:
            raise CommandError(
                f"DATABASES[{alias!r}]['OPTIONS'][{key!r}] is not a libpq connection parameter, which pgclone's connection takes; "
                f"remove it for pgclone, or check its spelling"
            )
        if value is not None:
            parameters[key] = str(value)
    if "dbname" not in parameters and "service" not in parameters:
        raise CommandError(f"DATABASES[{alias!r}] names no database (NAME)")
    environment = {variable: None for variable in ("PGSERVICE", "PGDATABASE", "PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGPASSWORD")}
    # Not carried to pgclone when set by a hook's environment (manage.py pgclone inside a hook).
    environment.update({"PGCLONE_HOOK_DATABASE": None, "PGCLONE_HOOK_PHASE": None})
    environment["DATABASE_URL"] = " ".join(f"{keyword}={_conninfo_value(value)}" for keyword, value in parameters.items())
    # The alias, for hooks: their manage.py points it at the hook's database (apps.py).
    environment["PGCLONE_DJANGO_DATABASE"] = alias
    return environment


def settings_environment():
    """The storage location, allow switches and S3 settings as pgclone's variables."""
    environment = {}
    location = getattr(settings, "PGCLONE_STORAGE_LOCATION", None)
    if location is not None and not isinstance(location, (str, os.PathLike)):
        raise CommandError(f"settings.PGCLONE_STORAGE_LOCATION must be a directory or an s3:// URL (it is {location!r})")
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


def hook_environment():
    """What a hook's Python needs to find this project when it is not run by manage.py
    (django-admin with --settings and --pythonpath): the settings module, and the directory
    that holds it on PYTHONPATH."""
    module = getattr(settings, "SETTINGS_MODULE", None)
    if not module or os.path.basename(os.path.abspath(sys.argv[0])) == "manage.py":
        return {}
    environment = {"DJANGO_SETTINGS_MODULE": module}
    path = getattr(sys.modules.get(module), "__file__", None)
    if path:
        root = os.path.dirname(os.path.abspath(path))
        for _ in range(module.count(".") + (1 if os.path.basename(path) == "__init__.py" else 0)):
            root = os.path.dirname(root)
        existing = os.environ.get("PYTHONPATH")
        environment["PYTHONPATH"] = root + (os.pathsep + existing if existing else "")
    return environment


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
        where = f"settings.{setting}[{name!r}]"
        checked = {}
        for key, value in config.items():
            if key in ("reversible", "no_owner", "no_acl"):
                if not isinstance(value, bool):
                    raise CommandError(f"{where}[{key!r}] must be True or False (it is {value!r})")
            elif key in ("role", "dump_config"):
                if not isinstance(value, str) or not value:
                    raise CommandError(f"{where}[{key!r}] must be a name (it is {value!r})")
            elif key in ("exclude_models", "exclude_tables", "exclude_extensions"):
                value = [value] if isinstance(value, str) else value
                if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
                    raise CommandError(f"{where}[{key!r}] must be a list of names (it is {value!r})")
                value = list(value)
            checked[key] = value
        section[name] = translate(name, checked, where)
    return section


def _dump_config(name, config, where):
    if "pre_dump_hooks" in config:
        config["pre_dump_hooks"] = hooks(config["pre_dump_hooks"], f"{where}['pre_dump_hooks']")
    return config


def migrate_hook(alias):
    """django-pgclone's default pre-swap hook, for the database of `alias`."""
    return "migrate" if alias == "default" else f"migrate --database {shlex.quote(alias)}"


def _timeout(name):
    value = getattr(settings, name, None)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)) or (isinstance(value, int) and value < 0):
        raise CommandError(f"settings.{name} must be milliseconds (an int, 0 for none) or a duration like '30s' (it is {value!r})")
    return f"{value}ms" if isinstance(value, int) else value


def config_names(setting):
    """The names of the configs a setting defines, and `default`, which always exists."""
    configs = getattr(settings, setting, None)
    return {"default"} | (set(configs) if isinstance(configs, dict) else set())


def config_file_content(alias="default"):
    """pgclone's config file (JSON, which YAML reads) for the named configs and timeouts. As in
    django-pgclone, a restore without a config of its own (none named `default`) runs `migrate`
    on the copy; a config runs the hooks it names."""

    def restore_config(name, config, where):
        if "pre_swap_hooks" in config:
            config["pre_swap_hooks"] = hooks(config["pre_swap_hooks"], f"{where}['pre_swap_hooks']")
        return config

    restore_configs = _config_section(
        getattr(settings, "PGCLONE_RESTORE_CONFIGS", None), "PGCLONE_RESTORE_CONFIGS", RESTORE_CONFIG_KEYS, restore_config
    )
    restore_configs.setdefault("default", {"pre_swap_hooks": [hook_command(migrate_hook(alias))]})
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
