from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel("Item", [("id", models.AutoField(primary_key=True)), ("name", models.CharField(max_length=100))]),
        migrations.CreateModel("Secret", [("id", models.AutoField(primary_key=True)), ("value", models.CharField(max_length=100))]),
        migrations.CreateModel("Log", [("id", models.AutoField(primary_key=True)), ("event", models.CharField(max_length=100))]),
    ]
