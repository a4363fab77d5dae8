from django.core.management.base import BaseCommand
from django.db import connection


class Command(BaseCommand):
    help = "Prints the database Django's connection is configured for and the one it reaches."

    def handle(self, *args, **options):
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_database()")
            reached = cursor.fetchone()[0]
        self.stdout.write(f"settings NAME={connection.settings_dict['NAME']} current_database={reached}")
