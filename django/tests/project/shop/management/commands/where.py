from django.core.management.base import BaseCommand
from django.db import connections


class Command(BaseCommand):
    help = "Prints the database Django's connection is configured for and the one it reaches."

    def add_arguments(self, parser):
        parser.add_argument("--database", default="default")

    def handle(self, *args, **options):
        connection = connections[options["database"]]
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_database()")
            reached = cursor.fetchone()[0]
        self.stdout.write(f"settings NAME={connection.settings_dict['NAME']} current_database={reached}")
