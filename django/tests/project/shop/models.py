from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=100)


class Secret(models.Model):
    value = models.CharField(max_length=100)


class Log(models.Model):
    event = models.CharField(max_length=100)
