from django.apps import AppConfig


class OrgsConfig(AppConfig):
    verbose_name = "Organizations"
    name = "orgs"
    default_auto_field = "django.db.models.BigAutoField"
