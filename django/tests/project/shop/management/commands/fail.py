from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Fails, as a broken hook would."

    def handle(self, *args, **options):
        raise CommandError("this hook fails on purpose")
