"""``python manage.py pgclone dump|ls|restore|copy``: django-pgclone's interface, run by the pgclone
binary. Output, errors and exit codes are pgclone's."""

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import tempfile

from django.core.management.base import BaseCommand, CommandError

from pgclone import conf


class Command(BaseCommand):
    help = "Dump, list, restore and copy this project's PostgreSQL database with pgclone."

    def add_arguments(self, parser):
        commands = parser.add_subparsers(dest="pgclone_command", metavar="{dump,ls,restore,copy}")
        commands.required = True

        def alias(sub):
            sub.add_argument("-d", "--database", default="default", help="The Django database alias (default: default).")
            # Django's own options, accepted after the subcommand too (Django applies --settings
            # and --pythonpath itself); not to override what was given before it.
            sub.add_argument("-v", "--verbosity", type=int, choices=[0, 1, 2, 3], default=argparse.SUPPRESS, help=argparse.SUPPRESS)
            for option in ("--settings", "--pythonpath"):
                sub.add_argument(option, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
            for option in ("--traceback", "--no-color", "--force-color", "--skip-checks"):
                sub.add_argument(option, action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

        dump = commands.add_parser("dump", help="Dump the database to PGCLONE_STORAGE_LOCATION.")
        alias(dump)
        dump.add_argument("-c", "--config", "--dump-config", dest="config", help="A dump config of PGCLONE_DUMP_CONFIGS (default: default).")
        dump.add_argument(
            "--exclude-model", action="extend", nargs="*", default=[], help="Leave out models' data (app.Model); repeatable."
        )
        dump.add_argument(
            "--pre-dump-hook", action="extend", nargs="*", default=[], help="Management commands run before the dump; repeatable."
        )
        dump.add_argument("--no-owner", action="store_true", help="Restores of this dump leave its owners out.")
        dump.add_argument("--no-acl", action="store_true", help="Leave the source's privileges out of the dump.")
        dump.add_argument("--json", action="store_true", help="Print the result as JSON.")

        ls = commands.add_parser("ls", help="List dump keys, newest first.")
        alias(ls)
        ls.add_argument("db_name", nargs="?", help="Only this database's dumps.")
        ls.add_argument("--only-db-names", action="store_true", help="List database names instead of keys.")
        ls.add_argument("--local", action="store_true", help="List the databases on the server, as :name sources for restore.")
        ls.add_argument("--dump-config", help="Only dumps made with this dump config.")
        ls.add_argument("--json", action="store_true", help="Print JSON.")

        restore = commands.add_parser("restore", help="Restore a dump or a local database, then swap it in.")
        alias(restore)
        restore.add_argument("db_name_or_dump_key", help="A dump key, a database name (its newest dump), or :NAME.")
        restore.add_argument(
            "-c", "--config", "--restore-config", dest="config", help="A restore config of PGCLONE_RESTORE_CONFIGS (default: default)."
        )
        restore.add_argument(
            "--pre-swap-hook", action="extend", nargs="*", default=[],
            help="Management commands run against the copy before the swap; repeatable.",
        )
        restore.add_argument("-r", "--reversible", action="store_true", default=None, help="Keep :previous and :current.")
        restore.add_argument("--no-reversible", dest="reversible", action="store_false", help="Drop them, whatever the config says.")
        restore.add_argument("--dump-config", help="With a database name: the newest dump made with this dump config.")
        restore.add_argument("--ignore-restore-errors", action="store_true", help="Swap in even if pg_restore reported errors.")
        restore.add_argument("-j", "--jobs", type=int, help="Restore with N parallel pg_restore jobs (spooling to TMPDIR).")
        restore.add_argument("--role", help="SET ROLE to this role before restoring.")
        restore.add_argument("--no-owner", action="store_true", help="Leave the dump's owners out.")
        restore.add_argument("--no-acl", action="store_true", help="Leave the dump's privileges out.")
        restore.add_argument(
            "--wait", nargs="?", const=True, metavar="DURATION", help="Wait for another restore of the database to finish (at most DURATION)."
        )
        restore.add_argument("--json", action="store_true", help="Print the result as JSON.")

        copy = commands.add_parser("copy", help="Snapshot the database as a local database, restorable with restore :NAME.")
        alias(copy)
        copy.add_argument("name", help="The snapshot's name (:NAME or NAME).")

    def handle(self, *args, **options):
        try:
            conf.check_settings()
            binary = conf.binary()
            environment = conf.connection_environment(options["database"])
            environment.update(conf.settings_environment())
            environment.update(conf.hook_environment())
            arguments = self.arguments(options)
            config = conf.config_file_content(options["database"])
        except CommandError as error:
            # As pgclone says what is wrong with its configuration: one line, exit 2.
            sys.stderr.write(f"pgclone: error: {error}\n")
            sys.exit(2)
        with tempfile.TemporaryDirectory(prefix="pgclone-django-") as directory:
            config_file = os.path.join(directory, "pgclone.yaml")
            with open(config_file, "w", encoding="utf-8") as file:
                file.write(config)
            environment["PGCLONE_CONFIG_FILE"] = config_file
            code = run(binary, arguments, environment)
        if code != 0:
            sys.exit(code)

    def arguments(self, options):
        command = options["pgclone_command"]
        arguments = [command]

        def flags(*names):
            for name in names:
                if options.get(name.replace("-", "_")):
                    arguments.append(f"--{name}")

        setting = {"dump": "PGCLONE_DUMP_CONFIGS", "restore": "PGCLONE_RESTORE_CONFIGS"}.get(command)
        if setting and options["config"] and options["config"] not in conf.config_names(setting):
            raise CommandError(
                f"there is no config {options['config']!r} in settings.{setting}; name one of {', '.join(sorted(conf.config_names(setting)))}"
            )
        if command == "dump":
            if options["config"]:
                arguments += ["--config", options["config"]]
            for model in options["exclude_model"]:
                arguments += ["--exclude-model", model]
            for hook in options["pre_dump_hook"]:
                arguments += ["--pre-dump-hook", conf.hook_command(hook)]
            flags("no-owner", "no-acl", "json")
        elif command == "ls":
            if options["db_name"]:
                arguments.append(options["db_name"])
            flags("only-db-names", "local", "json")
            if options["dump_config"]:
                arguments += ["--dump-config", options["dump_config"]]
        elif command == "restore":
            arguments.append(options["db_name_or_dump_key"])
            if options["config"]:
                arguments += ["--config", options["config"]]
            for hook in options["pre_swap_hook"]:
                arguments += ["--pre-swap-hook", conf.hook_command(hook)]
            if options["reversible"] is not None:
                arguments.append("--reversible" if options["reversible"] else "--no-reversible")
            for name in ("dump_config", "role"):
                if options[name]:
                    arguments += [f"--{name.replace('_', '-')}", options[name]]
            if options["jobs"] is not None:
                arguments += ["--jobs", str(options["jobs"])]
            flags("ignore-restore-errors", "no-owner", "no-acl", "json")
            if options["wait"] is True:
                arguments.append("--wait")
            elif options["wait"]:
                arguments.append(f"--wait={options['wait']}")
        elif command == "copy":
            name = options["name"]
            if name in ("", ":"):
                raise CommandError("copy takes the snapshot's name, as :NAME or NAME")
            arguments.append(name if name.startswith(":") else f":{name}")
        return arguments


def run(binary, arguments, environment):
    """Runs pgclone with `environment` over this process's; passes on SIGINT, SIGTERM and SIGHUP,
    and has the kernel end it should this process die (PR_SET_PDEATHSIG). Returns its exit code."""
    child_environment = dict(os.environ)
    for name, value in environment.items():
        if value is None:
            child_environment.pop(name, None)
        else:
            child_environment[name] = value
    sys.stdout.flush()
    sys.stderr.flush()
    process = subprocess.Popen([binary] + arguments, env=child_environment, preexec_fn=_die_with_parent)
    forwarded = {}

    def forward(number, _frame):
        process.send_signal(number)

    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        forwarded[number] = signal.signal(number, forward)
    try:
        code = process.wait()
    finally:
        for number, handler in forwarded.items():
            signal.signal(number, handler)
    # Killed by a signal: as a shell reports it.
    return code if code >= 0 else 128 - code


def _die_with_parent():
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
